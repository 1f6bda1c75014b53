"""`scelle demo`: the README's main job, from nothing to a verified site."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.conftest import run_cli


def test_demo_builds_a_site_the_other_commands_can_explore(tmp_path: Path) -> None:
    site = tmp_path / "demo"
    result = run_cli(["demo", "--site", str(site)])
    assert result.exit_code == 0, result.stderr
    assert "ledger verified: 4 entries, 2 checkpoints" in result.stdout
    assert f"export SCELLE_HOME={site} SCELLE_PASSPHRASE_FILE={site / 'demo-passphrase'}" in (
        result.stdout
    )
    assert stat.S_IMODE((site / "demo-passphrase").stat().st_mode) == 0o600
    env = {"SCELLE_HOME": str(site), "SCELLE_PASSPHRASE_FILE": str(site / "demo-passphrase")}
    verify = run_cli(["ledger", "verify"], env=env)
    assert verify.exit_code == 0
    assert "ledger OK: 4 entries" in verify.stdout
    assert run_cli(["ledger", "checkpoint"], env=env).exit_code == 0
    shown = run_cli(["ledger", "show", "2", "--json"], env=env)
    assert '"procedure": "PV 2026/004217"' in shown.stdout


def test_demo_ignores_the_operators_site(tmp_path: Path) -> None:
    """SCELLE_HOME and SCELLE_DATABASE_URL set: the demo must not write there."""
    prod = tmp_path / "production"
    env = {"SCELLE_HOME": str(prod), "SCELLE_DATABASE_URL": f"sqlite:///{prod}/x.db"}
    result = run_cli(["demo", "--site", str(tmp_path / "demo")], env=env)
    assert result.exit_code == 0, result.stderr
    assert not prod.exists()


def test_demo_refuses_a_directory_in_use(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = run_cli(["demo", "--site", str(tmp_path)])
    assert result.exit_code == 5
    assert "exists and is not an empty directory" in result.stderr
    assert os.listdir(tmp_path) == ["precious.txt"]


def test_demo_without_site_uses_a_new_temporary_directory() -> None:
    result = run_cli(["demo"])
    assert result.exit_code == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("the demo site is in "))
    home = Path(line.removeprefix("the demo site is in ").split(";")[0])
    assert (home / "scelle.db").is_file()
