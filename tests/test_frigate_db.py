"""Frigate's database: the exact start and end of each segment, read-only, never locked.

Frigate names a segment by its start to the second; `frigate.db`, beside `recordings/`,
holds its exact times. The store generated here is real Frigate-layout footage (ffmpeg);
the database is written as Frigate writes it (its `recordings` table, WAL mode, floats
since the epoch, Frigate's own absolute paths), with starts 347 ms past each named
second.
"""

from __future__ import annotations

import filecmp
import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from custody.site import Site
from custody.timewindow import local_text
from exporters.generate import generate_footage
from exporters.index import Coverage, camera_store, find, scan
from exporters.master import extract_master
from exporters.models import Camera
from exporters.stores.frigate import DATABASE
from exporters.working import make_working_copies
from requisition.purge import purge as run_purge
from tests.conftest import ADMIN
from tests.footage_helpers import ZONE, camera, new_site, window

OFF = 347_000  # µs past the named second: Frigate's segments start where the stream was
FRAME_US = 100_000  # generated footage: 10 frames a second

# Frigate's peewee model (frigate/models.py), as SQLite stores it.
SCHEMA = """
CREATE TABLE recordings (
    id VARCHAR(30) NOT NULL PRIMARY KEY, camera VARCHAR(20) NOT NULL,
    path VARCHAR(255) NOT NULL, start_time DATETIME NOT NULL, end_time DATETIME NOT NULL,
    duration REAL NOT NULL, motion INTEGER, objects INTEGER
);
CREATE INDEX recordings_camera ON recordings (camera);
CREATE UNIQUE INDEX recordings_path ON recordings (path);
"""


@dataclass
class Frigate:
    site: Site
    camera: Camera
    root: Path
    named: list[tuple[str, int]]  # (path in the store, start the name says), in order


@pytest.fixture
def frigate(tmp_path: Path, database_url: str) -> Frigate:
    site = new_site(tmp_path / "site", database_url)
    cam = camera(site, "CAM-F", store_kind="frigate", store_path="frigate", retention_days="2")
    generate_footage(site, cam, window("2026-11-20T10:00", "2026-11-20T10:01"))
    store = camera_store(cam)
    named = []
    for path in sorted((store.root / "recordings").rglob("*.mp4")):
        rel = str(path.relative_to(store.root))
        parsed = store.parse(path.parent, path.name)
        assert parsed is not None
        named.append((rel, parsed.start_us))
    assert len(named) == 6
    return Frigate(site, cam, store.root, named)


