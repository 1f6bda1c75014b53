"""Extraction on real generated footage: master bit for bit, working copy measured by a
real probe, gaps exact. One site, footage generated once for the module."""

from __future__ import annotations

import filecmp
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from custody.errors import FootageAlteredError
from custody.site import Site
from custody.timewindow import local_text, parse_time, to_us
from exporters.gaps import GapKind
from exporters.generate import generate_footage
from exporters.index import Coverage, camera_store, find, scan
from exporters.master import extract_master, verified_coverage
from exporters.models import Camera
from exporters.working import make_working_copies
from tests.conftest import fresh_database
from tests.footage_helpers import ZONE, camera, new_site, window

FRAME_US = 100_000  # generated footage runs at 10 frames per second


@dataclass
class Footage:
    site: Site
    cams: dict[str, Camera]


@pytest.fixture(scope="module")
def footage(
    tmp_path_factory: pytest.TempPathFactory, backend: str, request: pytest.FixtureRequest
) -> Iterator[Footage]:
    root = tmp_path_factory.mktemp("footage")
    site = new_site(root / "site", fresh_database(backend, request, root))
    cams = {
        "A": camera(site, "CAM-A"),
        "DST": camera(site, "CAM-DST"),
        "F": camera(site, "CAM-F", store_kind="frigate", store_path="frigate"),
        "O": camera(site, "CAM-O", clock_offset_ms="7000"),
    }
    corrupt_at = to_us(parse_time("2026-11-20T10:04:10", ZONE))
    generate_footage(
        site,
        cams["A"],
        window("2026-11-20T10:00", "2026-11-20T10:05"),
        gaps=[window("2026-11-20T10:02", "2026-11-20T10:02:30")],
        corrupt=[corrupt_at],
    )
    generate_footage(site, cams["DST"], window("2026-10-25T02:57+02:00", "2026-10-25T02:03+01:00"))
    generate_footage(site, cams["DST"], window("2026-03-29T01:57", "2026-03-29T03:03"))
    generate_footage(site, cams["F"], window("2026-11-20T10:00", "2026-11-20T10:02"))
    generate_footage(site, cams["O"], window("2026-11-20T10:00", "2026-11-20T10:03"))
    scan(site, cams.values(), "op", settle_seconds=0)
    yield Footage(site, cams)
    site.close()


def local(us: int) -> str:
    return local_text(us, ZONE)


def extract(footage: Footage, tmp_path: Path, cam: str, start: str, end: str) -> Coverage:
    """Find, extract master and working copies, and check what every case must hold."""
    coverage = find(footage.site, footage.cams[cam], window(start, end))
    master = extract_master(coverage.segments, tmp_path / "master")
    master.check()
    assert len(master.files) == len(coverage.segments)
    for copied in master.files:
        assert filecmp.cmp(copied.segment.file, copied.dest, shallow=False)
    working = make_working_copies(coverage, tmp_path / "working", burn_in=True)
    assert len(working) == len(coverage.spans)
    for made in working:
        span = made.span.end_us - made.span.start_us
        assert abs(made.probe.duration_us - span) <= FRAME_US, (made.path.name, made.probe)
        assert made.probe.codec == "h264"
    assert not list((tmp_path / "working").glob("*.partial"))
    return coverage


def spans(coverage: Coverage) -> list[tuple[str, str]]:
    return [(local(s.start_us), local(s.end_us)) for s in coverage.spans]


def gaps(coverage: Coverage) -> list[tuple[str, str, str]]:
    return [(local(g.start_us), local(g.end_us), g.reason.split(" ")[0]) for g in coverage.gaps]


def test_window_inside_one_segment(footage: Footage, tmp_path: Path) -> None:
    c = extract(footage, tmp_path, "A", "2026-11-20T10:00:10", "2026-11-20T10:00:50")
    assert [s.path.rsplit("/", 1)[1] for s in c.segments] == ["20261120T090000.000Z_60000.mp4"]
    assert spans(c) == [("2026-11-20T10:00:10+01:00", "2026-11-20T10:00:50+01:00")]
    assert gaps(c) == []


