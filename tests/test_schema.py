"""The versioned schema: migrations build exactly the models, and versions are enforced."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlmodel import SQLModel

import exporters.models  # noqa: F401 - every table the migrations create
import requisition.models  # noqa: F401
from custody import schema
from custody.db import Database
from custody.errors import DatabaseError
from tests.conftest import SiteEnv


def test_migrated_schema_equals_the_models(tmp_path: Path) -> None:
    migrated = Database(f"sqlite:///{tmp_path / 'm.db'}", create=True)
    assert schema.upgrade(migrated) == [1, 2, 3, 4]
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
    path = site_env.site.db.path
    assert path is not None
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (99, 'x', 'from the future')")
    conn.commit()
    db = Database(f"sqlite:///{path}")
    with pytest.raises(DatabaseError, match="v99 is newer than this scelle"):
        schema.require_current(db)
    conn.execute("DELETE FROM schema_version")
    conn.commit()
    with pytest.raises(DatabaseError, match="not a scelle database"):
        schema.require_current(db)
    db.dispose()
    conn.close()


def test_db_upgrade_migrates_a_v1_site(site_env: SiteEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """A site created before the footage tables existed is upgraded in place, and its
    ledger still verifies."""
    from tests.conftest import run_cli

    home = site_env.settings.home
    site_env.site.close()
    path = home / "scelle.db"
    path.unlink()
    for suffix in ("-wal", "-shm"):
        (home / f"scelle.db{suffix}").unlink(missing_ok=True)
    site_env.settings.checkpoint_file.unlink()
    site_env.settings.key_file.unlink()
    site_env.settings.public_key_file.unlink()
    with monkeypatch.context() as before_footage:
        before_footage.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
        before_footage.setattr(schema, "LATEST", 1)
        assert run_cli(["init", "--site-name", "csv.test"], env=site_env.env).exit_code == 0
    refused = run_cli(["camera", "list"], env=site_env.env)
    assert refused.exit_code == 6
    assert "schema v1 is older than this scelle's v4" in refused.stderr
    upgraded = run_cli(["db", "upgrade"], env=site_env.env)
    assert upgraded.stdout.strip() == "applied migrations [2, 3, 4]"
    assert run_cli(["camera", "list"], env=site_env.env).exit_code == 0
    assert run_cli(["ledger", "verify"], env=site_env.env).exit_code == 0
    assert run_cli(["db", "upgrade"], env=site_env.env).stdout.strip() == "schema is current (v4)"
