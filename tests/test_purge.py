"""The retention purge on real files: expired and unheld gone, held intact, the boundary
to the second, two at once, a clock gone back, the certificate, the register, exports.

Footage is dated from the real clock (a real purge always runs as of it); the boundary is
tested through the library, whose `as_of` may lie in the past. Races with holds, and
purges killed and resumed, are in tests/test_purge_races.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from custody.entry import Record
from custody.errors import DiskFullError, IntegrityError
from custody.timewindow import Window, local_text, now_us, utc_text
from exporters.generate import generate_footage
from exporters.index import camera_store, scan
from requisition.cameras import get_camera
from requisition.purge import purge as run_purge
from tests.conftest import (
    ADMIN,
    AUDITOR,
    PASSPHRASE,
    SUPERVISOR,
    SiteEnv,
    raw_connection,
    require_tool,
    run_cli,
)
from tests.test_attach import attach_args
from tests.test_cameras import ADD

ZONE = "Europe/Paris"
MIN = 60_000_000
DAY = 86_400_000_000


@dataclass(frozen=True)
class Footage:
    env: SiteEnv
    old: Window  # 5 one-minute segments, three days ago: past the 2-day retention
    recent: Window  # 2 segments, a day ago: kept

    def segment(self, minute: int) -> str:
        """The store path of the old footage's segment starting `minute` minutes in."""
        camera = get_camera(self.env.site, "C-012")
        path = camera_store(camera).segment_path("C-012", self.old.start + minute * MIN, MIN)
        return str(path.relative_to(self.env.settings.home / "footage"))


@pytest.fixture
def store(site_env: SiteEnv) -> Iterator[Footage]:
    assert run_cli([*ADD, "--retention-days", "2"], env=site_env.env_as(ADMIN)).exit_code == 0
    site = site_env.site
    camera = get_camera(site, "C-012")
    base = now_us() // MIN * MIN
    if local_text(base - 3 * DAY + 5 * MIN, ZONE)[:10] != local_text(base - 3 * DAY, ZONE)[:10]:
        base -= 10 * MIN  # the old footage within one local day (run at 23:56 it was not)
    old = Window(base - 3 * DAY, base - 3 * DAY + 5 * MIN)
    recent = Window(base - DAY, base - DAY + 2 * MIN)
    for window in (old, recent):
        generate_footage(site, camera, window)
    scan(site, [camera], ADMIN)
    yield Footage(site_env, old, recent)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def segments(env: SiteEnv) -> dict[str, str]:
    root = env.settings.home / "footage"
    return {str(p.relative_to(root)): digest(p) for p in sorted(root.rglob("*.mp4"))}


def purge(env: SiteEnv, *extra: str) -> tuple[int, dict[str, object], str]:
    result = run_cli(["purge", "--json", *extra], env=env.env_as(ADMIN))
    return result.exit_code, json.loads(result.stdout or "{}"), result.stderr


def local(us: int) -> str:
    return local_text(us, ZONE)


def hold_minutes_3_and_4(store: Footage) -> Any:
    """A hold on the old footage's minutes 3 and 4 (from inside the 4th segment to
    inside the 5th), placed through the CLI."""
    return run_cli(
        [
            "hold",
            "place",
            "--camera",
            "C-012",
            "--from",
            local(store.old.start + 3 * MIN + 30_000_000),
            "--to",
            local(store.old.start + 4 * MIN + 10_000_000),
            "--reason",
            "procédure en cours",
        ],
        env=store.env.env,
    )