def test_window_across_segments(footage: Footage, tmp_path: Path) -> None:
    c = extract(footage, tmp_path, "A", "2026-11-20T10:00:30", "2026-11-20T10:01:40")
    assert len(c.segments) == 2
    assert spans(c) == [("2026-11-20T10:00:30+01:00", "2026-11-20T10:01:40+01:00")]
    assert c.complete


def test_window_across_a_gap(footage: Footage, tmp_path: Path) -> None:
    c = extract(footage, tmp_path, "A", "2026-11-20T10:01:30", "2026-11-20T10:03:00")
    assert spans(c) == [
        ("2026-11-20T10:01:30+01:00", "2026-11-20T10:02:00+01:00"),
        ("2026-11-20T10:02:30+01:00", "2026-11-20T10:03:00+01:00"),
    ]
    assert gaps(c) == [("2026-11-20T10:02:00+01:00", "2026-11-20T10:02:30+01:00", "no")]
    assert c.gaps[0].reason == "no footage recorded"


def test_window_over_a_corrupt_segment(footage: Footage, tmp_path: Path) -> None:
    c = extract(footage, tmp_path, "A", "2026-11-20T10:03:00", "2026-11-20T10:04:50")
    assert spans(c) == [
        ("2026-11-20T10:03:00+01:00", "2026-11-20T10:03:30+01:00"),
        ("2026-11-20T10:04:30+01:00", "2026-11-20T10:04:50+01:00"),
    ]
    assert gaps(c) == [("2026-11-20T10:03:30+01:00", "2026-11-20T10:04:30+01:00", "corrupt")]
    assert "20261120T090330.000Z_60000.mp4" in c.gaps[0].reason
    assert len(c.segments) == 3  # the corrupt one is still in the master copy, as recorded


def test_window_across_the_autumn_change(footage: Footage, tmp_path: Path) -> None:
    """02:59 CEST to 02:02 CET is three minutes, not an hour and three."""
    c = extract(footage, tmp_path, "DST", "2026-10-25T02:59+02:00", "2026-10-25T02:02+01:00")
    assert c.window.end - c.window.start == 180_000_000
    assert spans(c) == [("2026-10-25T02:59:00+02:00", "2026-10-25T02:02:00+01:00")]
    assert c.complete


def test_window_across_the_spring_change(footage: Footage, tmp_path: Path) -> None:
    """01:59 CET to 03:01 CEST is two minutes: 02:00 to 03:00 never happened."""
    c = extract(footage, tmp_path, "DST", "2026-03-29T01:59", "2026-03-29T03:01")
    assert c.window.end - c.window.start == 120_000_000
    assert spans(c) == [("2026-03-29T01:59:00+01:00", "2026-03-29T03:01:00+02:00")]
    assert c.complete


def test_frigate_layout(footage: Footage, tmp_path: Path) -> None:
    c = extract(footage, tmp_path, "F", "2026-11-20T10:00:05", "2026-11-20T10:01:25")
    assert [s.path for s in c.segments][:2] == [
        "recordings/2026-11-20/09/CAM-F/00.00.mp4",
        "recordings/2026-11-20/09/CAM-F/00.10.mp4",
    ]
    assert len(c.segments) == 9
    assert c.complete


def test_clock_offset_is_applied(footage: Footage, tmp_path: Path) -> None:
    """The recorder runs 7 s ahead: true 10:00:00-10:01:00 is its 10:00:07-10:01:07,
    exactly its first segment; ignoring the offset would leave a 7-second gap."""
    c = extract(footage, tmp_path, "O", "2026-11-20T10:00:00", "2026-11-20T10:01:00")
    assert [s.path.rsplit("/", 1)[1] for s in c.segments] == ["20261120T090007.000Z_60000.mp4"]
    assert spans(c) == [("2026-11-20T10:00:00+01:00", "2026-11-20T10:01:00+01:00")]
    assert c.offset_us == 7_000_000
    assert c.complete


def test_stream_copy_mode_never_invents_frames(footage: Footage, tmp_path: Path) -> None:
    coverage = find(
        footage.site, footage.cams["A"], window("2026-11-20T10:01:30", "2026-11-20T10:03:00")
    )
    made = make_working_copies(coverage, tmp_path, stream_copy=True)
    assert len(made) == 2  # one file per continuous span, the gap between them
    for w in made:
        assert w.probe.duration_us >= w.span.end_us - w.span.start_us - FRAME_US


