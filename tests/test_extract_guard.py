"""Extraction as the workflow and the ledger allow it: one per requisition on every
workstation, only on an approval the ledger holds, a second one refused naming the
export that exists, and "video unavailable" when no window holds any footage; and what
denying or cancelling a requisition does to its holds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import AUDITOR, SUPERVISOR, SiteEnv, run_cli
from tests.test_cli_errors import one_line_error, snapshot
from tests.test_requisitions import DAY, REGISTER, filmed, register

__all__ = ["filmed"]


def approved(env: SiteEnv, *extra: str) -> str:
    rid = register(env.env, *extra)
    assert run_cli(["requisition", "approve", rid], env=env.env_as(SUPERVISOR)).exit_code == 0
    return rid


def test_a_second_extraction_is_refused_naming_the_export(filmed: SiteEnv, tmp_path: Path) -> None:
    rid = approved(filmed)
    first = run_cli(["requisition", "extract", rid, "--out", str(tmp_path / "a")], env=filmed.env)
    assert first.exit_code == 0, first.stderr
    manifest = json.loads(run_cli(["requisition", "show", rid, "--json"], env=filmed.env).stdout)[
        "manifest_sha256"
    ]
    second = run_cli(["requisition", "extract", rid, "--out", str(tmp_path / "b")], env=filmed.env)
    assert second.exit_code == 5
    assert one_line_error(second.stderr) == (
        f"scelle: error: requisition {rid} was already extracted (completed): its export is "
        f"{(tmp_path / 'a' / rid).absolute()} (manifest SHA-256 {manifest})"
    )
    assert not (tmp_path / "b").exists()


def test_another_workstation_extracting_the_same_requisition_is_refused(
    filmed: SiteEnv, tmp_path: Path
) -> None:
    """Workstation B has its own copy of the site directory (its own checkpoint file) on
    the same database: while A extracts, B is refused; after, B is told where A's is."""
    rid = approved(filmed)
    other = tmp_path / "workstation-b"
    shutil.copytree(filmed.settings.home, other, ignore=shutil.ignore_patterns("scelle.db*"))
    env_b = {**filmed.env, "SCELLE_HOME": str(other)}
    if filmed.settings.database_url.startswith("sqlite"):
        env_b["SCELLE_DATABASE_URL"] = filmed.settings.database_url
    with filmed.site.db.exclusive(f"extract-{rid}", "held by workstation A"):
        before = (snapshot(filmed.settings.home), filmed.site.ledger.size())
        busy = run_cli(["requisition", "extract", rid, "--out", str(tmp_path / "b")], env=env_b)
    assert busy.exit_code == 5
    assert "is being extracted (here or on another workstation)" in busy.stderr
    assert (snapshot(filmed.settings.home), filmed.site.ledger.size()) == before
    assert not (tmp_path / "b").exists()
    done = run_cli(["requisition", "extract", rid, "--out", str(tmp_path / "a")], env=filmed.env)
    assert done.exit_code == 0, done.stderr
    late = run_cli(["requisition", "extract", rid, "--out", str(tmp_path / "b")], env=env_b)
    assert late.exit_code == 5 and "was already extracted (completed)" in late.stderr


def test_a_state_edited_to_approved_is_not_an_approval(filmed: SiteEnv, tmp_path: Path) -> None:
    """The operator who registered it sets the state by SQL: the ledger holds no approval,
    so nothing is extracted."""
    rid = register(filmed.env)
    with filmed.site.db.write() as cur:
        cur.execute("UPDATE requisition SET state = 'approved' WHERE id = ?", [rid])
    refused = run_cli(["requisition", "extract", rid, "--out", str(tmp_path)], env=filmed.env)
    assert refused.exit_code == 5
    assert one_line_error(refused.stderr) == (
        f"scelle: error: requisition {rid} has no approval in the ledger by a supervisor other "
        "than who registered it"
    )
    assert not (tmp_path / rid).exists()


