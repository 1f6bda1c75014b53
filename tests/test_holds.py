"""Holds by hand: placed with a reason, released by someone else, every change recorded."""

from __future__ import annotations

import json

from tests.conftest import ADMIN, AUDITOR, SUPERVISOR, SiteEnv, run_cli
from tests.test_cameras import ADD
from tests.test_cli_errors import one_line_error


def test_place_list_release(site_env: SiteEnv) -> None:
    env = site_env.env
    assert run_cli(ADD, env=site_env.env_as(ADMIN)).exit_code == 0
    place = [
        "hold",
        "place",
        "--camera",
        "C-012",
        "--from",
        "2026-11-21T10:00",
        "--to",
        "2026-11-21T11:00",
        "--reason",
        "préservation",
    ]
    placed = run_cli(
        [
            "hold",
            "place",
            "--camera",
            "C-012",
            "--from",
            "2026-11-20T10:00",
            "--to",
            "2026-11-20T12:00",
            "--reason",
            "appel du parquet avant réquisition écrite",
            "--procedure",
            "PV 2026/9",
        ],
        env=env,
    )
    assert placed.exit_code == 0, placed.stderr
    listed = json.loads(run_cli(["hold", "list", "--json"], env=env).stdout)
    assert [(h["camera"], h["from_utc"], h["procedure"]) for h in listed] == [
        ("C-012", "2026-11-20T09:00:00Z", "PV 2026/9")
    ]
    hold_id = str(listed[0]["id"])
    by_operator = run_cli(["hold", "release", hold_id, "--reason", "done"], env=env)
    assert by_operator.exit_code == 5
    assert one_line_error(by_operator.stderr) == (
        "scelle: error: refused: test-operator (operator) may not release holds"
    )
    supervisor = site_env.env_as(SUPERVISOR)
    assert run_cli(place, env=supervisor).exit_code == 0
    own = json.loads(run_cli(["hold", "list", "--json"], env=env).stdout)[-1]["id"]
    same = run_cli(["hold", "release", str(own), "--reason", "done"], env=supervisor)
    assert same.exit_code == 5
    assert "cannot also release it: another supervisor must" in one_line_error(same.stderr)
    released = run_cli(
        ["hold", "release", hold_id, "--reason", "procédure classée"], env=supervisor
    )
    assert released.exit_code == 0, released.stderr
    assert [h["id"] for h in json.loads(run_cli(["hold", "list", "--json"], env=env).stdout)] == [
        own
    ]
    assert len(json.loads(run_cli(["hold", "list", "--all", "--json"], env=env).stdout)) == 2
    again = run_cli(["hold", "release", hold_id, "--reason", "x"], env=supervisor)
    assert again.exit_code == 5 and "already released" in again.stderr
    actions = [
        e["action"]
        for e in json.loads(
            run_cli(["ledger", "show", "--json"], env=site_env.env_as(AUDITOR)).stdout
        )
    ]
    assert actions[-5:] == [
        "hold.place",
        "access.refused",  # an operator may not release
        "hold.place",
        "access.refused",  # nor may the supervisor who placed it
        "hold.release",
    ]
    unknown = run_cli(["hold", "release", "999", "--reason", "x"], env=supervisor)
    assert unknown.exit_code == 3 and "unknown hold 999" in unknown.stderr
