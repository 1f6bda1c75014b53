"""Nothing altered is delivered as evidence: on real generated footage and real sites, a
segment changed after ingest, or replaced by a link, a FIFO or reached through a linked
directory, is withheld and stated as a gap (manifest, cover sheet, `scelle verify`); no
store path is followed through a link; VERIFY.txt is bound to its export; full disks and
interrupted copies leave nothing half-done."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pypdf import PdfReader

from custody.timewindow import parse_window
from exporters.gaps import GapKind
from exporters.generate import generate_footage
from exporters.index import camera_store, find, scan
from requisition.cameras import get_camera
from tests.conftest import ADMIN, AUDITOR, SUPERVISOR, SiteEnv, run_cli
from tests.footage_helpers import camera, window
from tests.fulldisk import resize, tmpfs
from tests.test_cameras import ADD
from tests.test_cli_errors import one_line_error
from tests.test_export import stock_checks
from tests.test_requisitions import DAY, REGISTER

MINUTE = 60_000_000


@dataclass
class Filmed:
    env: SiteEnv
    store: Path  # C-012's store root
    segments: list[str]  # store-relative paths, in time order: 10:00, 10:01, 10:02 local

    def register(self, *, pv: str = "PV 2026/000123", start: str = "10:00") -> str:
        """A requisition for C-012 from `start` to 10:03 yesterday, approved."""
        args = [*REGISTER]
        args[args.index("--pv") + 1] = pv
        args[-1] = f"C-012={DAY}T{start}/{DAY}T10:03"
        result = run_cli(args, env=self.env.env)
        assert result.exit_code == 0, result.stderr
        rid = result.stdout.split()[1]
        approved = run_cli(["requisition", "approve", rid], env=self.env.env_as(SUPERVISOR))
        assert approved.exit_code == 0, approved.stderr
        return rid

    def extract(self, rid: str, out: Path) -> tuple[int, str, str]:
        result = run_cli(["requisition", "extract", rid, "--out", str(out)], env=self.env.env)
        return result.exit_code, result.stdout, result.stderr

    def fingerprint(self) -> str:
        shown = run_cli(["keys", "show", "--fingerprint"], env=self.env.env)
        return shown.stdout.split()[1]


@pytest.fixture
def filmed(site_env: SiteEnv) -> Iterator[Filmed]:
    """Camera C-012 with three one-minute segments of yesterday 10:00-10:03, indexed."""
    assert run_cli(ADD, env=site_env.env_as(ADMIN)).exit_code == 0
    site = site_env.site
    cam = get_camera(site, "C-012")
    generate_footage(site, cam, parse_window(f"{DAY}T10:00", f"{DAY}T10:03", cam.timezone, 24))
    scan(site, [cam], "op", settle_seconds=0)
    store = Path(cam.store_path)
    segments = sorted(str(p.relative_to(store)) for p in store.rglob("*.mp4"))
    assert len(segments) == 3
    yield Filmed(site_env, store, segments)


def manifest(export: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((export / "manifest.json").read_bytes())


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


def flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


def every_byte(export: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(export.rglob("*")) if p.is_file())


def assert_withheld(filmed: Filmed, export: Path, victim: str, kind: GapKind) -> None:
    """The victim segment is a gap of `kind` everywhere, and nowhere in the footage."""
    m = manifest(export)
    (item,) = m["items"]
    cov = item["coverage"]
    assert [(g["kind"], g["segment"]) for g in cov["gaps"]] == [(str(kind), victim)]
    gap = cov["gaps"][0]
    assert (gap["from"], gap["to"]) == (f"{DAY}T10:01:00+01:00", f"{DAY}T10:02:00+01:00")
    assert {s["path"]: s["state"] for s in cov["segments"]}[victim] == str(kind)
    assert item["altered_since_ingest"] == [victim]
    assert m["complete"] is False
    masters = sorted(p.name for p in (export / "master").rglob("*.mp4"))
    assert masters == sorted(s.replace("/", "_") for s in filmed.segments if s != victim)
    for name in masters:  # what is delivered is bit for bit what was ingested
        ingested = next(s for s in cov["segments"] if s["path"].replace("/", "_") == name)
        copy = next((export / "master").rglob(name)).read_bytes()
        assert hashlib.sha256(copy).hexdigest() == ingested["sha256"]
    working = sorted((export / "working").rglob("*.mp4"))
    assert len(working) == 2  # 10:00-10:01 and 10:02-10:03, the gap between them
    cover = flat(pdf_text(export / "documents" / "cover.pdf"))
    assert flat("1 interruption :") in cover and flat("écarté, non remis") in cover
    assert flat(victim) in cover
    verified = run_cli(["verify", str(export), "--key", filmed.fingerprint()])
    assert verified.exit_code == 10, verified.stdout  # authentic, partial: README's code
    assert verified.stdout.splitlines()[-1].startswith(
        "PARTIAL export, VERIFIED against the expected key: 1 gap(s) in the footage, "
        "1 indexed segment(s) withheld"
    )
    assert f"GAP       C-012  {gap['from']} to {gap['to']} (60 s): " in verified.stdout
    assert "\nVERIFIED" not in verified.stdout
    as_json = json.loads(run_cli(["verify", str(export), "--json"]).stdout)
    assert as_json["verified"] is True and as_json["complete"] is False
    assert (as_json["status"], as_json["first_failure"]) == ("partial", None)
    assert [(g["camera"], g["kind"], g["segment"]) for g in as_json["gaps"]] == [
        ("C-012", str(kind), victim)
    ]
    assert as_json["withheld"] == [{"camera": "C-012", "path": victim, "kind": str(kind)}]
    identity = (export / "keys" / "allowed_signers").read_text().split()[0]
    assert stock_checks(export, identity) == {
        "openssl": 0,
        "ssh-keygen": 0,
        "minisign": 0,
        "sha256sum": 0,
    }


def test_export_segment_altered_after_ingest_is_a_gap_not_delivered(
    filmed: Filmed, tmp_path: Path
) -> None:
    victim = filmed.segments[1]
    data = bytearray((filmed.store / victim).read_bytes())
    data[len(data) // 2] ^= 0x01
    (filmed.store / victim).write_bytes(bytes(data))
    rid = filmed.register()
    code, out, err = filmed.extract(rid, tmp_path / "exports")
    assert code == 0, err
    assert "PARTIAL: 1 gap(s), 1 segment(s) withheld" in out
    export = tmp_path / "exports" / rid
    assert_withheld(filmed, export, victim, GapKind.ALTERED)
    assert bytes(data) not in every_byte(export)
    cover = pdf_text(export / "documents" / "cover.pdf")
    assert flat("fichier vidéo modifié depuis l'indexation") in flat(cover)
    entry = json.loads((export / "ledger" / "entry.json").read_bytes())
    assert entry["data"]["complete"] is False and entry["data"]["altered"] == [victim]


def _symlink(filmed: Filmed, victim: str, secret: Path) -> None:
    (filmed.store / victim).unlink()
    (filmed.store / victim).symlink_to(secret)


def _fifo(filmed: Filmed, victim: str, secret: Path) -> None:
    (filmed.store / victim).unlink()
    os.mkfifo(filmed.store / victim)  # opening it for reading would hang a naive reader


@pytest.mark.parametrize("plant", [_symlink, _fifo], ids=["symlink", "fifo"])
def test_export_segment_replaced_by_symlink_is_a_gap_not_copied(
    filmed: Filmed, tmp_path: Path, plant: object
) -> None:
    """A segment replaced by a link to a secret (think /etc/shadow), or by a FIFO: never
    read, never copied, a gap of kind not_regular."""
    victim = filmed.segments[1]
    secret = tmp_path / "outside" / "shadow"
    secret.parent.mkdir()
    secret.write_bytes(b"root:$6$secret-hash-that-must-never-leave:19000:0:99999:7:::\n")
    assert callable(plant)
    plant(filmed, victim, secret)
    rid = filmed.register()
    code, _, err = filmed.extract(rid, tmp_path / "exports")
    assert code == 0, err
    export = tmp_path / "exports" / rid
    assert_withheld(filmed, export, victim, GapKind.NOT_REGULAR)
    assert b"secret-hash-that-must-never-leave" not in every_byte(export)
    cover = pdf_text(export / "documents" / "cover.pdf")
    assert "autre chose qu'un fichier" in cover


def test_export_segments_reached_through_a_symlinked_directory_are_withheld(
    filmed: Filmed, tmp_path: Path
) -> None:
    """The hour directory moved out of the store and linked back: the very bytes that
    were ingested, but reached through a link, so nothing of that hour is delivered,
    and an export whose every segment is withheld still verifies, as partial."""
    hour = (filmed.store / filmed.segments[0]).parent
    assert all((filmed.store / s).parent == hour for s in filmed.segments)
    shutil.move(hour, tmp_path / "moved-hour")
    hour.symlink_to(tmp_path / "moved-hour", target_is_directory=True)
    rid = filmed.register()
    code, out, err = filmed.extract(rid, tmp_path / "exports")
    assert code == 0, err
    assert "PARTIAL: 3 gap(s), 3 segment(s) withheld" in out
    export = tmp_path / "exports" / rid
    cov = manifest(export)["items"][0]["coverage"]
    assert [(g["kind"], g["segment"]) for g in cov["gaps"]] == [
        ("not_regular", s) for s in filmed.segments
    ]
    assert not (export / "master").exists() and not (export / "working").exists()
    verified = run_cli(["verify", str(export), "--key", filmed.fingerprint()])
    assert verified.exit_code == 10, verified.stdout  # authentic, partial: README's code
    assert verified.stdout.splitlines()[-1].startswith(
        "PARTIAL export, VERIFIED against the expected key: 3 gap(s) in the footage, "
        "3 indexed segment(s) withheld"
    )


def test_an_altered_segment_hidden_by_other_footage_is_still_named(
    filmed: Filmed, tmp_path: Path
) -> None:
    """A second recording of 10:00:30-10:01:30 (say, a recorder's duplicate), altered
    after ingest: no gap (the other segments cover its time), yet it is withheld, the
    export is partial and both the cover sheet and `scelle verify` name it."""
    camera = get_camera(filmed.env.site, "C-012")
    start = parse_window(f"{DAY}T10:00:30", f"{DAY}T10:01", "Europe/Paris", 24).start
    path = camera_store(camera).segment_path("C-012", start, MINUTE)
    dup = str(path.relative_to(filmed.store))
    shutil.copyfile(filmed.store / filmed.segments[0], path)
    os.utime(path, (0, 0))  # settled: the scan takes it as the recorder wrote it
    scan(filmed.env.site, [camera], ADMIN)
    size = path.stat().st_size
    with (filmed.store / dup).open("r+b") as handle:
        handle.seek(size // 2)
        handle.write(b"\x00" * 16)
    rid = filmed.register()
    code, out, err = filmed.extract(rid, tmp_path / "exports")
    assert code == 0, err
    assert "PARTIAL: 0 gap(s), 1 segment(s) withheld" in out
    export = tmp_path / "exports" / rid
    m = manifest(export)
    cov = m["items"][0]["coverage"]
    assert cov["gaps"] == [] and cov["complete"] is False and m["complete"] is False
    assert not list((export / "master").rglob("*dup*"))
    assert flat("1 autre(s) fichier(s) vidéo non remis") in flat(
        pdf_text(export / "documents" / "cover.pdf")
    )
    verified = run_cli(["verify", str(export)])
    assert verified.exit_code == 10
    assert (
        f"  WITHHELD  C-012  {dup}: segment altered since ingest (not delivered) (its time is "
        "covered by other footage)"
    ) in verified.stdout
    assert verified.stdout.splitlines()[-1].startswith(
        "PARTIAL export, VERIFIED: 0 gap(s) in the footage, 1 indexed segment(s) withheld"
    )


def test_footage_find_checks_each_segment_against_its_ingest_hash_without_links(
    filmed: Filmed, tmp_path: Path
) -> None:
    """`footage find` (before any extraction) names an altered segment and a linked one."""
    altered, linked = filmed.segments[0], filmed.segments[2]
    data = bytearray((filmed.store / altered).read_bytes())
    data[-100] ^= 0x01
    (filmed.store / altered).write_bytes(bytes(data))
    copy = tmp_path / "copy.mp4"
    shutil.copyfile(filmed.store / linked, copy)  # the same bytes, through a link
    (filmed.store / linked).unlink()
    (filmed.store / linked).symlink_to(copy)
    site = filmed.env.site
    coverage = find(site, get_camera(site, "C-012"), window(f"{DAY}T10:00", f"{DAY}T10:03"))
    assert [(g.kind, g.segment) for g in coverage.gaps] == [
        (GapKind.ALTERED, altered),
        (GapKind.NOT_REGULAR, linked),
    ]
    shown = run_cli(
        ["footage", "find", "C-012", "--from", f"{DAY}T10:00", "--to", f"{DAY}T10:03", "--json"],
        env=filmed.env.env,
    )
    assert shown.exit_code == 0, shown.stderr
    kinds = [g["kind"] for g in json.loads(shown.stdout)["gaps"]]
    assert kinds == ["altered", "not_regular"]
    text = run_cli(
        ["footage", "find", "C-012", "--from", f"{DAY}T10:00", "--to", f"{DAY}T10:03"],
        env=filmed.env.env,
    )
    assert f"  WITHHELD {altered}: not what was ingested, never exported" in text.stdout
    assert text.stdout.splitlines()[-1] == "incomplete: 2 gap(s), 2 segment(s) withheld"


def test_frigate_camera_directory_symlink_is_never_entered(
    site_env: SiteEnv, tmp_path: Path
) -> None:
    """`recordings/<day>/<hour>/<camera>` linked to a directory outside the store: its
    files are neither hashed nor indexed (Path.is_dir() followed the link)."""
    site = site_env.site
    cam = camera(site, "CAM-F", store_kind="frigate", store_path="frigate")
    generate_footage(site, cam, window("2026-11-20T10:00", "2026-11-20T10:01"))
    store = Path(cam.store_path)
    hour = store / "recordings" / "2026-11-20" / "09"
    outside = tmp_path / "outside-camera"
    shutil.move(hour / "CAM-F", outside)
    (hour / "CAM-F").symlink_to(outside, target_is_directory=True)
    report = scan(site, [cam], "op", settle_seconds=0)
    assert (report.segments, report.directories) == (0, 0)
    with site.db.read() as cur:
        assert cur.execute("SELECT COUNT(*) FROM segment").fetchone()[0] == 0


def test_scelle_store_camera_directory_symlink_is_never_entered(
    site_env: SiteEnv, tmp_path: Path
) -> None:
    site = site_env.site
    cam = camera(site, "CAM-L")
    generate_footage(site, cam, window("2026-11-20T10:00", "2026-11-20T10:01"))
    store = Path(cam.store_path)
    outside = tmp_path / "outside-camera"
    shutil.move(store / "CAM-L", outside)
    (store / "CAM-L").symlink_to(outside, target_is_directory=True)
    assert scan(site, [cam], "op", settle_seconds=0).segments == 0


def test_scan_reports_a_link_named_as_a_segment_and_never_hashes_it(
    site_env: SiteEnv, tmp_path: Path
) -> None:
    site = site_env.site
    cam = camera(site, "CAM-K")
    generate_footage(site, cam, window("2026-11-20T10:00", "2026-11-20T10:02"))
    store = Path(cam.store_path)
    real, planted = sorted(store.rglob("*.mp4"))
    secret = tmp_path / "secret.mp4"
    shutil.move(planted, secret)
    planted.symlink_to(secret)
    old = 1_700_000_000
    os.utime(planted, (old, old), follow_symlinks=False)
    report = scan(site, [cam], "op", settle_seconds=0)
    assert report.segments == 1
    assert report.not_regular == [str(planted.relative_to(store))]
    with site.db.read() as cur:
        paths = [row[0] for row in cur.execute("SELECT path FROM segment").fetchall()]
    assert paths == [str(real.relative_to(store))]


def test_verify_refuses_verify_txt_copied_from_another_export(
    filmed: Filmed, tmp_path: Path
) -> None:
    """Both exports are signed by the site key: the signature of VERIFY.txt alone does
    not say which export it belongs to."""
    first = filmed.register(pv="PV 2026/000201")
    second = filmed.register(pv="PV 2026/000202", start="10:01")
    out = tmp_path / "exports"
    for rid in (first, second):
        code, _, err = filmed.extract(rid, out)
        assert code == 0, err
    for name in ("VERIFY.txt", "VERIFY.txt.sig"):
        shutil.copyfile(out / first / name, out / second / name)
    result = run_cli(["verify", str(out / second), "--key", filmed.fingerprint()])
    assert result.exit_code == 4
    assert "FAIL  cover (signed cover sheet and VERIFY.txt): VERIFY.txt is another export's: " in (
        result.stdout
    )
    assert f"it names requisition {first}" in result.stdout
    assert run_cli(["verify", str(out / first)]).exit_code == 0


def ledger_actions(filmed: Filmed) -> list[str]:
    shown = run_cli(["ledger", "show", "--json", "--limit", "1000"], env=filmed.env.env_as(AUDITOR))
    return [e["action"] for e in json.loads(shown.stdout)]


def test_extract_onto_a_full_disk_is_one_line_and_leaves_nothing(
    filmed: Filmed, tmp_path: Path
) -> None:
    rid = filmed.register()
    with tmpfs(tmp_path / "small", "512k") as small:
        code, _, err = filmed.extract(rid, small)
        assert code == 6
        line = one_line_error(err)
        assert re.fullmatch(
            rf"scelle: error: not enough space in {small} for the export of {rid}: it needs "
            r"more than [\d,]+ bytes \(master copy and reserve; the working copy comes on "
            r"top\), [\d,]+ bytes are free: nothing was kept",
            line,
        ), line
        assert list(small.iterdir()) == []
        assert "requisition.export" not in ledger_actions(filmed)
        assert run_cli(["ledger", "verify"], env=filmed.env.env).exit_code == 0
        resize(small, "64m")
        code, out, err = filmed.extract(rid, small)
        assert code == 0, err
        assert "complete: no gap in the footage" in out
        assert run_cli(["verify", str(small / rid), "--key", filmed.fingerprint()]).exit_code == 0
        assert [p.name for p in small.iterdir()] == [rid]
    assert run_cli(["ledger", "verify"], env=filmed.env.env).exit_code == 0


def test_extract_when_the_disk_fills_during_the_working_copy(
    filmed: Filmed, tmp_path: Path
) -> None:
    """Room for the master copy and the reserve, not for the working copy: ffmpeg's
    failure is the same one line, and nothing is left."""
    rid = filmed.register()
    master = sum((filmed.store / s).stat().st_size for s in filmed.segments)
    size = master + (8 << 20) + (64 << 10)  # the reserve is 8 MB (package.RESERVE)
    with tmpfs(tmp_path / "small", str(size)) as small:
        code, _, err = filmed.extract(rid, small)
        assert code == 6
        line = one_line_error(err)
        assert line.startswith(
            f"scelle: error: not enough space in {small} for the export of {rid}: the disk "
            "filled up while it was being built, "
        ), line
        assert list(small.iterdir()) == []
        assert "requisition.export" not in ledger_actions(filmed)
        assert run_cli(["ledger", "verify"], env=filmed.env.env).exit_code == 0
        resize(small, "64m")
        code, _, err = filmed.extract(rid, small)
        assert code == 0, err
        assert run_cli(["verify", str(small / rid)]).exit_code == 0


def test_export_copy_removes_what_an_interrupted_copy_left_and_says_so(
    filmed: Filmed, tmp_path: Path
) -> None:
    rid = filmed.register()
    code, _, err = filmed.extract(rid, tmp_path / "exports")
    assert code == 0, err
    medium = tmp_path / "usb"
    medium.mkdir()
    # What `export copy` killed mid-way leaves: its hidden directory, half filled.
    left = medium / f".{rid}.partial-k1ll3d"
    shutil.copytree(tmp_path / "exports" / rid / "master", left / "master")
    other = medium / ".2026-99999.partial-other"  # another export's: not ours to remove
    other.mkdir()
    result = run_cli(["export", "copy", rid, "--to", str(medium)], env=filmed.env.env)
    assert result.exit_code == 0, result.stderr
    assert f"removed {left}, left on the medium by an interrupted copy" in result.stdout
    assert sorted(p.name for p in medium.iterdir()) == sorted([rid, other.name])
    assert run_cli(["verify", str(medium / rid)]).exit_code == 0
    last = json.loads(
        run_cli(["ledger", "show", "--json", "--limit", "1"], env=filmed.env.env_as(AUDITOR)).stdout
    )[0]
    assert last["action"] == "export.copy" and last["data"]["stale_removed"] == [str(left)]


def test_export_copy_to_a_full_medium_is_one_line_and_leaves_nothing(
    filmed: Filmed, tmp_path: Path
) -> None:
    rid = filmed.register()
    code, _, err = filmed.extract(rid, tmp_path / "exports")
    assert code == 0, err
    with tmpfs(tmp_path / "usb", "256k") as medium:
        result = run_cli(["export", "copy", rid, "--to", str(medium)], env=filmed.env.env)
        assert result.exit_code == 6
        line = one_line_error(result.stderr)
        assert re.fullmatch(
            rf"scelle: error: not enough space on {medium} for the export of {rid}: it needs "
            r"[\d,]+ bytes, [\d,]+ bytes are free: nothing was left on the medium",
            line,
        ), line
        assert len(result.stderr) < 400  # not a shutil.Error dump
        assert list(medium.iterdir()) == []
        assert "export.copy" not in ledger_actions(filmed)
        assert run_cli(["ledger", "verify"], env=filmed.env.env).exit_code == 0
        resize(medium, "64m")
        again = run_cli(["export", "copy", rid, "--to", str(medium)], env=filmed.env.env)
        assert again.exit_code == 0, again.stderr
        assert [p.name for p in medium.iterdir()] == [rid]
    assert run_cli(["ledger", "verify"], env=filmed.env.env).exit_code == 0
