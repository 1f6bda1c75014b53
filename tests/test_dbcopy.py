"""`scelle db copy`: a SQLite site moved to PostgreSQL loses nothing and goes on working."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ADMIN, AUDITOR, SUPERVISOR, SiteEnv, as_login, fresh_database, run_cli
from tests.test_requisitions import filmed, register  # noqa: F401 - fixture


@pytest.mark.backends("sqlite")
def test_a_sqlite_site_moves_to_postgresql(
    filmed: SiteEnv,  # noqa: F811 - fixture
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    rid = register(filmed.env)
    assert run_cli(["requisition", "approve", rid], env=filmed.env_as(SUPERVISOR)).exit_code == 0
    before = run_cli(["ledger", "verify"], env=filmed.env_as(AUDITOR)).stdout
    target = fresh_database("postgresql", request, tmp_path / "pg")
    copied = run_cli(["db", "copy", "--to", target], env=filmed.env_as(ADMIN))
    assert copied.exit_code == 0, copied.stderr
    root = before.split("root ")[1].split()[0]
    assert f"root {root}" in copied.stdout
    assert "ledger verified on both sides" in copied.stdout

    def on_pg(login: str) -> dict[str, str]:
        return {**filmed.env_as(login), **as_login(target, login)}

    moved = run_cli(["ledger", "verify"], env=on_pg(AUDITOR))
    assert moved.exit_code == 0, moved.stderr
    shown = json.loads(run_cli(["requisition", "show", rid, "--json"], env=on_pg(ADMIN)).stdout)
    assert shown["state"] == "approved" and [h["camera"] for h in shown["holds"]] == ["C-012"]
    last = json.loads(
        run_cli(["ledger", "show", "--json", "--limit", "1"], env=on_pg(AUDITOR)).stdout
    )[0]
    assert (last["action"], last["actor"]) == ("db.copy", ADMIN)
    # The work goes on there: new ids follow the copied ones (sequences were moved on).
    second = register(on_pg("test-operator"), "--force")  # the same one again, on purpose
    assert second != rid
    held = json.loads(run_cli(["hold", "list", "--json"], env=on_pg(ADMIN)).stdout)
    assert len({h["id"] for h in held}) == len(held) == 2
    assert run_cli(["ledger", "verify", "--audit-index"], env=on_pg(AUDITOR)).exit_code == 0
    # The source is untouched and a second copy into the same database is refused.
    assert run_cli(["ledger", "verify"], env=filmed.env_as(AUDITOR)).stdout == before
    again = run_cli(["db", "copy", "--to", target], env=filmed.env_as(ADMIN))
    assert again.exit_code == 5 and "already holds a ledger" in again.stderr