def test_expired_unheld_segments_go_held_ones_stay_intact(store: Footage) -> None:
    env = store.env
    hold = hold_minutes_3_and_4(store)
    assert hold.exit_code == 0, hold.stderr
    before = segments(env)
    assert len(before) == 7
    code, report, _ = purge(env)
    assert code == 0, report
    after = segments(env)
    assert sorted(k for k in after if k in {store.segment(m) for m in range(5)}) == [
        store.segment(3),  # 3:00-4:00, held
        store.segment(4),  # 4:00-5:00, held
    ]
    for name, value in after.items():
        assert before[name] == value  # what is kept is bit for bit what was there
    assert len(after) == 4  # the two held, and the recent footage untouched
    assert report["destroyed"] == 3
    entries = json.loads(
        run_cli(["ledger", "show", "--json", "--limit", "3"], env=env.env_as(AUDITOR)).stdout
    )
    assert [e["action"] for e in entries][-2:] == ["footage.destroy.intent", "footage.destroy"]
    assert entries[-2]["data"]["segments"] == 3 and entries[-2]["data"]["held"] == 2
    assert run_cli(["ledger", "verify"], env=env.env).exit_code == 0
    found = run_cli(
        [
            "footage",
            "find",
            "C-012",
            "--from",
            local(store.old.start),
            "--to",
            local(store.old.end),
            "--json",
        ],
        env=env.env,
    )
    gaps = json.loads(found.stdout)["gaps"]
    assert [(g["from_utc"], g["to_utc"]) for g in gaps] == [
        (utc_text(store.old.start), utc_text(store.old.start + 3 * MIN))
    ]
    code, _, _ = purge(env)
    assert code == 8  # nothing more has expired


def test_the_boundary_is_handled_to_the_second(store: Footage) -> None:
    """The 4:00-5:00 segment goes when all of it is two days old: not a second before."""
    site = store.env.site
    last_end = store.old.start + 5 * MIN
    report = run_purge(site, ADMIN, last_end + 2 * DAY - 1_000_000)
    assert report.destroyed == 4 and not report.failures
    assert store.segment(4) in segments(store.env)
    report = run_purge(site, ADMIN, last_end + 2 * DAY)
    assert report.destroyed == 1
    assert not any(store.segment(m) in segments(store.env) for m in range(5))


def test_a_purge_as_of_the_future_is_refused(store: Footage) -> None:
    """`--now` plans only: a purge dated ahead destroyed footage inside its retention."""
    before = segments(store.env)
    later = local(now_us() + 5 * DAY)
    code, _, stderr = purge(store.env, "--now", later)
    assert code == 2
    assert "--now only with --dry-run" in stderr
    from custody.errors import InputError

    with pytest.raises(InputError, match="after the system clock"):
        run_purge(store.env.site, ADMIN, now_us() + 5 * DAY)
    code, report, _ = purge(store.env, "--dry-run", "--now", later)
    assert code == 0 and report["cameras"] == [{"camera": "C-012", "to_destroy": 7, "held": 0}]
    assert segments(store.env) == before
    assert purge(store.env)[0] == 0  # and the clock guard still lets the real one run


def test_a_clock_gone_backwards_is_refused(store: Footage) -> None:
    assert purge(store.env)[0] == 0
    with store.env.site.db.write() as cur:  # the last purge started an hour ahead of now
        cur.execute("UPDATE purge_run SET started_at = ?", [utc_text(now_us() + 3_600_000_000)])
    camera = get_camera(store.env.site, "C-012")
    generate_footage(store.env.site, camera, Window(store.old.start - 2 * MIN, store.old.start))
    scan(store.env.site, [camera], ADMIN)
    before = segments(store.env)
    code, _, stderr = purge(store.env)
    assert code == 5
    assert "before the last purge started" in stderr and "check the system clock (NTP)" in stderr
    assert segments(store.env) == before


def test_two_purges_at_once(store: Footage) -> None:
    before = segments(store.env)
    with store.env.site.db.exclusive("purge", "held by the test"):
        code, _, stderr = purge(store.env)
    assert code == 5 and "another purge is running" in stderr
    assert segments(store.env) == before
    assert purge(store.env)[0] == 0  # the lock died with its holder


def test_dry_run_changes_nothing(store: Footage) -> None:
    before, size = segments(store.env), store.env.site.ledger.size()
    code, report, _ = purge(store.env, "--dry-run")
    assert code == 0 and report["cameras"] == [{"camera": "C-012", "to_destroy": 5, "held": 0}]
    assert segments(store.env) == before and store.env.site.ledger.size() == size


def test_the_destruction_certificate_verifies_with_openssl_and_scelle(
    store: Footage, tmp_path: Path
) -> None:
    code, report, _ = purge(store.env)
    assert code == 0
    (cert,) = [Path(p) for p in report["certificates"]]  # type: ignore[union-attr]
    body = json.loads((cert / "certificate.json").read_text())
    assert body["cameras"][0]["segments"] == 5 and body["cameras"][0]["camera"] == "C-012"
    assert body["cameras"][0]["held_segments"] == 0
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
    fingerprint = run_cli(["keys", "show", "--fingerprint"], env=store.env.env).stdout.split()[1]
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
    assert not list(cert.parent.glob(".*partial*"))  # built aside, renamed whole


