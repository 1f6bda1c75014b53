"""`scelle demo`: the README's main job, from nothing to a verified export."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tests.conftest import run_cli


def test_demo_produces_a_verified_export(tmp_path: Path) -> None:
    site = tmp_path / "demo"
    result = run_cli(["demo", "--site", str(site)])
    assert result.exit_code == 0, result.stderr
    (export,) = (site / "exports").iterdir()
    requisition = export.name
    assert re.fullmatch(r"\d{4}-00001", requisition)
    assert f"the export is in {export}" in result.stdout
    assert "export verified: 11 checks passed" in result.stdout
    assert "(1 gap(s) stated)" in result.stdout  # the gap generated in C-044's footage
    fingerprint = re.search(r"--key (SHA256:\S+)", result.stdout)
    assert fingerprint
    verified = run_cli(["verify", str(export), "--key", fingerprint[1]])
    assert verified.exit_code == 10  # verified, and partial as the demo's footage is
    assert "VERIFIED against the expected key" in verified.stdout
    env = {"SCELLE_HOME": str(site), "SCELLE_PASSPHRASE_FILE": str(site / "demo-passphrase")}
    assert run_cli(["ledger", "verify"], env=env).exit_code == 0
    shown = run_cli(["requisition", "show", requisition, "--json"], env=env)
    assert '"state": "partially completed"' in shown.stdout
    assert f'"export_path": "{export}"' in shown.stdout


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
