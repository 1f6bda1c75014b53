"""The versioned schema: migrations build exactly the models, and versions are enforced."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlmodel import SQLModel

import custody.tables  # noqa: F401 - every table the migrations create
import exporters.tables  # noqa: F401
import requisition.tables  # noqa: F401
from custody.db import Database
from custody.errors import DatabaseError
from custody.schema import Migration
from requisition import migrations
from requisition.migrations import PLAN
from tests.conftest import SiteEnv, raw_connection


def test_migrated_schema_equals_the_models(tmp_path: Path) -> None:
    migrated = Database(f"sqlite:///{tmp_path / 'm.db'}", create=True)
    assert migrations.upgrade(migrated) == list(range(1, 20))
    assert migrations.upgrade(migrated) == []
    fresh = Database(f"sqlite:///{tmp_path / 'f.db'}", create=True)
    SQLModel.metadata.create_all(fresh.engine)

    def shape(db: Database) -> dict[str, list[tuple[str, str, bool]]]:
        insp = inspect(db.engine)
        return {
            t: [(c["name"], str(c["type"]), bool(c["nullable"])) for c in insp.get_columns(t)]
            for t in sorted(insp.get_table_names())
        }

    assert shape(migrated) == shape(fresh)
    migrated.dispose()
    fresh.dispose()


def test_the_plain_models_have_their_tables_columns() -> None:
    """A camera and a requisition travel as plain dataclasses, read and written through
    the driver (everyday commands never import SQLModel): the same columns as their
    tables, in the same order."""
    from exporters.models import CAMERA_COLUMNS
    from requisition.models import REQUISITION_COLUMNS

    tables = SQLModel.metadata.tables
    assert tuple(c.name for c in tables["camera"].columns) == CAMERA_COLUMNS
    assert tuple(c.name for c in tables["requisition"].columns) == REQUISITION_COLUMNS


def test_older_and_newer_schemas_are_refused(site_env: SiteEnv) -> None:
    site_env.site.close()
    conn = raw_connection(site_env)
    conn.execute("INSERT INTO schema_version VALUES (99, 'x', 'from the future')")
    db = Database(site_env.settings.database_url)
    with pytest.raises(DatabaseError, match="v99 is newer than this scelle"):
        migrations.require_current(db)
    conn.execute("DELETE FROM schema_version")
    with pytest.raises(DatabaseError, match="not a scelle database"):
        migrations.require_current(db)
    db.dispose()
    conn.close()


def test_db_upgrade_migrates_a_v1_site(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site created before the footage tables, the agents register and the audit index
    existed is upgraded in place: the index is built from the entries, the upgrading
    login becomes the first administrator, and the ledger still verifies."""
    from custody import audit
    from custody.config import load_settings
    from requisition.site import init_site
    from tests.conftest import ADMIN, run_cli

    settings = load_settings({"home": str(tmp_path / "site"), "site_name": "csv.test"})
    with monkeypatch.context() as v1:
        v1.setattr(migrations, "PLAN", replace(PLAN, migrations=PLAN.migrations[:1]))
        v1.setattr(audit, "index_entries", lambda _cur, _entries: None)  # not yet written
        site, _ = init_site(settings, b"passphrase")
        site.close()
    env = {"SCELLE_HOME": str(settings.home)}
    refused = run_cli(["camera", "list"], env=env)
    assert refused.exit_code == 6
    assert f"schema v1 is older than this scelle's v{PLAN.latest}" in refused.stderr
    upgraded = run_cli(["db", "upgrade"], env=env)
    assert upgraded.stdout.splitlines() == [
        "applied migrations v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15, v16, "
        "v17, v18, v19",
        f"first administrator: {ADMIN}",
    ]
    assert run_cli(["camera", "list"], env=env).exit_code == 0
    verified = run_cli(["ledger", "verify", "--audit-index"], env=env)
    assert verified.exit_code == 0, verified.stderr
    assert "audit index OK" in verified.stdout
    found = json.loads(run_cli(["audit", "--action", "site", "--json"], env=env).stdout)
    assert [(row["seq"], row["action"]) for row in found] == [
        (0, "site.init"),
        (1, "site.document-key"),
    ]
    assert (
        run_cli(["db", "upgrade"], env=env).stdout.strip() == f"schema is current (v{PLAN.latest})"
    )


