"""Holds by hand: placed with a reason, released by someone else, every change recorded."""

from __future__ import annotations

import json

from tests.conftest import SiteEnv, run_cli
from tests.test_cameras import ADD
from tests.test_cli_errors import one_line_error


def test_place_list_release(site_env: SiteEnv) -> None:
    env = site_env.env
    assert run_cli(ADD, env=env).exit_code == 0
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
    same = run_cli(["hold", "release", hold_id, "--reason", "done"], env=env)
    assert same.exit_code == 5
    assert "cannot also release it: a supervisor must" in one_line_error(same.stderr)
    supervisor = {**env, "SCELLE_AGENT": "supervisor"}
    released = run_cli(
        ["hold", "release", hold_id, "--reason", "procédure classée"], env=supervisor
    )
    assert released.exit_code == 0, released.stderr
    assert json.loads(run_cli(["hold", "list", "--json"], env=env).stdout) == []
    assert len(json.loads(run_cli(["hold", "list", "--all", "--json"], env=env).stdout)) == 1
    again = run_cli(["hold", "release", hold_id, "--reason", "x"], env=supervisor)
    assert again.exit_code == 5 and "already released" in again.stderr
    actions = [
        e["action"] for e in json.loads(run_cli(["ledger", "show", "--json"], env=env).stdout)
    ]
    assert actions[-2:] == ["hold.place", "hold.release"]
    unknown = run_cli(["hold", "release", "999", "--reason", "x"], env=supervisor)
    assert unknown.exit_code == 3 and "unknown hold 999" in unknown.stderr
