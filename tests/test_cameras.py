"""The camera register through the CLI: validation, CSV import all-or-nothing, the ledger."""

from __future__ import annotations

from pathlib import Path

import pytest

from custody.entry import decode_entry
from tests.conftest import ADMIN, SiteEnv, run_cli
from tests.test_cli_errors import one_line_error, snapshot

ADD = [
    "camera",
    "add",
    "C-012",
    "--name",
    "Place de la Mairie",
    "--location",
    "Place de la Mairie",
    "--commune",
    "Villeurbanne",
    "--authorisation-ref",
    "AP-2024-117",
    "--authorisation-expires",
    "2029-05-01",
]
HEADER = (
    "id,name,location,commune,authorisation_ref,authorisation_expires,"
    "retention_days,clock_offset_ms\n"
)


def test_add_show_list_and_the_ledger(site_env: SiteEnv) -> None:
    result = run_cli(
        [*ADD, "--retention-days", "15", "--clock-offset-ms", "-1200"], env=site_env.env_as(ADMIN)
    )
    assert result.exit_code == 0, result.stderr
    shown = run_cli(["camera", "show", "C-012", "--json"], env=site_env.env_as(ADMIN))
    assert '"retention_days": 15' in shown.stdout
    assert '"clock_offset_ms": -1200' in shown.stdout
    assert "C-012" in run_cli(["camera", "list"], env=site_env.env_as(ADMIN)).stdout
    entry = decode_entry(site_env.site.ledger.entry(site_env.site.ledger.size() - 1))
    assert entry["action"] == "camera.add"
    assert entry["subject"] == {"camera": "C-012"}
    assert entry["data"]["authorisation_ref"] == "AP-2024-117"
    assert entry["actor"] == ADMIN


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--retention-days", "31"], "retention of 31 days is not allowed"),
        (["--retention-days", "0"], "retention of 0 days is not allowed"),
        (["--timezone", "Europe/Lutece"], "unknown time zone"),
        (["--store-path", "../../etc"], "'..' is not allowed"),
        (["--store-path", "footage/../../etc"], "'..' is not allowed"),
        (["--store-kind", "milestone"], "store_kind must be one of scelle, frigate"),
        (["--store-camera", "../other"], "invalid store camera name"),
        (["--authorisation-expires", "next year"], "must be a date"),
    ],
)
def test_bad_camera_fields(site_env: SiteEnv, extra: list[str], message: str) -> None:
    site_env.site.close()
    before = snapshot(site_env.settings.home)
    result = run_cli([*ADD, *extra], env=site_env.env_as(ADMIN))  # a repeated option: the last wins
    assert result.exit_code == 3, result.stderr
    assert message in one_line_error(result.stderr)
    assert snapshot(site_env.settings.home) == before


@pytest.mark.parametrize("camera_id", ["../etc", "/etc/passwd", "a/b", ".hidden", "x..y", ""])
def test_path_tricks_in_a_camera_id(site_env: SiteEnv, camera_id: str) -> None:
    site_env.site.close()
    before = snapshot(site_env.settings.home)
    args = [*ADD]
    args[2] = camera_id
    result = run_cli(args, env=site_env.env_as(ADMIN))
    assert result.exit_code == 3
    assert "invalid camera id" in one_line_error(result.stderr)
    assert snapshot(site_env.settings.home) == before
    shown = run_cli(["camera", "show", camera_id], env=site_env.env_as(ADMIN))
    assert shown.exit_code == 3


def test_duplicate_camera_is_refused(site_env: SiteEnv) -> None:
    assert run_cli(ADD, env=site_env.env_as(ADMIN)).exit_code == 0
    result = run_cli(ADD, env=site_env.env_as(ADMIN))
    assert result.exit_code == 5
    assert "already registered" in one_line_error(result.stderr)


def test_csv_import_is_all_or_nothing(site_env: SiteEnv, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(
        HEADER
        + "C-001,Gare,Parvis de la gare,Lyon,AP-1,2028-01-01,30,0\n"
        + "C-002,Marché,Place du marché,Bron,AP-2,2028-01-01,10,350\n"
    )
    bad = tmp_path / "bad.csv"
    bad.write_text(
        HEADER
        + "C-003,Pont,Pont Wilson,Lyon,AP-3,2028-01-01,30,0\n"
        + "C-004,Parc,Parc de la Tête d'Or,Lyon,AP-4,2028-01-01,45,0\n"
    )
    size = site_env.site.ledger.size()
    result = run_cli(["camera", "import", str(bad)], env=site_env.env_as(ADMIN))
    assert result.exit_code == 3
    assert f"{bad} line 3: camera C-004: retention of 45 days" in one_line_error(result.stderr)
    assert run_cli(["camera", "list"], env=site_env.env_as(ADMIN)).stdout == ""
    assert site_env.site.ledger.size() == size
    result = run_cli(["camera", "import", str(good)], env=site_env.env_as(ADMIN))
    assert result.exit_code == 0, result.stderr
    assert "2 cameras imported" in result.stdout
    assert site_env.site.ledger.size() == size + 2
    again = run_cli(["camera", "import", str(good)], env=site_env.env_as(ADMIN))
    assert again.exit_code == 5
    assert "camera C-001 is already registered; nothing imported" in again.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("id,name\nC-1,x\n", "line 1: missing column 'location'"),
        (
            HEADER.replace("clock_offset_ms", "colour") + "C-1,a,b,c,d,2028-01-01,3,red\n",
            "line 1: unknown column 'colour'",
        ),
        (HEADER + "C-1,a,b,c,d,2028-01-01,3\n", "line 2: wrong number of fields"),
        (
            HEADER + "C-1,a,b,c,d,2028-01-01,3,0\nC-1,a,b,c,d,2028-01-01,3,0\n",
            "line 3: camera C-1 appears twice",
        ),
        (HEADER, "no camera in the file"),
    ],
)
def test_bad_csv_files(site_env: SiteEnv, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "inventory.csv"
    path.write_text(content)
    result = run_cli(["camera", "import", str(path)], env=site_env.env_as(ADMIN))
    assert result.exit_code == 3
    assert message in one_line_error(result.stderr)
