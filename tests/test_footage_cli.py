"""Footage through the CLI: generate, scan, find, and every bad window refused cleanly."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from tests.conftest import ADMIN, SiteEnv, run_cli
from tests.test_cameras import ADD
from tests.test_cli_errors import one_line_error, snapshot


def day(days: int) -> str:
    """A date relative to today: retention is judged against the real clock."""
    return (date.today() + timedelta(days=days)).isoformat()


@pytest.fixture
def with_camera(site_env: SiteEnv) -> SiteEnv:
    assert run_cli(ADD, env=site_env.env_as(ADMIN)).exit_code == 0
    return site_env


def test_generate_then_find(with_camera: SiteEnv) -> None:
    env = with_camera.env
    made = run_cli(
        [
            "footage",
            "generate",
            "--camera",
            "C-012",
            "--from",
            "2026-11-24T10:00",
            "--to",
            "2026-11-24T10:04",
            "--gap",
            "2026-11-24T10:01/2026-11-24T10:01:30",
            "--corrupt",
            "2026-11-24T10:03:10",
        ],
        env=with_camera.env_as(ADMIN),  # synthetic footage: an administrator's tool
    )
    assert made.exit_code == 0, made.stderr
    assert "4 segments" in made.stdout
    found = run_cli(
        [
            "footage",
            "find",
            "C-012",
            "--from",
            "2026-11-24T10:00:10",
            "--to",
            "2026-11-24T10:04",
            "--json",
        ],
        env=env,
    )
    assert found.exit_code == 0, found.stderr
    doc = json.loads(found.stdout)
    assert doc["window"]["from_utc"] == "2026-11-24T09:00:10Z"
    assert [(g["from"], g["to"]) for g in doc["gaps"]] == [
        ("2026-11-24T10:01:00+01:00", "2026-11-24T10:01:30+01:00"),
        ("2026-11-24T10:02:30+01:00", "2026-11-24T10:03:30+01:00"),
    ]
    assert doc["gaps"][1]["reason"].startswith("corrupt segment C-012/2026-11-24/09/")
    assert doc["complete"] is False
    assert len(doc["segments"]) == 4
    text = run_cli(
        ["footage", "find", "C-012", "--from", "2026-11-24T10:00:10", "--to", "2026-11-24T10:04"],
        env=env,
    )
    assert "incomplete: 2 gap(s)" in text.stdout
    scanned = run_cli(["footage", "scan"], env=env)
    assert "0 new segments" in scanned.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["NOPE", "--from", "2026-11-24T10:00", "--to", "2026-11-24T10:05"],
            3,
            "unknown camera 'NOPE'",
        ),
        (
            ["../C-012", "--from", "2026-11-24T10:00", "--to", "2026-11-24T10:05"],
            3,
            "invalid camera id",
        ),
        (
            ["C-012", "--from", "2026-11-24T10:00", "--to", "2026-11-24T09:00"],
            3,
            "before it starts",
        ),
        (
            ["C-012", "--from", "2026-11-20T10:00", "--to", "2026-11-22T10:00"],
            3,
            "more than the maximum of 24 h",
        ),
        (
            ["C-012", "--from", "2026-10-25T02:30", "--to", "2026-10-25T04:00"],
            3,
            "happens twice in Europe/Paris",
        ),
        (
            ["C-012", "--from", "2026-03-29T02:30", "--to", "2026-03-29T04:00"],
            3,
            "does not exist in Europe/Paris",
        ),
        (["C-012", "--from", "24.11.2026 10:00", "--to", "2026-11-24T10:05"], 3, "malformed time"),
        (
            ["C-012", "--from", f"{day(-60)}T10:00", "--to", f"{day(-60)}T11:00"],
            6,
            "past its 30-day retention",
        ),
        (
            ["C-012", "--from", f"{day(400)}T10:00", "--to", f"{day(400)}T11:00"],
            6,
            "is in the future",
        ),
        (
            ["C-012", "--from", f"{day(-2)}T10:00", "--to", f"{day(-2)}T11:00"],
            6,
            "no footage recorded",
        ),
    ],
)
def test_bad_windows(with_camera: SiteEnv, args: list[str], code: int, message: str) -> None:
    with_camera.site.close()
    size = with_camera.site.ledger.size()
    before = snapshot(with_camera.settings.home)
    result = run_cli(["footage", "find", *args], env=with_camera.env)
    assert result.exit_code == code, result.stderr
    assert message in one_line_error(result.stderr)
    assert snapshot(with_camera.settings.home) == before
    assert with_camera.site.ledger.size() == size


def test_generate_refuses_bad_requests_before_writing(with_camera: SiteEnv) -> None:
    env = with_camera.env_as(ADMIN)
    args = [
        "footage",
        "generate",
        "--camera",
        "C-012",
        "--from",
        "2026-11-24T10:00",
        "--to",
        "2026-11-24T10:02",
    ]
    bad = run_cli([*args, "--corrupt", "2026-11-24T11:00"], env=env)
    assert bad.exit_code == 3
    assert "--corrupt must fall inside" in one_line_error(bad.stderr)
    assert not (with_camera.settings.home / "footage").exists()
    assert run_cli(args, env=env).exit_code == 0
    before = snapshot(with_camera.settings.home)
    again = run_cli(args, env=env)
    assert again.exit_code == 3
    assert "already has footage at 2026-11-24T09:00:00Z" in one_line_error(again.stderr)
    assert snapshot(with_camera.settings.home) == before


def test_max_window_is_configurable(with_camera: SiteEnv) -> None:
    env = {**with_camera.env, "SCELLE_MAX_WINDOW_HOURS": "1"}
    result = run_cli(
        ["footage", "find", "C-012", "--from", "2026-11-24T10:00", "--to", "2026-11-24T11:30"],
        env=env,
    )
    assert result.exit_code == 3
    assert "more than the maximum of 1 h" in result.stderr
