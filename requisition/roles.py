"""Roles and what each may do: a table the CLI reads before it opens anything.

Kept apart from requisition/agents.py so that `scelle --help` does not import the
database layer.
"""

from __future__ import annotations

from enum import StrEnum

from custody.i18n import N_, _
from requisition.words import label


class Role(StrEnum):
    OPERATOR = "operator"  # registers requisitions, extracts, seals and hands over
    SUPERVISOR = "supervisor"  # approves or denies, places and lifts holds, purges
    AUDITOR = "auditor"  # reads the ledger and the registers, never the footage
    ADMIN = "admin"  # designates agents, keeps the camera register and the database


class Permission(StrEnum):
    """Things an agent may be allowed to do; the text is what a refusal names (marked for
    the catalog, translated where a refusal shows it: `_(permission.value)`)."""

    READ = N_("read the registers")
    LEDGER_WRITE = N_("sign checkpoints or add notes to the ledger")
    AUDIT = N_("query or export the ledger for an audit")
    AGENT_MANAGE = N_("designate or disable agents")
    CAMERA_MANAGE = N_("change the camera register")
    FOOTAGE_INDEX = N_("index footage")
    FOOTAGE_GENERATE = N_("generate test footage")
    FOOTAGE_FIND = N_("search the footage index")
    REGISTER = N_("register or cancel requisitions")
    DECIDE = N_("approve or deny requisitions")
    EXTRACT = N_("extract footage")
    HANDOVER = N_("hand over or copy exports")
    DOCUMENT = N_("issue documents")
    HOLD_PLACE = N_("place holds")
    HOLD_RELEASE = N_("release holds")
    PURGE = N_("run the retention purge")
    DATABASE = N_("upgrade or copy the database")


_ALL = frozenset(Permission)
_OPERATOR = {
    Permission.READ,
    Permission.LEDGER_WRITE,
    Permission.FOOTAGE_INDEX,
    Permission.FOOTAGE_FIND,
    Permission.REGISTER,
    Permission.EXTRACT,
    Permission.HANDOVER,
    Permission.DOCUMENT,
    Permission.HOLD_PLACE,  # preserving footage never destroys anything: anyone on duty
}
GRANTS: dict[Role, frozenset[Permission]] = {
    Role.OPERATOR: frozenset(_OPERATOR),
    Role.SUPERVISOR: frozenset(
        _OPERATOR | {Permission.DECIDE, Permission.HOLD_RELEASE, Permission.PURGE, Permission.AUDIT}
    ),
    Role.AUDITOR: frozenset({Permission.READ, Permission.AUDIT, Permission.LEDGER_WRITE}),
    Role.ADMIN: frozenset(
        {
            Permission.READ,
            Permission.LEDGER_WRITE,
            Permission.AUDIT,
            Permission.AGENT_MANAGE,
            Permission.CAMERA_MANAGE,
            Permission.FOOTAGE_INDEX,
            Permission.FOOTAGE_GENERATE,
            Permission.PURGE,
            Permission.DATABASE,
        }
    ),
}
assert set().union(*GRANTS.values()) == _ALL, "a permission no role holds"


def who_may(permission: Permission) -> str:
    roles = [label("role", r.value) for r in Role if permission in GRANTS[r]]
    either = roles[0]
    for role in roles[1:]:
        either = _("{either} or {role}").format(either=either, role=role)
    return _("the {roles} role may").format(roles=either)


# What each ledger action needs, as the database checks it on PostgreSQL
# (custody/pg_ledger.py reads `ledger_policy`, written from this at each upgrade).
# `access.refused` may be recorded by anyone about themselves; actions absent from this
# table (site.init, db.copy, hold.restate) only by the owner of the tables.
ACTION_PERMISSION: dict[str, Permission] = {
    "ledger.note": Permission.LEDGER_WRITE,
    "ledger.disavow": Permission.DATABASE,
    "ledger.export": Permission.AUDIT,
    "audit.query": Permission.AUDIT,
    "agent.add": Permission.AGENT_MANAGE,
    "agent.rename": Permission.AGENT_MANAGE,
    "agent.disable": Permission.AGENT_MANAGE,
    "camera.add": Permission.CAMERA_MANAGE,
    "camera.check": Permission.FOOTAGE_INDEX,
    "footage.ingest": Permission.FOOTAGE_INDEX,
    "footage.generate": Permission.FOOTAGE_GENERATE,
    "footage.consult": Permission.FOOTAGE_FIND,
    "footage.extract": Permission.EXTRACT,
    "requisition.attach": Permission.EXTRACT,
    "footage.destroy.intent": Permission.PURGE,
    "footage.destroy": Permission.PURGE,
    "attachment.destroy": Permission.PURGE,
    "footage.destroy.failed": Permission.PURGE,
    "export.destroy": Permission.PURGE,
    "hold.place": Permission.HOLD_PLACE,
    "hold.release": Permission.HOLD_RELEASE,
    "requisition.register": Permission.REGISTER,
    "requisition.cancel": Permission.REGISTER,
    "requisition.approve": Permission.DECIDE,
    "requisition.deny": Permission.DECIDE,
    "requisition.unavailable": Permission.EXTRACT,
    "requisition.export": Permission.EXTRACT,
    "requisition.handover": Permission.HANDOVER,
    "export.copy": Permission.HANDOVER,
    "document.issue": Permission.DOCUMENT,
    # a site made before PDFs were signed gets its document certificate from the first
    # agent who signs a paper (requisition/papers.py), recorded once
    "site.document-key": Permission.DOCUMENT,
}


def action_roles() -> dict[str, list[str]]:
    """Each ledger action and the roles that may record it."""
    return {
        action: [r.value for r in Role if permission in GRANTS[r]]
        for action, permission in ACTION_PERMISSION.items()
    }
