"""Designated agents (CSI L252-2): only they may act, each within a role.

The acting agent is not something scelle is told: it is the login the operating system
or the database server authenticated (`Database.login`). An unknown or disabled login, or
a role that may not do a thing, is refused, and the refusal is itself a ledger entry
(`access.refused`), in its own transaction, so that it stays recorded while the action
does not happen. The agent table says who may act now; the ledger keeps its history
(`agent.add`, `agent.disable`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from custody import text
from custody.entry import Record
from custody.errors import InputError, InvalidStateError, PermissionDeniedError
from custody.site import Site
from custody.timewindow import stored_now
from requisition.roles import GRANTS, Permission, Role, who_may

LOGIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


@dataclass(frozen=True)
class NewAgent:
    login: str
    name: str
    role: str
    designation: str

    def checked(self) -> NewAgent:
        login = check_login(self.login)
        if self.role not in Role.__members__.values():
            roles = ", ".join(r.value for r in Role)
            raise InputError(f"unknown role {self.role!r}: one of {roles}")
        for label, value in (("name", self.name), ("designation reference", self.designation)):
            text.line(value, f"the agent's {label}")
            if not value.strip():
                raise InputError(f"the agent's {label} is empty")
        return NewAgent(login, self.name.strip(), self.role, self.designation.strip())


def same_agent(a: str, b: str) -> bool:
    """Agents compare without case or surrounding spaces: `Root ` is `root`."""
    return a.strip().casefold() == b.strip().casefold()


def check_login(login: str) -> str:
    if not LOGIN.fullmatch(login):
        raise InputError(f"invalid login {text.shown(login)}: letters, digits, '.', '_', '@', '-'")
    return login


@dataclass(frozen=True)
class Agent:
    """A row of the agents register (read with plain SQL: authorising every command must
    not pay for importing the ORM)."""

    login: str
    name: str
    role: str
    designation: str
    active: bool
    added_by: str
    added_at: str
    disabled_by: str | None
    disabled_at: str | None
    disabled_reason: str | None


_COLUMNS = ", ".join(Agent.__dataclass_fields__)


def get(site: Site, login: str) -> Agent | None:
    with site.db.read() as cur:
        row = cur.execute(f"SELECT {_COLUMNS} FROM agent WHERE login = ?", [login]).fetchone()
    return None if row is None else _agent(row)


def list_all(site: Site) -> list[Agent]:
    with site.db.read() as cur:
        rows = cur.execute(f"SELECT {_COLUMNS} FROM agent ORDER BY login").fetchall()
    return [_agent(row) for row in rows]


def _agent(row: Sequence[Any]) -> Agent:
    values = list(row)
    values[4] = bool(values[4])  # SQLite keeps booleans as 0 and 1
    return Agent(*values)


def _insert(site: Site, actor: str, agent: NewAgent, reason: str) -> Agent:
    now = stored_now()
    with site.db.write() as cur:
        if cur.execute("SELECT 1 FROM agent WHERE login = ?", [agent.login]).fetchone():
            raise InvalidStateError(
                f"{agent.login} is already in the agents register",
                hint="a disabled agent stays listed; designate them under another login",
            )
        cur.execute(
            "INSERT INTO agent (login, name, role, designation, active, added_by, added_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [agent.login, agent.name, agent.role, agent.designation, True, actor, now],
        )
        site.ledger.append_in(
            cur,
            actor,
            [
                Record(
                    "agent.add",
                    {"agent": agent.login},
                    reason,
                    data={"name": agent.name, "role": agent.role, "designation": agent.designation},
                )
            ],
        )
    found = get(site, agent.login)
    assert found is not None
    return found


def add(site: Site, actor: str, agent: NewAgent) -> Agent:
    """Designate an agent (the caller has checked that `actor` may)."""
    agent = agent.checked()
    return _insert(site, actor, agent, f"designated as {agent.role} by {agent.designation}")


def bootstrap(site: Site, login: str, name: str, designation: str) -> Agent:
    """The first administrator, when the register is empty (a new or upgraded site):
    the login that created the site, recorded as such in the ledger."""
    if list_all(site):
        raise InvalidStateError("the agents register is not empty")
    agent = NewAgent(login, name, Role.ADMIN.value, designation).checked()
    return _insert(site, login, agent, "first administrator, who created the site")


def disable(site: Site, actor: str, login: str, reason: str) -> Agent:
    """Withdraw a designation; the agent stays listed, and can no longer act."""
    text.prose(reason, "the reason for disabling the agent")
    if not reason.strip():
        raise InputError("give the reason for disabling the agent (--reason)")
    now = stored_now()
    with site.db.write() as cur:
        row = cur.execute("SELECT role, active FROM agent WHERE login = ?", [login]).fetchone()
        if row is None:
            raise InputError(f"unknown agent {login!r}", hint="see 'scelle agent list'")
        if not row[1]:
            raise InvalidStateError(f"{login} is already disabled")
        if row[0] == Role.ADMIN:
            (admins,) = cur.execute(
                "SELECT COUNT(*) FROM agent WHERE role = ? AND active = ?", [Role.ADMIN.value, True]
            ).fetchone()
            if int(admins) <= 1:
                raise InvalidStateError(
                    f"{login} is the last active administrator", hint="designate another first"
                )
        cur.execute(
            "UPDATE agent SET active = ?, disabled_by = ?, disabled_at = ?, disabled_reason = ? "
            "WHERE login = ?",
            [False, actor, now, reason.strip(), login],
        )
        site.ledger.append_in(
            cur, actor, [Record("agent.disable", {"agent": login}, reason.strip())]
        )
    found = get(site, login)
    assert found is not None
    return found


def authorise(site: Site, login: str, permission: Permission, what: str) -> Agent:
    """The designated, active agent behind `login`, if their role allows `permission`.

    Otherwise the refusal is appended to the ledger (committed on its own) and
    PermissionDeniedError raised. `what` names the command, for the ledger and the message.
    """
    agent = get(site, login)
    if agent is None:
        why, hint = f"{login} is not a designated agent of this site", "ask an administrator"
    elif not agent.active:
        why, hint = f"{login} is disabled since {agent.disabled_at}", None
    elif agent.role not in GRANTS:
        why, hint = f"{login} has an unknown role {agent.role!r}", "ask an administrator"
    elif permission not in GRANTS[Role(agent.role)]:
        why = f"{login} ({agent.role}) may not {permission.value}"
        hint = who_may(permission)
    else:
        return agent
    refuse(site, login, what, why, hint, permission=permission.name.lower())


def refuse(
    site: Site, login: str, what: str, why: str, hint: str | None = None, **data: str
) -> NoReturn:
    """Record a refusal in the ledger (committed on its own), then raise PermissionDeniedError."""
    site.ledger.append(
        login, Record("access.refused", {"agent": login, "command": what}, why, data=data)
    )
    raise PermissionDeniedError(f"refused: {why}", hint=hint)
