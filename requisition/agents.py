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
from custody.i18n import _
from custody.site import Site
from custody.timewindow import stored_now
from requisition.roles import GRANTS, Permission, Role, who_may
from requisition.words import label, stored

LOGIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


@dataclass(frozen=True)
class NewAgent:
    login: str
    name: str
    role: str
    designation: str

    def checked(self) -> NewAgent:
        login = check_login(self.login)
        role = stored("role", self.role, [r.value for r in Role])
        for value, what, empty in (
            (self.name, _("the agent's name"), _("the agent's name is empty")),
            (
                self.designation,
                _("the agent's designation reference"),
                _("the agent's designation reference is empty"),
            ),
        ):
            text.line(value, what)
            if not value.strip():
                raise InputError(empty)
        return NewAgent(login, self.name.strip(), role, self.designation.strip())


def same_agent(a: str, b: str) -> bool:
    """Agents compare without case or surrounding spaces: `Root ` is `root`."""
    return a.strip().casefold() == b.strip().casefold()


def check_login(login: str) -> str:
    if not LOGIN.fullmatch(login):
        raise InputError(
            _("invalid login {login}: letters, digits, '.', '_', '@', '-'").format(
                login=text.shown(login)
            )
        )
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
                _("{login} is already in the agents register").format(login=agent.login),
                hint=_("a disabled agent stays listed; designate them under another login"),
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
    reason = _("designated as {role} by {designation}").format(
        role=label("role", agent.role), designation=agent.designation
    )
    return _insert(site, actor, agent, reason)


def bootstrap(site: Site, login: str, name: str, designation: str) -> Agent:
    """The first administrator, when the register is empty (a new or upgraded site):
    the login that created the site, recorded as such in the ledger."""
    if list_all(site):
        raise InvalidStateError(_("the agents register is not empty"))
    agent = NewAgent(login, name, Role.ADMIN.value, designation).checked()
    return _insert(site, login, agent, _("first administrator, who created the site"))


def disable(site: Site, actor: str, login: str, reason: str) -> Agent:
    """Withdraw a designation; the agent stays listed, and can no longer act."""
    text.prose(reason, _("the reason for disabling the agent"))
    if not reason.strip():
        raise InputError(_("give the reason for disabling the agent (--reason)"))
    now = stored_now()
    with site.db.write() as cur:
        row = cur.execute("SELECT role, active FROM agent WHERE login = ?", [login]).fetchone()
        if row is None:
            raise InputError(
                _("unknown agent {login!r}").format(login=login), hint=_("see 'scelle agent list'")
            )
        if not row[1]:
            raise InvalidStateError(_("{login} is already disabled").format(login=login))
        if row[0] == Role.ADMIN:
            (admins,) = cur.execute(
                "SELECT COUNT(*) FROM agent WHERE role = ? AND active = ?", [Role.ADMIN.value, True]
            ).fetchone()
            if int(admins) <= 1:
                raise InvalidStateError(
                    _("{login} is the last active administrator").format(login=login),
                    hint=_("designate another first"),
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
    hint: str | None
    if agent is None:
        why = _("{login} is not a designated agent of this site").format(login=login)
        hint = _("ask an administrator")
    elif not agent.active:
        why = _("{login} is disabled since {at}").format(login=login, at=agent.disabled_at)
        hint = None
    elif agent.role not in GRANTS:
        why = _("{login} has an unknown role {role!r}").format(login=login, role=agent.role)
        hint = _("ask an administrator")
    elif permission not in GRANTS[Role(agent.role)]:
        why = _("{login} ({role}) may not {permission}").format(
            login=login, role=label("role", agent.role), permission=_(permission.value)
        )
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
    raise PermissionDeniedError(_("refused: {why}").format(why=why), hint=hint)