def test_a_later_migration_still_upgrades(
    site_env: SiteEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`db upgrade` checks the administrator on a schema older than its own."""
    from tests.conftest import ADMIN, OPERATOR, run_cli

    site_env.site.close()
    step = Migration(PLAN.latest + 1, "a later step", lambda _conn, _md: None)
    monkeypatch.setattr(migrations, "PLAN", replace(PLAN, migrations=(*PLAN.migrations, step)))
    refused = run_cli(["db", "upgrade"], env=site_env.env_as(OPERATOR))
    assert refused.exit_code == 5 and "may not upgrade or copy the database" in refused.stderr
    upgraded = run_cli(["db", "upgrade"], env=site_env.env_as(ADMIN))
    assert upgraded.exit_code == 0, upgraded.stderr
    assert upgraded.stdout.strip() == f"applied migrations v{PLAN.latest + 1}"


def test_holds_in_force_before_v6_are_restated_and_obeyed(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A v5 site decided holds from its table; v6 decides from the ledger. The upgrade
    restates the holds in force (one ledger entry, by the upgrading login), so the first
    purge after it keeps what they hold; a released one stays released."""
    from custody.entry import Record
    from custody.timewindow import Window, now_us, utc_text
    from requisition.holds import list_holds
    from requisition.site import open_site
    from tests.conftest import ADMIN, make_site, run_cli
    from tests.footage_helpers import camera, fake_segments

    minute, day = 60_000_000, 86_400_000_000
    with monkeypatch.context() as v5:
        v5.setattr(migrations, "PLAN", replace(PLAN, migrations=PLAN.migrations[:5]))
        env = make_site(tmp_path, database_url=database_url)
        site = env.site
        cam = camera(site, "C-1", retention_days="1")
        start = now_us() // minute * minute - 2 * day
        fake_segments(site, cam, start, 6)
        for first, released in ((1, None), (4, "2026-11-01T00:00:00Z")):  # as v5 wrote them
            window = Window(start + first * minute, start + (first + 1) * minute)
            with site.db.write() as cur:
                cur.execute(
                    "INSERT INTO hold (camera_id, start_us, end_us, reason, placed_by, "
                    "placed_at, released_at) VALUES ('C-1', ?, ?, 'r', ?, 'x', ?)",
                    [window.start, window.end, ADMIN, released],
                )
                site.ledger.append_in(
                    cur,
                    ADMIN,
                    [
                        Record(
                            "hold.place",
                            {"camera": "C-1"},  # v5's entries named no hold id
                            "r",
                            data={
                                "from_utc": utc_text(window.start),
                                "to_utc": utc_text(window.end),
                            },
                        )
                    ],
                )
        site.close()
    upgraded = run_cli(["db", "upgrade"], env=env.env_as(ADMIN))
    assert upgraded.exit_code == 0, upgraded.stderr
    site = open_site(env.settings)
    (hold,) = list_holds(site)
    assert hold.start_us == start + minute and hold.placed_by == ADMIN
    last = json.loads(
        run_cli(["ledger", "show", "--json", "--limit", "1"], env=env.env_as(ADMIN)).stdout
    )[0]
    assert last["action"] == "hold.restate" and last["subject"]["holds"] == [1]
    purged = run_cli(["purge"], env=env.env_as(ADMIN))
    assert purged.exit_code == 0, purged.stderr
    left = sorted(p.name for p in (env.settings.home / "footage").rglob("*.mp4"))
    assert len(left) == 1 and left[0].startswith(utc_text(start + minute)[:4])
    assert run_cli(["ledger", "verify"], env=env.env_as(ADMIN)).exit_code == 0
    site.close()


def test_v7_stores_every_instant_in_one_form_so_text_order_is_time_order(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A v6 site held destruction times in two forms; `MIN(destroyed_at)` then picked the
    later one. After v7 it picks the earlier."""
    from custody.site import open_site
    from tests.conftest import ADMIN, make_site, run_cli
    from tests.footage_helpers import camera, fake_segments

    with monkeypatch.context() as v6:
        v6.setattr(migrations, "PLAN", replace(PLAN, migrations=PLAN.migrations[:6]))
        env = make_site(tmp_path, database_url=database_url)
        cam = camera(env.site, "C-1")
        fake_segments(env.site, cam, 1_795_000_000_000_000, 2)
        with env.site.db.write() as cur:  # as v6's purge wrote them
            cur.execute("UPDATE segment SET destroyed_at = '2026-11-20T10:00:20Z' WHERE id = 1")
            cur.execute(
                "UPDATE segment SET destroyed_at = '2026-11-20T10:00:20.500000Z' WHERE id = 2"
            )
            (before,) = cur.execute("SELECT MIN(destroyed_at) FROM segment").fetchone()
        env.site.close()
    assert before == "2026-11-20T10:00:20.500000Z"  # the bug: the later one
    assert run_cli(["db", "upgrade"], env=env.env_as(ADMIN)).exit_code == 0
    with open_site(env.settings, migrations.require_current) as site, site.db.read() as cur:
        (after,) = cur.execute("SELECT MIN(destroyed_at) FROM segment").fetchone()
        stored = [r[0] for r in cur.execute("SELECT applied_at FROM schema_version").fetchall()]
    assert after == "2026-11-20T10:00:20.000000Z"
    assert all(len(at) == 27 for at in stored)


def test_v8_keeps_each_agents_one_name_as_their_surname(site_env: SiteEnv) -> None:
    """A v7 site's agents had one name: after v8 it is their surname, with no first name
    (a split would guess), and the administrator who upgrades is checked on the v7
    schema, which has no surname column yet."""
    from custody.access import Context, describe
    from custody.entry import decode_entry
    from tests.conftest import ADMIN, OPERATOR, run_cli

    site_env.site.close()
    conn = raw_connection(site_env)
    for column in ("surname", "first_name"):  # the agent table as v7 made it
        conn.execute(f"ALTER TABLE agent DROP COLUMN {column}")
    conn.execute("DELETE FROM schema_version WHERE version = 8")
    conn.close()
    refused = run_cli(["db", "upgrade"], env=site_env.env_as(OPERATOR))
    assert refused.exit_code == 5 and "may not upgrade or copy the database" in refused.stderr
    upgraded = run_cli(["db", "upgrade"], env=site_env.env_as(ADMIN))
    assert upgraded.exit_code == 0, upgraded.stderr
    assert upgraded.stdout.strip() == "applied migrations v8"
    listed = json.loads(run_cli(["agent", "list", "--json"], env=site_env.env_as(ADMIN)).stdout)
    assert {(a["login"], a["name"], a["surname"], a["first_name"]) for a in listed} >= {
        (ADMIN, "Alice Admin", "Alice Admin", ""),
        (OPERATOR, OPERATOR, OPERATOR, ""),
    }
    # The ledger's own designation entries, read as the audit reads them, agree.
    db = Database(site_env.settings.database_url)
    with db.read() as cur:
        bodies = cur.execute("SELECT body FROM ledger_entry ORDER BY seq").fetchall()
    db.dispose()
    entries = [decode_entry(bytes(body)) for (body,) in bodies]
    context = Context()
    for entry in entries:
        context.learn(entry)
    refusal = describe(entries[-1], context)  # the operator's attempt to upgrade
    assert refusal.designation is not None
    assert (refusal.designation.surname, refusal.designation.first_name) == (OPERATOR, "")
    assert refusal.designation.role == "operator"


@pytest.mark.backends("sqlite")
def test_live_queries_walk_only_the_live_rows(site_env: SiteEnv) -> None:
    """v12: the purge's plan, `footage find` and the per-camera summary search partial
    indexes of the live rows (destroyed history stays in the table for the certificates
    and the register, never on these paths); v13: a run's rows are read in time order
    from an index, never sorted (a night's million)."""
    queries = {
        "segment_live_by_end": (
            "SELECT id, start_us, end_us, size FROM segment WHERE camera_id = ? AND end_us <= ? "
            "AND destroyed_at IS NULL AND purge_run IS NULL",
            ["C-1", 0],
        ),
        "segment_live_by_time": (
            "SELECT id FROM segment WHERE camera_id = ? AND start_us < ? AND start_us > ? "
            "AND end_us > ? AND destroyed_at IS NULL ORDER BY start_us",
            ["C-1", 0, 0, 0],
        ),
        "segment_by_run_time": (
            "SELECT s.id FROM segment s JOIN camera c ON c.id = s.camera_id "
            "WHERE s.purge_run = ? AND s.destroyed_at IS NULL "
            "AND (s.camera_id, s.start_us, s.id) > (?, ?, ?) "
            "ORDER BY s.camera_id, s.start_us, s.id LIMIT 1000",
            [1, "C-1", 0, 0],
        ),
    }
    conn = raw_connection(site_env)
    try:
        for index, (sql, params) in queries.items():
            plan = " ".join(str(row) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            assert f"USING INDEX {index}" in plan or f"USING COVERING INDEX {index}" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
    finally:
        conn.close()
