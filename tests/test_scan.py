"""Indexing: hashed once, batched by camera and hour in the ledger, incremental."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custody import merkle
from custody.entry import decode_entry
from custody.errors import InputError
from custody.site import Site
from custody.timewindow import parse_time, to_us
from exporters.generate import generate_footage
from exporters.index import NewSegment, camera_store, scan
from exporters.models import Camera
from tests.footage_helpers import ZONE, camera, new_site, window


def ingest_entries(site: Site) -> list[dict[str, Any]]:
    return [
        e
        for e in (decode_entry(body) for _, body in site.ledger.entries())
        if e["action"] == "footage.ingest"
    ]


def test_batches_by_hour_with_the_merkle_root_of_their_segments(
    tmp_path: Path, database_url: str
) -> None:
    site = new_site(tmp_path / "site", database_url)
    cam = camera(site, "CAM-H", store_kind="frigate", store_path="frigate")
    generate_footage(site, cam, window("2026-11-20T10:58", "2026-11-20T11:01"))  # 18 x 10 s
    report = scan(site, [cam], "op")
    assert (report.segments, report.batches) == (18, 2)
    entries = ingest_entries(site)
    assert [e["subject"]["hour"] for e in entries] == [
        "2026-11-20T09:00:00Z",
        "2026-11-20T10:00:00Z",
    ]
    assert [e["data"]["segments"] for e in entries] == [12, 6]
    with site.db.read() as cur:
        rows = cur.execute(
            "SELECT path, start_us, end_us, size, sha256 FROM segment ORDER BY start_us"
        ).fetchall()
    first_hour = [NewSegment(*row) for row in rows[:12]]
    leaves = [merkle.leaf_hash(s.record()) for s in first_hour]
    root = merkle.levels_root(merkle.tree_levels(leaves), len(leaves))
    assert entries[0]["data"]["merkle_root"] == root.hex()
    for row in rows:
        digest = hashlib.sha256((Path(cam.store_path) / row[0]).read_bytes())
        assert digest.hexdigest() == row[4]
    site.close()


def test_scans_are_incremental(tmp_path: Path, database_url: str) -> None:
    site = new_site(tmp_path / "site", database_url)
    cam = camera(site, "CAM-I")
    generate_footage(site, cam, window("2026-11-20T10:00", "2026-11-20T10:03"))
    first = scan(site, [cam], "op")
    assert (first.segments, first.directories) == (3, 1)
    size = site.ledger.size()
    again = scan(site, [cam], "op")
    assert (again.segments, again.directories, again.batches) == (0, 0, 0)
    assert site.ledger.size() == size  # nothing new, nothing written
    generate_footage(site, cam, window("2026-11-20T12:00", "2026-11-20T12:01"))
    later = scan(site, [cam], "op")
    assert (later.segments, later.directories, later.batches) == (1, 1, 1)
    site.close()


def test_a_file_still_being_written_waits(tmp_path: Path, database_url: str) -> None:
    site = new_site(tmp_path / "site", database_url)
    cam = camera(site, "CAM-S")
    generate_footage(site, cam, window("2026-11-20T10:00", "2026-11-20T10:02"))
    fresh = next(Path(cam.store_path).rglob("*.mp4"))
    os.utime(fresh)  # touched just now: the recorder may still be writing it
    report = scan(site, [cam], "op")
    assert report.segments == 1
    old = time.time() - 60
    os.utime(fresh, (old, old))
    assert scan(site, [cam], "op").segments == 1  # the directory was not marked as done
    site.close()


@given(
    st.text(st.characters(exclude_categories=["Cs"])),
    st.integers(0, 2**53 - 1),
    st.integers(0, 10**17),
    st.integers(0, 10**12),
)
def test_an_ingest_record_is_its_canonical_json(
    path: str, size: int, start: int, length: int
) -> None:
    """The ingest leaf written out by hand is byte for byte the RFC 8785 form."""
    from custody.canonical import canonical_bytes
    from custody.timewindow import utc_text
    from exporters.index import NewSegment

    seg = NewSegment(path, start, start + length, size, "ab" * 32)
    assert seg.record() == canonical_bytes(
        {
            "path": path,
            "start": utc_text(start),
            "end": utc_text(start + length),
            "size": size,
            "sha256": "ab" * 32,
        }
    )


def write_segments(site: Site, cam: Camera, start: str, count: int, name: str = "") -> list[str]:
    """`count` small ten-second files where the camera's recorder writes them (their
    bytes are never played here), an hour old; `name` is the last one's `{*}`."""
    store = camera_store(cam)
    begin = to_us(parse_time(start, ZONE))
    past = time.time() - 3600
    paths = []
    for i in range(count):
        path = store.segment_path(cam.store_camera, begin + i * 10_000_000, 10_000_000)
        if name and i == count - 1:
            path = path.with_name(f"{path.name.rsplit('-', 1)[0]}-{name}.mp4")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"{cam.id} {i}\n".encode())
        os.utime(path, (past, past))
        paths.append(str(path.relative_to(store.root)))
    return paths