def test_the_register_shows_destruction_dates(store: Footage, tmp_path: Path) -> None:
    assert purge(store.env)[0] == 0
    first = local(store.old.start)[:10]
    last = local(store.recent.start)[:10]
    made = run_cli(
        ["doc", "register", "--from", first, "--to", last, "--out", str(tmp_path)],
        env=store.env.env,
    )
    assert made.exit_code == 0, made.stderr
    (pdf,) = tmp_path.glob("register-*.pdf")
    flat = "".join("".join(p.extract_text() for p in PdfReader(pdf).pages).split())
    start = local(store.old.start)
    day = f"{start[8:10]}/{start[5:7]}/{start[:4]}"
    assert f"enregistrementsdu{day}à{start[11:19]}" in flat and "purgen°1" in flat
    assert "(5fichier(s)vidéo),purgen°1" in flat  # destroyed: the old footage
    assert "(7fichier(s)vidéo)" in flat  # recorded in the period, destroyed ones included


def test_status_shows_holds_expiring_footage_and_the_last_purge(store: Footage) -> None:
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
        env=store.env.env,
    )
    assert registered.exit_code == 0, registered.stderr
    assert purge(store.env)[0] == 0
    shown = json.loads(run_cli(["status", "--json"], env=store.env.env).stdout)
    assert shown["active_holds"] == 1
    assert [e["camera"] for e in shown["expiring_within_72h"]] == ["C-012"]  # 2-day retention
    assert shown["last_purge"]["state"] == "done" and shown["last_purge"]["segments"] == 5


def test_a_requisition_for_destroyed_footage_gets_the_certificate(store: Footage) -> None:
    code, report, _ = purge(store.env)
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
            f"C-012={local(store.old.start)}/{local(store.old.end)}",
        ],
        env=store.env.env,
    )
    assert result.exit_code == 0, result.stderr
    assert "(video unavailable)" in result.stdout
    assert "destroyed on schedule at " in result.stdout
    assert f"certificate {cert}" in result.stdout


