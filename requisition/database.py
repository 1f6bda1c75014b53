"""`scelle db upgrade` and `scelle db copy`, as the library does them (with their ledger
entries and the first administrator), so that the CLI only prints."""

from __future__ import annotations

from dataclasses import dataclass, field

from custody import schema
from custody.config import Settings, check_database_url
from custody.db import Database
from custody.dbcopy import Copied, copy_database
from custody.entry import Record
from custody.i18n import _
from custody.ledger import Ledger
from custody.site import Site
from requisition import agents
from requisition.migrations import PLAN, metadata, upgrade
from requisition.purge_history import compact
from requisition.roles import Permission
from requisition.site import open_site


@dataclass(frozen=True)
class Upgraded:
    applied: list[int]
    latest: int
    first_admin: str | None  # designated now: the register was empty
    compacted: int = 0  # destroyed segment rows moved into periods (v14)
    refused: list[int] = field(default_factory=list)  # batches whose rows fail their entry


def upgrade_site(settings: Settings, admin_name: str | None = None) -> Upgraded:
    """`scelle db upgrade`: once the agents register exists (v5), only an administrator
    upgrades (a refusal is recorded); a site upgraded from before it has none, and the
    login running the upgrade becomes its first administrator, recorded in the ledger."""
    db = Database(settings.database_url)
    try:
        if schema.version(db) >= 5:
            older = Site(settings, db)  # not open_site: its schema is older by definition
            agents.check(older, older.login, Permission.DATABASE, "db upgrade")
        applied = upgrade(db)
    finally:
        db.dispose()
    with open_site(settings) as site:
        first = None
        if not agents.list_all(site):
            agents.bootstrap(site, site.login, admin_name or site.login, _("database upgrade"))
            first = site.login
        # v14 keeps destroyed footage by periods: the history certified before it moves now
        with site.db.exclusive("purge", _("another purge is running")):
            compacted = compact(site)
    return Upgraded(applied, PLAN.latest, first, compacted.moved, compacted.refused)


def copy_site(site: Site, to: str) -> tuple[Copied, str]:
    """`scelle db copy`: every row into the empty database `to`, both ledgers verified,
    recorded there (`db.copy`); if the target's login is not an agent there (PostgreSQL
    roles are not SQLite's logins), it becomes its administrator. Returns the copy and
    the target's printable URL."""
    check_database_url(to, "--to")
    target = Database(to)
    try:
        copied = copy_database(site.db, target, site.settings, upgrade=upgrade, metadata=metadata())
        moved = Site(site.settings, target)
        Ledger(target).append(
            moved.login,
            Record(
                "db.copy",
                {"database": target.display_url},
                _("site database copied here by {login}, both ledgers verified").format(
                    login=site.login
                ),
                data={"entries": copied.entries, "rows": copied.rows, "from": site.login},
            ),
        )
        if agents.get(moved, moved.login) is None:
            agents.add(
                moved,
                moved.login,
                agents.NewAgent(
                    moved.login,
                    moved.login,
                    "admin",
                    _("db copy by {login}").format(login=site.login),
                ),
            )
        return copied, target.display_url
    finally:
        target.dispose()