def test_a_requisition_with_no_footage_at_all_is_video_unavailable(
    filmed: SiteEnv, tmp_path: Path
) -> None:
    rid = approved(filmed, "--window", f"C-012={DAY}T14:00/{DAY}T14:05")
    # (two windows: REGISTER's 10:00-10:02, which is filmed, and this one, which is not)
    lone_window = ["--window", f"C-012={DAY}T15:00/{DAY}T15:05"]
    empty = run_cli(
        [*REGISTER[:4], "--pv", "PV 2026/000999", *REGISTER[6:-2], *lone_window], env=filmed.env
    )
    assert empty.exit_code == 0, empty.stderr
    lone = empty.stdout.split()[1]
    assert run_cli(["requisition", "approve", lone], env=filmed.env_as(SUPERVISOR)).exit_code == 0
    result = run_cli(["requisition", "extract", lone, "--out", str(tmp_path)], env=filmed.env)
    assert result.exit_code == 6
    assert one_line_error(result.stderr) == (
        f"scelle: error: requisition {lone}: video unavailable: no footage recorded for any "
        "requested window (recorded; no export built)"
    )
    assert not (tmp_path / lone).exists() and not list(tmp_path.glob(".*"))
    shown = json.loads(run_cli(["requisition", "show", lone, "--json"], env=filmed.env).stdout)
    assert shown["state"] == "video unavailable"
    last = json.loads(
        run_cli(["ledger", "show", "--json", "--limit", "1"], env=filmed.env_as(AUDITOR)).stdout
    )[0]
    assert last["action"] == "requisition.unavailable" and last["subject"] == {"requisition": lone}
    # A requisition with footage in one window of two is extracted, partial.
    partial = run_cli(["requisition", "extract", rid, "--out", str(tmp_path)], env=filmed.env)
    assert partial.exit_code == 0, partial.stderr


def _holds(env: SiteEnv) -> list[dict[str, object]]:
    shown = run_cli(["hold", "list", "--all", "--json"], env=env.env)
    return list(json.loads(shown.stdout))


def test_a_denied_requisition_releases_its_holds_recorded(filmed: SiteEnv) -> None:
    rid = register(filmed.env)
    denied = run_cli(
        ["requisition", "deny", rid, "--reason", "hors délai légal"], env=filmed.env_as(SUPERVISOR)
    )
    assert denied.exit_code == 0, denied.stderr
    assert "hold 1 on camera C-012 released" in denied.stdout
    (hold,) = _holds(filmed)
    assert hold["released_at"] is not None
    last = json.loads(
        run_cli(["ledger", "show", "--json", "--limit", "2"], env=filmed.env_as(AUDITOR)).stdout
    )
    assert [e["action"] for e in last] == ["requisition.deny", "hold.release"]
    assert last[1]["actor"] == SUPERVISOR and last[1]["subject"] == {"camera": "C-012", "hold": 1}
    assert f"requisition {rid} denied: hors délai légal" in last[1]["reason"]


def test_a_cancellation_keeps_the_holds_of_who_placed_them_and_says_why(filmed: SiteEnv) -> None:
    """The operator who registered it cancels: releasing footage needs a second person,
    so the holds stay, and the cancellation says so (printed and recorded)."""
    rid = register(filmed.env)
    cancelled = run_cli(
        ["requisition", "cancel", rid, "--reason", "doublon de la réquisition papier"],
        env=filmed.env,
    )
    assert cancelled.exit_code == 0, cancelled.stderr
    assert (
        "holds 1 kept: test-operator may not release holds: a supervisor releases them "
        "(scelle hold release)" in cancelled.stdout
    )
    (hold,) = _holds(filmed)
    assert hold["released_at"] is None
    last = json.loads(
        run_cli(["ledger", "show", "--json", "--limit", "1"], env=filmed.env_as(AUDITOR)).stdout
    )[0]
    assert last["action"] == "requisition.cancel" and last["data"]["holds_kept"] == [1]


def test_a_cancellation_by_a_supervisor_releases_the_holds(filmed: SiteEnv) -> None:
    rid = register(filmed.env)
    cancelled = run_cli(
        ["requisition", "cancel", rid, "--reason", "retirée par l'officier"],
        env=filmed.env_as(SUPERVISOR),
    )
    assert cancelled.exit_code == 0, cancelled.stderr
    assert "hold 1 on camera C-012 released" in cancelled.stdout
    assert _holds(filmed)[0]["released_at"] is not None
