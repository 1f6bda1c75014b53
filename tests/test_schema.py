"""The versioned schema: migrations build exactly the models, and versions are enforced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlmodel import SQLModel

import exporters.models  # noqa: F401 - every table the migrations create
import requisition.models  # noqa: F401
from custody import schema
from custody.db import Database
from custody.errors import DatabaseError
from tests.conftest import SiteEnv, raw_connection


def test_migrated_schema_equals_the_models(tmp_path: Path) -> None:
    migrated = Database(f"sqlite:///{tmp_path / 'm.db'}", create=True)
    assert schema.upgrade(migrated) == [1, 2, 3, 4, 5, 6]
    assert schema.upgrade(migrated) == []
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


def test_older_and_newer_schemas_are_refused(site_env: SiteEnv) -> None:
    site_env.site.close()
    conn = raw_connection(site_env)
    conn.execute("INSERT INTO schema_version VALUES (99, 'x', 'from the future')")
    db = Database(site_env.settings.database_url)
    with pytest.raises(DatabaseError, match="v99 is newer than this scelle"):
        schema.require_current(db)
    conn.execute("DELETE FROM schema_version")
    with pytest.raises(DatabaseError, match="not a scelle database"):
        schema.require_current(db)
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
    from custody.site import init_site
    from tests.conftest import ADMIN, run_cli

    settings = load_settings({"home": str(tmp_path / "site"), "site_name": "csv.test"})
    with monkeypatch.context() as v1:
        v1.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
        v1.setattr(schema, "LATEST", 1)
        v1.setattr(audit, "index_entries", lambda _cur, _entries: None)  # not yet written
        site, _ = init_site(settings, b"passphrase")
        site.close()
    env = {"SCELLE_HOME": str(settings.home)}
    refused = run_cli(["camera", "list"], env=env)
    assert refused.exit_code == 6
    assert f"schema v1 is older than this scelle's v{schema.LATEST}" in refused.stderr
    upgraded = run_cli(["db", "upgrade"], env=env)
    assert upgraded.stdout.splitlines() == [
        "applied migrations [2, 3, 4, 5, 6]",
        f"first administrator: {ADMIN}",
    ]
    assert run_cli(["camera", "list"], env=env).exit_code == 0
    verified = run_cli(["ledger", "verify", "--audit-index"], env=env)
    assert verified.exit_code == 0, verified.stderr
    assert "audit index OK" in verified.stdout
    found = json.loads(run_cli(["audit", "--action", "site", "--json"], env=env).stdout)
    assert [(row["seq"], row["action"]) for row in found] == [(0, "site.init")]
    assert run_cli(["db", "upgrade"], env=env).stdout.strip() == "schema is current (v6)"


def test_a_later_migration_still_upgrades(
    site_env: SiteEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`db upgrade` checks the administrator on a schema older than its own."""
    from tests.conftest import ADMIN, OPERATOR, run_cli

    site_env.site.close()
    step = (schema.LATEST + 1, "a later step", lambda _conn: None)
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, step])
    monkeypatch.setattr(schema, "LATEST", schema.LATEST + 1)
    refused = run_cli(["db", "upgrade"], env=site_env.env_as(OPERATOR))
    assert refused.exit_code == 5 and "may not upgrade or copy the database" in refused.stderr
    upgraded = run_cli(["db", "upgrade"], env=site_env.env_as(ADMIN))
    assert upgraded.exit_code == 0, upgraded.stderr
    assert upgraded.stdout.strip() == f"applied migrations [{schema.LATEST}]"