def write_database(frigate: Frigate) -> list[tuple[int, int]]:
    """Frigate's rows for the store's segments (and one of another camera, same name):
    each starts 347 ms past its named second and ends where the next starts."""
    starts = [named + OFF for _rel, named in frigate.named]
    times = list(zip(starts, [*starts[1:], starts[-1] + 10_000_000], strict=True))
    db = sqlite3.connect(frigate.root / DATABASE)
    db.execute("PRAGMA journal_mode=wal")
    db.executescript(SCHEMA)
    rows = [
        (f"id{i}", "CAM-F", f"/media/frigate/{rel}", s / 1e6, e / 1e6, (e - s) / 1e6)
        for i, ((rel, _named), (s, e)) in enumerate(zip(frigate.named, times, strict=True))
    ]
    other = frigate.named[0][0].replace("CAM-F", "CAM-G")
    rows.append(("other", "CAM-G", f"/media/frigate/{other}", 0.0, 1.0, 1.0))
    db.executemany(
        "INSERT INTO recordings (id, camera, path, start_time, end_time, duration) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    db.commit()
    db.close()
    return times


def local(us: int) -> str:
    return local_text(us, ZONE)


def check_extract(coverage: Coverage, tmp_path: Path) -> None:
    """Bit-identical masters; working copies within one frame of each span."""
    master = extract_master(coverage.segments, tmp_path / "master")
    master.check()
    for copied in master.files:
        assert filecmp.cmp(copied.segment.file, copied.dest, shallow=False)
    for made in make_working_copies(coverage, tmp_path / "working"):
        span = made.span.end_us - made.span.start_us
        assert abs(made.probe.duration_us - span) <= FRAME_US, made.path.name


def test_times_come_from_the_database_to_the_microsecond(frigate: Frigate, tmp_path: Path) -> None:
    times = write_database(frigate)
    scan(frigate.site, [frigate.camera], "op", settle_seconds=0)
    coverage = find(frigate.site, frigate.camera, window("2026-11-20T10:00", "2026-11-20T10:01"))
    assert [(s.start_us, s.end_us) for s in coverage.segments] == times
    # The first 347 ms of the minute were not recorded: stated, to the millisecond.
    assert [(local(s.start_us), local(s.end_us)) for s in coverage.spans] == [
        ("2026-11-20T10:00:00.347000+01:00", "2026-11-20T10:01:00+01:00")
    ]
    assert [(local(g.start_us), local(g.end_us)) for g in coverage.gaps] == [
        ("2026-11-20T10:00:00+01:00", "2026-11-20T10:00:00.347000+01:00")
    ]
    check_extract(coverage, tmp_path)


def test_without_the_database_the_names_are_read(frigate: Frigate, tmp_path: Path) -> None:
    scan(frigate.site, [frigate.camera], "op", settle_seconds=0)
    coverage = find(frigate.site, frigate.camera, window("2026-11-20T10:00", "2026-11-20T10:01"))
    assert [s.start_us for s in coverage.segments] == [named for _rel, named in frigate.named]
    assert [s.end_us - s.start_us for s in coverage.segments] == [10_000_000] * 6  # probed
    assert coverage.complete
    check_extract(coverage, tmp_path)


def test_a_row_that_disagrees_with_the_name_is_not_taken(frigate: Frigate) -> None:
    """A row whose start is not within the second the file's name says (a database of
    another store, a renamed file) is ignored: the name and the probe are read."""
    write_database(frigate)
    first = frigate.named[0][0]
    with sqlite3.connect(frigate.root / DATABASE) as db:
        db.execute(
            "UPDATE recordings SET start_time = start_time + 5 WHERE path LIKE ?", [f"%{first}"]
        )
    db.close()
    scan(frigate.site, [frigate.camera], "op", settle_seconds=0)
    coverage = find(frigate.site, frigate.camera, window("2026-11-20T10:00", "2026-11-20T10:01"))
    assert coverage.segments[0].start_us == frigate.named[0][1]
    assert coverage.segments[1].start_us == frigate.named[1][1] + OFF


def test_the_database_is_read_only_and_never_locked(frigate: Frigate) -> None:
    """Frigate keeps writing while scelle scans: its write transaction stays open during
    the scan, commits after it, and the database file is never written by scelle."""
    write_database(frigate)
    db_file = frigate.root / DATABASE
    before = hashlib.sha256(db_file.read_bytes()).hexdigest()
    writer = sqlite3.connect(db_file, timeout=0, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute(
        "INSERT INTO recordings (id, camera, path, start_time, end_time, duration) "
        "VALUES ('new', 'CAM-F', '/media/frigate/recordings/x.mp4', 1.0, 2.0, 1.0)"
    )
    report = scan(frigate.site, [frigate.camera], "op", settle_seconds=0)
    assert report.segments == 6
    assert hashlib.sha256(db_file.read_bytes()).hexdigest() == before  # nothing written
    writer.execute("COMMIT")  # not blocked by scelle's reads
    writer.execute("BEGIN EXCLUSIVE")  # and nothing of scelle's is still holding it
    writer.execute("ROLLBACK")
    writer.close()
    coverage = find(frigate.site, frigate.camera, window("2026-11-20T10:00", "2026-11-20T10:01"))
    assert coverage.segments[0].start_us == frigate.named[0][1] + OFF  # read despite the writer


@pytest.mark.parametrize("database_first", [True, False], ids=["rows-first", "files-first"])
def test_the_purge_destroys_expired_segments_however_they_were_timed(
    frigate: Frigate, database_first: bool
) -> None:
    """Rows timed by the database, or indexed from their names before Frigate wrote its
    rows (a scan between the file and its row): the purge's check of each row against its
    file's name holds both ways, so expired footage is destroyed, not refused forever."""
    if database_first:
        write_database(frigate)
    scan(frigate.site, [frigate.camera], "op", settle_seconds=0)
    if not database_first:
        write_database(frigate)
    report = run_purge(frigate.site, ADMIN)  # the footage is 10 days old, kept 2
    assert (report.destroyed, report.failures) == (6, [])
    assert not list((frigate.root / "recordings").rglob("*.mp4"))
