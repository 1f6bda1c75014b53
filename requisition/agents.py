"""Designated agents (CSI L252-2): only they may act, each within a role.

The acting agent is not something scelle is told: it is the login the operating system
or the database server authenticated (`Database.login`). An unknown or disabled login, or
a role that may not do a thing, is refused, and the refusal is itself a ledger entry
(`access.refused`), in its own transaction, so that it stays recorded while the action
does not happen. The agent table says who may act now; the ledger keeps its history
(`agent.add`, `agent.rename`, `agent.disable`), which the audit reads to name the agent of
each entry as they were then.
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
    """An agent to designate. Décret 2023-1102 logs the surname and first name apart:
    give `surname` and `first_name`. `name` in one piece (what scripts gave before) is
    still taken: it is kept whole as the surname, with no first name, since splitting it
    would guess (`Jean de La Fontaine`, `DURAND Marie`)."""

    login: str
    name: str  # the whole name in one piece; empty when surname and first_name are given
    role: str
    designation: str
    surname: str = ""
    first_name: str = ""

    def checked(self) -> NewAgent:
        login = check_login(self.login)
        role = stored("role", self.role, [r.value for r in Role])
        text.line(self.designation, _("the agent's designation reference"))
        if not self.designation.strip():
            raise InputError(_("the agent's designation reference is empty"))
        surname, first_name = names(self.surname, self.first_name, self.name)
        return NewAgent(
            login,
            full_name(surname, first_name),
            role,
            self.designation.strip(),
            surname,
            first_name,
        )


def names(surname: str, first_name: str, name: str = "") -> tuple[str, str]:
    """(surname, first name) checked: from the two, or from `name` in one piece (then the
    surname, with no first name); InputError if both ways are given, or neither."""
    for value, what in (
        (surname, _("the agent's surname")),
        (first_name, _("the agent's first name")),
        (name, _("the agent's name")),
    ):
        text.line(value, what)
    surname, first_name, name = surname.strip(), first_name.strip(), name.strip()
    if surname or first_name:
        if name and name != full_name(surname, first_name):
            raise InputError(
                _("give the agent's name either whole or as surname and first name, not both")
            )
        if not surname:
            raise InputError(_("the agent's surname is empty"))
        return surname, first_name
    if not name:
        raise InputError(_("the agent's name is empty"))
    return name, ""


def full_name(surname: str, first_name: str) -> str:
    """The name as people read it: `Marie DURAND` (the surname alone without a first name)."""
    return f"{first_name} {surname}".strip()


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
    surname: str
    first_name: str


_COLUMNS = ", ".join(Agent.__dataclass_fields__)


@dataclass(frozen=True)
class AgentIdentity:
    """An agent as the legal papers name them: décret 2023-1102's surname, first name and
    role (qualité), and the designation they act under."""

    login: str
    surname: str
    first_name: str
    role: str  # as stored: operator, supervisor, auditor, admin
    designation: str

    @property
    def full_name(self) -> str:
        """`Marie DURAND`."""
        return full_name(self.surname, self.first_name)

    @property
    def role_text(self) -> str:
        """The role in the user's language: `opérateur` in French."""
        return label("role", self.role)