def test_cameras_share_write_transactions_and_keep_one_entry_per_camera_and_hour(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cameras' segments are recorded together, WRITE_BATCH segments at a time (here 5),
    each camera still under its own entries, and each row with its hash."""
    monkeypatch.setattr("exporters.index.WRITE_BATCH", 5)
    site = new_site(tmp_path / "site", database_url)
    cams = [camera(site, f"CAM-{c}", store_kind="frigate", store_path="frigate") for c in "ABC"]
    written = {c.id: write_segments(site, c, "2026-11-20T10:58", 18) for c in cams}
    report = scan(site, cams, "op", settle_seconds=0)
    assert (report.cameras, report.segments, report.batches) == (3, 54, 6)
    entries = ingest_entries(site)
    assert [(e["subject"]["camera"], e["data"]["segments"]) for e in entries] == [
        (c.id, n) for c in cams for n in (12, 6)
    ]
    with site.db.read() as cur:
        for c in cams:
            rows = cur.execute(
                "SELECT path, sha256 FROM segment WHERE camera_id = ? ORDER BY start_us", [c.id]
            ).fetchall()
            assert [r[0] for r in rows] == written[c.id]
            for path, digest in rows:
                data = (Path(c.store_path) / path).read_bytes()
                assert hashlib.sha256(data).hexdigest() == digest
    assert scan(site, cams, "op", settle_seconds=0).segments == 0
    site.close()


def test_a_name_that_cannot_be_recorded_stops_the_scan_after_the_cameras_before_it(
    tmp_path: Path, database_url: str
) -> None:
    """A file name that is not UTF-8 cannot go in the ledger: the scan stops there, and
    the cameras hashed before it, waiting to share its transaction, are recorded."""
    site = new_site(tmp_path / "site", database_url)
    good = camera(site, "CAM-G", store_kind="frigate", store_path="frigate")
    nas = camera(
        site,
        "CAM-N",
        store_kind="template",
        store_path="nas",
        store_template="{camera}/{YYYY}{MM}{DD}-{hh}{mm}{ss}-{*}.mp4",
    )
    write_segments(site, good, "2026-11-20T10:00", 3)
    write_segments(site, nas, "2026-11-20T10:00", 3, name=os.fsdecode(b"caf\xe9"))
    with pytest.raises(InputError, match="not valid UTF-8"):
        scan(site, [good, nas], "op", settle_seconds=0)
    with site.db.read() as cur:
        indexed = cur.execute("SELECT camera_id, COUNT(*) FROM segment GROUP BY 1").fetchall()
    assert indexed == [("CAM-G", 3)]
    site.close()


def test_a_directory_swapped_for_a_link_after_it_was_listed_is_not_followed(
    tmp_path: Path, database_url: str
) -> None:
    """The store's directories are listed without links; one replaced by a link before
    its files are read (a race) has each of its files reported, none hashed."""
    from exporters.index import ScanReport, _new_segments

    site = new_site(tmp_path / "site", database_url)
    cam = camera(site, "CAM-R", store_kind="frigate", store_path="frigate")
    paths = write_segments(site, cam, "2026-11-20T10:00", 3)
    store = camera_store(cam)
    (directory,) = store.directories(cam.store_camera)
    outside = tmp_path / "elsewhere"
    directory.rename(outside)
    directory.symlink_to(outside, target_is_directory=True)
    report = ScanReport()
    found, _settled = _new_segments(store, directory, set(), report, 0)
    assert (found, report.not_regular) == ([], paths)
    site.close()