def _register_and_extract(store: Footage, out: Path, pv: str, attach: Path | None = None) -> str:
    env = store.env.env
    window = f"C-012={local(store.recent.start)}/{local(store.recent.start + MIN)}"
    rid = run_cli(
        [
            "requisition",
            "register",
            "--legal-basis",
            "60-1",
            "--pv",
            pv,
            "--officer",
            "O",
            "--unit",
            "U",
            "--reason",
            "r",
            "--window",
            window,
        ],
        env=env,
    ).stdout.split()[1]
    assert run_cli(["requisition", "approve", rid], env=store.env.env_as(SUPERVISOR)).exit_code == 0
    if attach is not None:
        args = attach_args(rid, attach)
        args[args.index("--exported-at") + 1] = local(store.recent.start + 10 * MIN)
        args[args.index("--from") + 1] = local(store.recent.start)
        args[args.index("--to") + 1] = local(store.recent.start + MIN)
        assert run_cli(args, env=env).exit_code == 0
    extracted = run_cli(["requisition", "extract", rid, "--out", str(out)], env=env)
    assert extracted.exit_code == 0, extracted.stderr
    old = (date.today() - timedelta(days=40)).isoformat()
    # The requisition as if approved 41 days ago: a handover cannot precede its approval.
    with store.env.site.db.write() as cur:
        approved = (date.today() - timedelta(days=41)).isoformat() + "T10:00:00.000000Z"
        cur.execute("UPDATE requisition SET decided_at = ? WHERE id = ?", [approved, rid])
    handed = run_cli(
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
    assert handed.exit_code == 0, handed.stderr
    return rid


def test_exports_go_a_month_after_handover_unless_held(store: Footage, tmp_path: Path) -> None:
    env = store.env.env
    vendor = tmp_path / "usb" / "clip.bin"  # another system's export, attached: goes with it
    vendor.parent.mkdir()
    vendor.write_bytes(b"vendor clip")
    rid = _register_and_extract(store, tmp_path, "PV 3", attach=vendor)
    kept = store.env.settings.home / "attachments" / rid
    assert kept.is_dir()
    code, report, _ = purge(store.env)
    assert report["exports_destroyed"] == [] and (tmp_path / rid).is_dir()  # its hold stands
    assert kept.is_dir()
    (hold,) = json.loads(run_cli(["hold", "list", "--json"], env=env).stdout)
    released = run_cli(
        ["hold", "release", str(hold["id"]), "--reason", "jugement rendu"],
        env=store.env.env_as(SUPERVISOR),
    )
    assert released.exit_code == 0, released.stderr
    code, report, _ = purge(store.env)
    assert code == 0 and report["exports_destroyed"] == [rid]
    assert not (tmp_path / rid).exists()
    assert not kept.exists()
    last = json.loads(
        run_cli(["ledger", "show", "--json", "--limit", "3"], env=store.env.env_as(AUDITOR)).stdout
    )
    (destroyed,) = [e for e in last if e["action"] == "export.destroy"]
    assert destroyed["data"]["attachments"] == str(kept)


def test_purge_exports_never_removes_what_is_not_the_sealed_export(
    store: Footage, tmp_path: Path
) -> None:
    """An export path edited in the table (to the site's home, say) is not removed: only a
    directory holding the manifest the ledger sealed is."""
    rid = _register_and_extract(store, tmp_path / "out", "PV 4")
    (hold,) = json.loads(run_cli(["hold", "list", "--json"], env=store.env.env).stdout)
    run_cli(
        ["hold", "release", str(hold["id"]), "--reason", "jugement rendu"],
        env=store.env.env_as(SUPERVISOR),
    )
    decoy = tmp_path / rid
    decoy.mkdir()
    (decoy / "precious.txt").write_text("not an export")
    with store.env.site.db.write() as cur:
        cur.execute("UPDATE requisition SET export_path = ? WHERE id = ?", [str(decoy), rid])
    code, report, _ = purge(store.env)
    assert code == 9 and report["exports_destroyed"] == []
    assert "is not the sealed export the ledger records: left in place" in str(report["failures"])
    assert (decoy / "precious.txt").read_text() == "not an export"


def test_a_camera_whose_register_row_was_edited_is_not_purged(store: Footage) -> None:
    """Retention is the one its camera.add entry recorded: a row edited to one day more
    (or less) stops the purge of that camera, loudly."""
    before = segments(store.env)
    with store.env.site.db.write() as cur:
        cur.execute("UPDATE camera SET retention_days = 1 WHERE id = 'C-012'")
    result = run_cli(["purge"], env=store.env.env_as(ADMIN))
    assert result.exit_code == 9
    assert (
        "FAILED camera C-012 not purged: its register row differs from its ledger entry "
        "(retention_days)" in result.stderr
    )
    assert segments(store.env) == before


def test_segment_rows_edited_to_look_expired_are_left_in_place(store: Footage) -> None:
    """A row re-dated into the past (to get a recent segment destroyed) no longer matches
    its file name nor its ingest entry's Merkle root: the file stays."""
    before = segments(store.env)
    with store.env.site.db.write() as cur:
        cur.execute(
            "UPDATE segment SET start_us = start_us - ?, end_us = end_us - ? WHERE start_us >= ?",
            [2 * DAY, 2 * DAY, store.recent.start],
        )
    code, report, _ = purge(store.env)
    assert code == 9
    assert "its index row does not match the file name: left in place" in str(report["failures"])
    assert report["destroyed"] == 5
    assert {k: v for k, v in segments(store.env).items()} == {
        k: v for k, v in before.items() if k not in {store.segment(m) for m in range(5)}
    }


def test_a_symlinked_store_directory_is_never_followed(store: Footage, tmp_path: Path) -> None:
    """A day directory of the store replaced by a link to elsewhere: the purge deletes
    nothing through it, and says so."""
    outside = tmp_path / "elsewhere"
    day_dir = store.env.settings.home / "footage" / Path(store.segment(0)).parent.parent
    shutil.copytree(day_dir, outside)
    shutil.rmtree(day_dir)
    day_dir.symlink_to(outside, target_is_directory=True)
    kept = sorted(p.name for p in outside.rglob("*.mp4"))
    code, report, _ = purge(store.env)
    assert code == 9 and "a directory on the path is a link" in str(report["failures"])
    assert sorted(p.name for p in outside.rglob("*.mp4")) == kept


def test_a_certificate_that_could_not_be_written_is_made_by_the_next_run(
    store: Footage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills after the deletions: the run is recorded, its certificate is not;
    the next run (nothing left to destroy) makes it."""
    import custody.destruction as module

    site = store.env.site
    signer = site.signer(store.env.passphrase_file.read_bytes().rstrip(b"\n"))
    real = module.write_atomic

    def full(path: Path, data: bytes, mode: int = 0o644) -> None:
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(module, "write_atomic", full)
    with pytest.raises(DiskFullError, match="the destruction is recorded in the ledger"):
        run_purge(site, ADMIN, signer=signer)
    assert not list((store.env.settings.home / "certificates").glob("*"))
    monkeypatch.setattr(module, "write_atomic", real)
    report = run_purge(site, ADMIN, signer=signer)
    assert report.destroyed == 0 and len(report.certificates) == 1
    body = json.loads((report.certificates[0] / "certificate.json").read_text())
    assert body["purge"] == 1 and body["cameras"][0]["segments"] == 5


def test_a_ledger_note_cannot_release_a_hold(store: Footage) -> None:
    """Only a hold.release entry releases; the table's display is not what the purge reads."""
    placed = run_cli(
        [
            "hold",
            "place",
            "--camera",
            "C-012",
            "--from",
            local(store.old.start),
            "--to",
            local(store.old.end),
            "--reason",
            "r",
        ],
        env=store.env.env,
    )
    assert placed.exit_code == 0
    with store.env.site.db.write() as cur:
        cur.execute("UPDATE hold SET released_at = '2026-01-01T00:00:00Z', released_by = 'x'")
    store.env.site.ledger.append(ADMIN, Record("ledger.note", "hold 1", "released, honest"))
    code, report, _ = purge(store.env)
    assert (
        code == 8
        and report["destroyed"] == 0
        and report["cameras"] == [{"camera": "C-012", "to_destroy": 0, "held": 5}]
    )
    assert len(segments(store.env)) == 7


def test_a_purge_run_row_citing_other_entries_certifies_nothing(store: Footage) -> None:
    """A purge_run row written around scelle, citing ledger entries that are not its run's,
    gets no certificate: the run's entries must name it and its agent."""
    from requisition.destruction import certificate

    site = store.env.site
    with site.db.write() as cur:
        run = cur.execute(
            "INSERT INTO purge_run (started_at, now_utc, actor, state, segments, bytes, failures, "
            "intent_seqs, outcome_seqs) VALUES (?, ?, 'Procureur X', 'done', 0, 0, 0, '[2]', "
            "'[3]') RETURNING id",
            ["2026-01-01T00:00:00.000000Z"] * 2,
        ).fetchone()[0]
    with pytest.raises(IntegrityError, match="is not one of its own"):
        certificate(site, run, site.signer(PASSPHRASE))
    assert not (store.env.settings.home / "certificates" / f"purge-{run:06d}").exists()


@pytest.mark.backends("sqlite")
def test_a_camera_row_edited_during_the_run_stops_its_deletions(store: Footage) -> None:
    """The batches read each row with its camera's offset and store as the register
    says now: edited after the plan (an offset of ten days that puts a hold placed
    during the run out of reach), the rows are refused and the held files stay."""
    env = store.env
    held = {store.segment(3), store.segment(4)}
    edits: list[str] = []

    def step(name: str) -> None:
        if name == "intent" and not edits:
            placed = hold_minutes_3_and_4(store)
            assert placed.exit_code == 0, placed.stderr
            edits.append("hold")
        elif name == "batch" and edits == ["hold"]:
            conn = raw_connection(env)
            conn.execute("UPDATE camera SET clock_offset_ms = ? WHERE id = 'C-012'", [-864_000_000])
            conn.close()
            edits.append("offset")

    report = run_purge(env.site, ADMIN, step=step)
    assert edits == ["hold", "offset"]
    assert held <= set(segments(env))
    assert report.destroyed == 0
    assert any("its register row differs from its ledger entry (clock_offset_ms)" in f
               for f in report.failures)  # fmt: skip
    conn = raw_connection(env)  # nothing is left claimed by the finished run
    try:
        assert conn.execute(
            "SELECT COUNT(*) FROM segment WHERE purge_run IS NOT NULL AND destroyed_at IS NULL"
        ).fetchone() == (0,)
    finally:
        conn.close()
