"""Several workstations on one database, each with its own checkpoint file (as the README
says to set them up): each verifies cleanly, and each still catches its own file
truncated or replaced."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from custody.note import split_notes
from tests.conftest import OPERATOR, SiteEnv, run_cli


@pytest.fixture
def two_stations(site_env: SiteEnv, tmp_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    other = tmp_path / "workstation-b"
    shutil.copytree(site_env.settings.home, other, ignore=shutil.ignore_patterns("scelle.db*"))
    env_a = site_env.env_as(OPERATOR)
    env_b = {**env_a, "SCELLE_HOME": str(other)}
    if site_env.settings.database_url.startswith("sqlite"):
        env_b["SCELLE_DATABASE_URL"] = site_env.settings.database_url
    for env in (env_a, env_b, env_a, env_b):
        note = run_cli(["ledger", "note", "seal opened", "--reason", "inventaire"], env=env)
        assert note.exit_code == 0, note.stderr
        signed = run_cli(["ledger", "checkpoint"], env=env)
        assert signed.exit_code == 0, signed.stderr
    return env_a, env_b


def test_each_station_verifies_with_its_own_file(
    two_stations: tuple[dict[str, str], dict[str, str]],
) -> None:
    for env in two_stations:
        result = run_cli(["ledger", "verify"], env=env)
        assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("damage", ["truncated", "replaced by the other's"])
def test_a_station_still_catches_its_own_file_damaged(
    two_stations: tuple[dict[str, str], dict[str, str]], damage: str
) -> None:
    env_a, env_b = two_stations
    file_a = Path(env_a["SCELLE_HOME"]) / "checkpoints.txt"
    file_b = Path(env_b["SCELLE_HOME"]) / "checkpoints.txt"
    if damage == "truncated":
        notes = split_notes(file_b.read_text())
        file_b.write_text("".join(note + "\n" for _line, note in notes[:-2]))  # last two gone
    else:
        shutil.copy(file_a, file_b)
    result = run_cli(["ledger", "verify"], env=env_b)
    assert result.exit_code == 4, result.stdout
    assert "checkpoint file truncated or replaced" in result.stderr
    assert run_cli(["ledger", "verify"], env=env_a).exit_code == 0