def test_a_segment_altered_after_ingest_is_detected(tmp_path: Path, database_url: str) -> None:
    site = new_site(tmp_path / "site", database_url)
    cam = camera(site, "CAM-X")
    generate_footage(site, cam, window("2026-11-20T11:00", "2026-11-20T11:02"))
    scan(site, [cam], "op", settle_seconds=0)
    coverage = find(site, cam, window("2026-11-20T11:00", "2026-11-20T11:02"))
    victim = coverage.segments[1].file
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    master = extract_master(coverage.segments, tmp_path / "master")
    assert [(u.segment.path, u.kind) for u in master.withheld] == [
        (coverage.segments[1].path, GapKind.ALTERED)
    ]
    assert [f.segment.path for f in master.files] == [coverage.segments[0].path]
    assert sorted(p.name for p in (tmp_path / "master").iterdir()) == [
        coverage.segments[0].path.replace("/", "_")  # the altered copy was deleted
    ]
    with pytest.raises(
        FootageAlteredError, match="1 segment\\(s\\) missing or changed since ingest"
    ):
        master.check()
    again = find(site, cam, window("2026-11-20T11:00", "2026-11-20T11:02"))
    assert [(g.kind, g.segment) for g in again.gaps] == [
        (GapKind.ALTERED, coverage.segments[1].path)
    ]
    site.close()


def test_a_corrupt_segment_never_hides_good_footage(tmp_path: Path, database_url: str) -> None:
    """a [0,60) good, b [50,110) corrupt, c [60,120) good: no gap at all."""
    site = new_site(tmp_path / "site", database_url)
    cam = camera(site, "CAM-Y")
    generate_footage(site, cam, window("2026-11-20T11:00", "2026-11-20T11:02"))
    scan(site, [cam], "op", settle_seconds=0)
    start = to_us(parse_time("2026-11-20T11:00:50", ZONE))
    bad = camera_store(cam).segment_path("CAM-Y", start, 60_000_000)
    bad.write_bytes(b"not a video" * 100)  # corrupt as the recorder wrote it, and ingested so
    scan(site, [cam], "op", settle_seconds=0)
    b = str(bad.relative_to(cam.store_path))
    coverage = find(site, cam, window("2026-11-20T11:00", "2026-11-20T11:02"))
    assert coverage.complete, coverage.gaps
    assert [(u.segment.path, u.kind) for u in coverage.unusable] == [(b, GapKind.CORRUPT)]
    assert spans(coverage) == [("2026-11-20T11:00:00+01:00", "2026-11-20T11:02:00+01:00")]
    partial = find(site, cam, window("2026-11-20T11:00", "2026-11-20T11:02:30"))
    assert gaps(partial) == [("2026-11-20T11:02:00+01:00", "2026-11-20T11:02:30+01:00", "no")]
    site.close()


def test_working_copies_are_made_from_the_verified_master_copies(
    tmp_path: Path, database_url: str
) -> None:
    """Once copied and verified, the store is never read again: with the store gone (or
    swapped under our feet), the working copy is still made, from the master copies."""
    site = new_site(tmp_path / "site", database_url)
    cam = camera(site, "CAM-W")
    corrupt_at = to_us(parse_time("2026-11-20T11:01:10", ZONE))
    generate_footage(
        site, cam, window("2026-11-20T11:00", "2026-11-20T11:03"), corrupt=[corrupt_at]
    )
    scan(site, [cam], "op", settle_seconds=0)
    found = find(site, cam, window("2026-11-20T11:00", "2026-11-20T11:03"), check=False)
    master = extract_master(found.segments, tmp_path / "export" / "master")
    shutil.rmtree(cam.store_path)
    coverage = verified_coverage(found, master)
    assert [(g.kind, g.segment) for g in coverage.gaps] == [
        (GapKind.CORRUPT, found.segments[1].path)
    ]
    assert len(master.files) == 3  # the corrupt segment is copied all the same, as recorded
    members = [seg.file for span in coverage.spans for seg in span.segments]
    assert members and all(f.parent == tmp_path / "export" / "master" for f in members)
    made = make_working_copies(coverage, tmp_path / "export" / "working", burn_in=True)
    assert [round(w.probe.duration_us / 1e6) for w in made] == [60, 60]
    site.close()