def identity(site: Site, login: str) -> AgentIdentity | None:
    """Who `login` is in the agents register now (disabled agents too: papers about what
    they did still name them); None for a login nobody designated. Who a login was when
    a past entry was written is the ledger's to say: the audit resolves it from the
    `agent.add` and `agent.rename` entries before it (custody/access.py)."""
    agent = get(site, login)
    if agent is None:
        return None
    return AgentIdentity(
        agent.login, agent.surname, agent.first_name, agent.role, agent.designation
    )


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
            "INSERT INTO agent (login, name, surname, first_name, role, designation, active, "
            "added_by, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                agent.login,
                agent.name,
                agent.surname,
                agent.first_name,
                agent.role,
                agent.designation,
                True,
                actor,
                now,
            ],
        )
        site.ledger.append_in(
            cur,
            actor,
            [
                Record(
                    "agent.add",
                    {"agent": agent.login},
                    reason,
                    data={
                        "name": agent.name,
                        "surname": agent.surname,
                        "first_name": agent.first_name,
                        "role": agent.role,
                        "designation": agent.designation,
                    },
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


def bootstrap(
    site: Site,
    login: str,
    name: str,
    designation: str,
    *,
    surname: str = "",
    first_name: str = "",
) -> Agent:
    """The first administrator, when the register is empty (a new or upgraded site):
    the login that created the site, recorded as such in the ledger. `name` in one
    piece, or `surname` and `first_name` (NewAgent)."""
    if list_all(site):
        raise InvalidStateError(_("the agents register is not empty"))
    agent = NewAgent(login, name, Role.ADMIN.value, designation, surname, first_name).checked()
    return _insert(site, login, agent, _("first administrator, who created the site"))


def rename(site: Site, actor: str, login: str, surname: str, first_name: str, reason: str) -> Agent:
    """Record an agent's surname and first name anew (a change of name, or the first name
    of an agent designated with one name), in the register and the ledger (`agent.rename`).
    Earlier entries keep the name they were written under: the audit reads each entry's
    agent from the designations before it."""
    text.prose(reason, _("the reason for renaming the agent"))
    if not reason.strip():
        raise InputError(_("give the reason for renaming the agent (--reason)"))
    surname, first_name = names(surname, first_name)
    name = full_name(surname, first_name)
    with site.db.write() as cur:
        row = cur.execute(
            "SELECT role, designation, surname, first_name FROM agent WHERE login = ?", [login]
        ).fetchone()
        if row is None:
            raise InputError(
                _("unknown agent {login!r}").format(login=login), hint=_("see 'scelle agent list'")
            )
        role, designation, was_surname, was_first_name = row
        if (was_surname, was_first_name) == (surname, first_name):
            raise InvalidStateError(
                _("{login} is already named {name}").format(login=login, name=name)
            )
        cur.execute(
            "UPDATE agent SET name = ?, surname = ?, first_name = ? WHERE login = ?",
            [name, surname, first_name, login],
        )
        site.ledger.append_in(
            cur,
            actor,
            [
                Record(
                    "agent.rename",
                    {"agent": login},
                    reason.strip(),
                    data={
                        "name": name,
                        "surname": surname,
                        "first_name": first_name,
                        "role": role,
                        "designation": designation,
                        "was": full_name(was_surname, was_first_name),
                    },
                )
            ],
        )
    found = get(site, login)
    assert found is not None
    return found


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
    check(site, login, permission, what)
    agent = get(site, login)
    assert agent is not None
    return agent


def check(site: Site, login: str, permission: Permission, what: str) -> None:
    """`authorise`, reading only the columns every schema since v5 has: `db upgrade`
    checks its administrator on a schema older than its own."""
    with site.db.read() as cur:
        agent = cur.execute(
            "SELECT role, active, disabled_at FROM agent WHERE login = ?", [login]
        ).fetchone()
    hint: str | None
    if agent is None:
        why = _("{login} is not a designated agent of this site").format(login=login)
        hint = _("ask an administrator")
    elif not agent[1]:
        why = _("{login} is disabled since {at}").format(login=login, at=agent[2])
        hint = None
    elif agent[0] not in GRANTS:
        why = _("{login} has an unknown role {role!r}").format(login=login, role=agent[0])
        hint = _("ask an administrator")
    elif permission not in GRANTS[Role(agent[0])]:
        why = _("{login} ({role}) may not {permission}").format(
            login=login, role=label("role", agent[0]), permission=_(permission.value)
        )
        hint = who_may(permission)
    else:
        return
    refuse(site, login, what, why, hint, permission=permission.name.lower())


def refuse(
    site: Site, login: str, what: str, why: str, hint: str | None = None, **data: str
) -> NoReturn:
    """Record a refusal in the ledger (committed on its own), then raise PermissionDeniedError."""
    site.ledger.append(
        login, Record("access.refused", {"agent": login, "command": what}, why, data=data)
    )
    raise PermissionDeniedError(_("refused: {why}").format(why=why), hint=hint)
