"""The retention purge on real files: expired and unheld gone, held intact, the boundary
to the second, a purge killed between intent and outcome, two at once, a clock gone back."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from pypdf import PdfReader

from custody.retention import purge_lock
from exporters.generate import generate_footage
from exporters.index import scan
from requisition.cameras import get_camera
from requisition.timewindow import parse_window
from tests.conftest import ADMIN, AUDITOR, SUPERVISOR, SiteEnv, require_tool, run_cli
from tests.test_cameras import ADD

ZONE = "Europe/Paris"
# The camera keeps 2 days. Footage: 2026-11-10 10:00-10:05 and 2026-11-13 10:00-10:02.
OLD = ("2026-11-10T10:00", "2026-11-10T10:05")
RECENT = ("2026-11-13T10:00", "2026-11-13T10:02")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def store(site_env: SiteEnv) -> Iterator[SiteEnv]:
    assert run_cli([*ADD, "--retention-days", "2"], env=site_env.env_as(ADMIN)).exit_code == 0
    site = site_env.site
    camera = get_camera(site, "C-012")
    for start, end in (OLD, RECENT):
        generate_footage(site, camera, parse_window(start, end, ZONE, 24))
    scan(site, [camera], "op")
    yield site_env


def segments(env: SiteEnv) -> dict[str, str]:
    root = env.settings.home / "footage"
    return {str(p.relative_to(root)): digest(p) for p in sorted(root.rglob("*.mp4"))}


def purge(env: SiteEnv, now: str, *extra: str) -> tuple[int, dict[str, object], str]:
    result = run_cli(["purge", "--now", now, "--json", *extra], env=env.env_as(ADMIN))
    return result.exit_code, json.loads(result.stdout or "{}"), result.stderr


def test_expired_unheld_segments_go_held_ones_stay_intact(store: SiteEnv) -> None:
    env = store.env
    hold = run_cli(
        [
            "hold",
            "place",
            "--camera",
            "C-012",
            "--from",
            "2026-11-10T10:03:30",
            "--to",
            "2026-11-10T10:04:10",
            "--reason",
            "procédure en cours",
        ],
        env=env,
    )
    assert hold.exit_code == 0
    before = segments(store)
    assert len(before) == 7
    code, report, _ = purge(store, "2026-11-13T12:00")
    assert code == 0, report
    after = segments(store)
    kept_old = {k: v for k, v in after.items() if "/2026-11-10/" in k}
    assert sorted(kept_old) == [
        "C-012/2026-11-10/09/20261110T090300.000Z_60000.mp4",  # 10:03-10:04, held
        "C-012/2026-11-10/09/20261110T090400.000Z_60000.mp4",  # 10:04-10:05, held
    ]
    for name, value in after.items():
        assert before[name] == value  # what is kept is bit for bit what was there
    assert sum("/2026-11-13/" in k for k in after) == 2  # recent footage untouched
    assert report["destroyed"] == 3
    entries = json.loads(
        run_cli(["ledger", "show", "--json", "--limit", "3"], env=store.env_as(AUDITOR)).stdout
    )
    assert [e["action"] for e in entries][-2:] == ["footage.destroy.intent", "footage.destroy"]
    assert entries[-2]["data"]["segments"] == 3 and entries[-2]["data"]["held"] == 2
    assert run_cli(["ledger", "verify"], env=env).exit_code == 0
    found = run_cli(
        ["footage", "find", "C-012", "--from", OLD[0], "--to", OLD[1], "--json"], env=env
    )
    gaps = json.loads(found.stdout)["gaps"]
    assert [(g["from"], g["to"]) for g in gaps] == [
        ("2026-11-10T10:00:00+01:00", "2026-11-10T10:03:00+01:00")
    ]
    code, _, _ = purge(store, "2026-11-13T12:01")
    assert code == 8  # nothing more has expired


def test_the_boundary_is_handled_to_the_second(store: SiteEnv) -> None:
    """The 10:04-10:05 segment goes when all of it is two days old: at 10:05:00, not 10:04:59."""
    code, report, _ = purge(store, "2026-11-12T10:04:59")
    assert code == 0 and report["destroyed"] == 4
    assert "C-012/2026-11-10/09/20261110T090400.000Z_60000.mp4" in segments(store)
    code, report, _ = purge(store, "2026-11-12T10:05:00")
    assert code == 0 and report["destroyed"] == 1
    assert not any("/2026-11-10/" in k for k in segments(store))


def test_a_clock_gone_backwards_is_refused(store: SiteEnv) -> None:
    assert purge(store, "2026-11-13T12:00")[0] == 0
    before = segments(store)
    code, _, stderr = purge(store, "2026-11-13T11:00")
    assert code == 5
    assert "before the last purge" in stderr and "refusing to purge" in stderr
    assert segments(store) == before


def test_two_purges_at_once(store: SiteEnv) -> None:
    before = segments(store)
    with purge_lock(store.settings.home):
        code, _, stderr = purge(store, "2026-11-13T12:00")
    assert code == 5 and "another purge is running" in stderr
    assert segments(store) == before
    assert purge(store, "2026-11-13T12:00")[0] == 0  # the lock died with its holder


def test_dry_run_changes_nothing(store: SiteEnv) -> None:
    before, size = segments(store), store.site.ledger.size()
    code, report, _ = purge(store, "2026-11-13T12:00", "--dry-run")
    assert code == 0 and report["cameras"] == [{"camera": "C-012", "to_destroy": 5, "held": 0}]
    assert segments(store) == before and store.site.ledger.size() == size


KILLED = textwrap.dedent(
    """
    import os, signal, sys
    from custody.config import load_settings
    from custody.retention import _intent, plan
    from custody.site import open_site
    from requisition.timewindow import parse_time, to_us

    site = open_site(load_settings({"home": sys.argv[1]}))
    now = to_us(parse_time(sys.argv[2], "Europe/Paris"))
    _intent(site, site.login, now, plan(site, now))
    os.kill(os.getpid(), signal.SIGKILL)  # between intent and outcome
    """
)


def test_a_purge_killed_between_intent_and_outcome_is_completed(store: SiteEnv) -> None:
    root = Path(__file__).parent.parent
    proc = subprocess.run(
        [sys.executable, "-c", KILLED, str(store.settings.home), "2026-11-13T12:00"],
        cwd=root,
        env={**os.environ, **store.env_as(ADMIN)},  # cron's account
    )
    assert proc.returncode == -9
    assert len(segments(store)) == 7  # intent recorded, nothing deleted yet
    last = json.loads(
        run_cli(["ledger", "show", "--json", "--limit", "1"], env=store.env_as(AUDITOR)).stdout
    )
    assert last[0]["action"] == "footage.destroy.intent"
    result = run_cli(["purge", "--now", "2026-11-13T12:00"], env=store.env_as(ADMIN))
    assert result.exit_code == 0, result.stderr
    assert "completed interrupted purge(s) [1]" in result.stdout
    assert not any("/2026-11-10/" in k for k in segments(store))
    assert run_cli(["ledger", "verify"], env=store.env).exit_code == 0


def test_the_destruction_certificate_verifies_with_openssl_and_scelle(
    store: SiteEnv, tmp_path: Path
) -> None:
    code, report, _ = purge(store, "2026-11-13T12:00")
    assert code == 0
    (cert,) = [Path(p) for p in report["certificates"]]  # type: ignore[union-attr]
    body = json.loads((cert / "certificate.json").read_text())
    assert body["cameras"][0]["segments"] == 5 and body["cameras"][0]["camera"] == "C-012"
    assert len(body["cameras"][0]["merkle_root"]) == 64
    opened = subprocess.run(
        [
            require_tool("openssl"),
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            str(cert / "keys" / "signer.pub.pem"),
            "-rawin",
            "-in",
            str(cert / "certificate.json"),
            "-sigfile",
            str(cert / "certificate.json.sig"),
        ],
        capture_output=True,
    )
    assert opened.returncode == 0
    fingerprint = run_cli(["keys", "show", "--fingerprint"], env=store.env).stdout.split()[1]
    checked = run_cli(["verify", str(cert), "--key", fingerprint])
    assert checked.exit_code == 0, checked.stdout
    forged = tmp_path / "forged"
    shutil.copytree(cert, forged)
    (forged / "certificate.json").write_text(
        (cert / "certificate.json").read_text().replace('"segments":5', '"segments":4')
    )
    assert run_cli(["verify", str(forged)]).exit_code == 4
    text = "".join(
        p.extract_text() for p in PdfReader(cert / "documents" / "destruction.pdf").pages
    )
    assert "Certificat de destruction" in text and "C-012" in text


def test_the_register_shows_destruction_dates(store: SiteEnv, tmp_path: Path) -> None:
    assert purge(store, "2026-11-13T12:00")[0] == 0
    made = run_cli(
        ["doc", "register", "--from", "2026-11-10", "--to", "2026-11-13", "--out", str(tmp_path)],
        env=store.env,
    )
    assert made.exit_code == 0, made.stderr
    text = "".join(
        p.extract_text() for p in PdfReader(tmp_path / "register-2026-11-10-2026-11-13.pdf").pages
    )
    flat = "".join(text.split())
    assert (
        "5segmentsdu10/11/2026à10:00:00(UTC+01:00)au10/11/2026à10:05:00(UTC+01:00)(purgen°1)"
        in flat
    )
    assert "7segments" in flat  # recordings made in the period, destroyed ones included


def test_status_shows_holds_expiring_footage_and_the_last_purge(store: SiteEnv) -> None:
    from datetime import date, timedelta

    day = (date.today() - timedelta(days=1)).isoformat()
    registered = run_cli(
        [
            "requisition",
            "register",
            "--legal-basis",
            "60-1",
            "--pv",
            "PV 1",
            "--officer",
            "O",
            "--unit",
            "U",
            "--reason",
            "r",
            "--window",
            f"C-012={day}T10:00/{day}T10:05",
        ],
        env=store.env,
    )
    assert registered.exit_code == 0, registered.stderr
    assert purge(store, "2026-11-13T12:00")[0] == 0
    shown = json.loads(run_cli(["status", "--json"], env=store.env).stdout)
    assert shown["active_holds"] == 1
    assert [e["camera"] for e in shown["expiring_within_72h"]] == ["C-012"]  # 2-day retention
    assert shown["last_purge"]["state"] == "done" and shown["last_purge"]["segments"] == 5


def test_a_requisition_for_destroyed_footage_gets_the_certificate(store: SiteEnv) -> None:
    code, report, _ = purge(store, "2026-11-13T12:00")
    assert code == 0
    (cert,) = report["certificates"]  # type: ignore[misc]
    result = run_cli(
        [
            "requisition",
            "register",
            "--legal-basis",
            "60-1",
            "--pv",
            "PV 2",
            "--officer",
            "O",
            "--unit",
            "U",
            "--reason",
            "r",
            "--window",
            f"C-012={OLD[0]}/{OLD[1]}",
        ],
        env=store.env,
    )
    assert result.exit_code == 0, result.stderr
    assert "(video unavailable)" in result.stdout
    assert "destroyed on schedule at 2026-11-" in result.stdout
    assert f"certificate {cert}" in result.stdout


def test_exports_go_a_month_after_handover_unless_held(store: SiteEnv, tmp_path: Path) -> None:
    from datetime import date, timedelta

    env = store.env
    day = (date.today() - timedelta(days=1)).isoformat()
    camera = get_camera(store.site, "C-012")
    generate_footage(store.site, camera, parse_window(f"{day}T10:00", f"{day}T10:01", ZONE, 24))
    rid = run_cli(
        [
            "requisition",
            "register",
            "--legal-basis",
            "60-1",
            "--pv",
            "PV 3",
            "--officer",
            "O",
            "--unit",
            "U",
            "--reason",
            "r",
            "--window",
            f"C-012={day}T10:00/{day}T10:01",
        ],
        env=env,
    ).stdout.split()[1]
    run_cli(["requisition", "approve", rid], env=store.env_as(SUPERVISOR))
    assert run_cli(["requisition", "extract", rid, "--out", str(tmp_path)], env=env).exit_code == 0
    old = (date.today() - timedelta(days=40)).isoformat()
    run_cli(
        [
            "requisition",
            "handover",
            rid,
            "--officer",
            "O",
            "--unit",
            "U",
            "--medium",
            "usb",
            "--seal",
            "S",
            "--at",
            f"{old}T10:00",
        ],
        env=env,
    )
    code, report, _ = purge(store, f"{date.today().isoformat()}T03:00")
    assert report["exports_destroyed"] == [] and (tmp_path / rid).is_dir()  # its hold stands
    (hold,) = json.loads(run_cli(["hold", "list", "--json"], env=env).stdout)
    run_cli(
        ["hold", "release", str(hold["id"]), "--reason", "jugement rendu"],
        env=store.env_as(SUPERVISOR),
    )
    code, report, _ = purge(store, f"{date.today().isoformat()}T03:01")
    assert code == 0 and report["exports_destroyed"] == [rid]
    assert not (tmp_path / rid).exists()
    last = json.loads(
        run_cli(["ledger", "show", "--json", "--limit", "3"], env=store.env_as(AUDITOR)).stdout
    )
    assert "export.destroy" in [e["action"] for e in last]
