"""The footage index: what each store holds, hashed once at ingest, found by time.

`scan` lists only store directories whose modification time changed since the last
scan, hashes each new segment in one streaming read, and records ingest in the ledger
in batches: one entry per camera and hour, carrying the Merkle root of that hour's
segment records. At 770 cameras and one-minute segments (1.1 M segments a day) that
is ~18,000 entries a day, not a million; and one write transaction for many cameras'
new segments (up to WRITE_BATCH), not one per file or per camera.

`find` answers, for a camera and a window of reference time, which segments cover it,
which parts are missing and which segments cannot be read.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

from custody import merkle
from custody.canonical import MAX_INT
from custody.db import Cursor
from custody.entry import Record
from custody.errors import CorruptSegmentError, FootageUnavailableError, InputError
from custody.files import NotRegularFileError, open_beneath, open_directory_beneath, open_in
from custody.i18n import _
from custody.site import Site
from custody.timewindow import Window, from_us, local_text, utc_text
from exporters.ffmpeg import UnreadableVideoError, check_readable, probe
from exporters.gaps import WITHHELD, GapKind
from exporters.models import Camera
from exporters.stores import FootageStore, StoreKind, open_store
from exporters.stores.clock_change import Ambiguous, Basis, place

HOUR_US = 3_600_000_000
SETTLE_SECONDS = 5  # a file younger than this may still be being written
MAX_SEGMENT_US = 24 * HOUR_US


def camera_store(camera: Camera) -> FootageStore:
    return open_store(
        StoreKind(camera.store_kind),
        Path(camera.store_path),
        camera.store_template,
        camera.store_time,
        camera.timezone,
    )


def sha256_file(path: Path) -> tuple[str, int]:
    """Stream a file through SHA-256 in large chunks; never read a video whole. For our
    own files (an export being built); a store's files go through `open_store_file`."""
    with path.open("rb") as handle:
        return sha256_stream(handle)


def sha256_stream(handle: io.BufferedReader) -> tuple[str, int]:
    """SHA-256 and size of an open file, read from its start in large chunks."""
    handle.seek(0)
    digest = hashlib.file_digest(handle, "sha256")
    return digest.hexdigest(), handle.tell()


def open_store_file(root: Path, relative: str) -> io.BufferedReader:
    """A store's file opened for reading without following any symbolic link below the
    store root (a link planted in a recorder's store must never make scelle hash, copy
    or deliver a file from elsewhere); NotRegularFileError (an OSError) if it is not a regular
    file, ValueError if `relative` is not a plain relative path."""
    return os.fdopen(open_beneath(root, relative), "rb")


_string = json.JSONEncoder(ensure_ascii=False).encode


def _record(path: str, start_us: int, end_us: int, size: int, sha256: str) -> bytes:
    """`NewSegment.record`'s bytes, from the row's columns (no object per row)."""
    return (
        f'{{"end":{_string(utc_text(end_us))},"path":{_string(path)},'
        f'"sha256":{_string(sha256)},"size":{size},"start":{_string(utc_text(start_us))}}}'
    ).encode()


@dataclass(frozen=True)
class NewSegment:
    path: str  # relative to the store root
    start_us: int
    end_us: int
    size: int
    sha256: str

    def record(self) -> bytes:
        """The canonical bytes of `{path, start, end, size, sha256}`, the Merkle leaf of
        an ingest entry (keys in RFC 8785 order, strings as the stdlib escapes them, which
        is RFC 8785's: tests/test_scan.py compares it with canonical_bytes). Written out
        by hand because every purge rebuilds the roots of the batches it deletes from."""
        if not 0 <= self.size <= MAX_INT:
            raise InputError(
                _("segment {path}: size {size} out of range").format(path=self.path, size=self.size)
            )
        try:
            return _record(self.path, self.start_us, self.end_us, self.size, self.sha256)
        except UnicodeEncodeError as exc:  # a file name that is not UTF-8
            raise InputError(
                _(
                    "segment {path!r}: its file name is not valid UTF-8, so it cannot be "
                    "recorded in the ledger"
                ).format(path=self.path)
            ) from exc


@dataclass
class ScanReport:
    cameras: int = 0
    directories: int = 0
    segments: int = 0
    bytes: int = 0
    batches: int = 0
    unreadable: list[str] = field(default_factory=list)
    not_regular: list[str] = field(default_factory=list)  # links and the like: not indexed
    # Local-time names the clock changes leave without one instant (clock_change.py):
    placed: list[tuple[str, Basis]] = field(default_factory=list)  # placed by their timing
    unplaced: list[str] = field(default_factory=list)  # not indexed: nothing says when
    destroyed: list[str] = field(default_factory=list)  # at a time a purge destroyed


def _known_paths(cur: Cursor, camera_id: str, prefix: str) -> set[str]:
    cur.execute(
        "SELECT path FROM segment WHERE camera_id = ? AND path >= ? AND path < ?",
        [camera_id, prefix + "/", prefix + "0"],  # '0' follows '/' in ASCII
    )
    return {row[0] for row in cur.fetchall()}


def _listing(root: Path, folder: str, directory: Path) -> tuple[list[os.DirEntry[str]], int]:
    """A directory's entries other than subdirectories, sorted by name, and a descriptor
    of it reached with no link below the store root, which the caller closes: its files
    are stat'ed and opened through it. -1 if a link is in the way: its files are then
    listed by path and each refused when opened. FileNotFoundError if it is gone."""
    try:
        fd = open_directory_beneath(root, folder)
    except NotRegularFileError:
        fd = -1
    try:
        with os.scandir(fd if fd >= 0 else directory) as entries:
            # Links, FIFOs and devices are listed too, to be reported, never followed.
            files = [e for e in entries if not e.is_dir(follow_symlinks=False)]
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise
    files.sort(key=lambda e: e.name)
    return files, fd


def _new_segments(
    store: FootageStore,
    directory: Path,
    known: set[str],
    report: ScanReport,
    settle_seconds: float,
) -> tuple[list[NewSegment], bool]:
    """New segments in one directory; False if some file was too fresh to take yet
    (a link or another file that is not regular is reported at once, fresh or not).

    Per file: one open, its status, one read for the hash (the directory is reached
    once and its path below the root is worked out once)."""
    settled = True
    found: list[NewSegment] = []
    now = time.time()
    folder = str(directory.relative_to(store.root))
    prefix = "" if folder == "." else f"{folder}/"
    ambiguous: list[tuple[Ambiguous, NewSegment]] = []
    try:
        files, fd = _listing(store.root, prefix[:-1], directory)
    except FileNotFoundError:  # the directory went away with its last segment
        return found, False
    try:
        for entry in files:
            rel = prefix + entry.name
            name = store.parse(directory, entry.name)
            if name is None or rel in known:
                continue
            if name.unplaced:  # a local time the spring change skips: no instant is named so
                report.unplaced.append(rel)
                continue
            try:
                # What is timed, probed and hashed is the file this descriptor holds,
                # reached with no link: a link swapped in after the listing is refused,
                # not followed.
                if fd >= 0:
                    opened, status = open_in(fd, entry.name, rel)
                else:
                    opened, status = open_beneath(store.root, rel), None
                with os.fdopen(opened, "rb") as handle:
                    status = status or os.fstat(opened)
                    if now - status.st_mtime < settle_seconds:
                        settled = False
                        continue
                    duration, created = name.duration_us, None
                    if duration is None:
                        try:
                            facts = probe(handle)
                            duration, created = facts.duration_us, facts.created_us
                        except CorruptSegmentError:
                            # Indexed and hashed all the same; its nominal length is
                            # reported as a gap ("corrupt segment") whenever a window
                            # covers it.
                            report.unreadable.append(rel)
                            duration = store.default_segment_seconds * 1_000_000
                    digest, size = sha256_stream(handle)
            except FileNotFoundError:  # the recorder's own clean-up removed it meanwhile
                continue
            except NotRegularFileError:
                report.not_regular.append(rel)
                continue
            segment = NewSegment(rel, name.start_us, name.start_us + duration, size, digest)
            if name.others:
                timing = Ambiguous(rel, name, duration, created, status.st_mtime_ns // 1000)
                ambiguous.append((timing, segment))
            else:
                found.append(segment)
    finally:
        if fd >= 0:
            os.close(fd)
    placed = place([timing for timing, _segment in ambiguous])
    for timing, segment in ambiguous:
        if timing.rel not in placed:
            report.unplaced.append(timing.rel)
            continue
        start, basis = placed[timing.rel]
        report.placed.append((timing.rel, basis))
        found.append(replace(segment, start_us=start, end_us=start + timing.duration_us))
    return found, settled


def _not_yet_indexed(cur: Cursor, camera_id: str, new: list[NewSegment]) -> list[NewSegment]:
    """Drop what another scan indexed while we were hashing (read under the writer lock)."""
    taken: set[str] = set()
    for start in range(0, len(new), 500):
        paths = [s.path for s in new[start : start + 500]]
        cur.execute(
            f"SELECT path FROM segment WHERE camera_id = ? AND path IN "
            f"({', '.join('?' * len(paths))})",
            [camera_id, *paths],
        )
        taken |= {row[0] for row in cur.fetchall()}
    return [s for s in new if s.path not in taken]


def _has_periods(cur: Cursor) -> bool:
    """Whether the schema has destroyed periods (v14; before it, destroyed rows stayed in
    the index and kept their paths from being indexed again)."""
    if cur.is_sqlite:
        query = "SELECT COUNT(*) FROM sqlite_master WHERE name = 'destroyed_period'"
    else:
        query = "SELECT COUNT(*) FROM pg_class WHERE relname = 'destroyed_period'"
    return bool(cur.execute(query).fetchone()[0])


def _already_destroyed(
    cur: Cursor, camera_id: str, new: list[NewSegment], periods: bool
) -> tuple[list[NewSegment], list[str]]:
    """Split off files whose time a certified purge destroyed (its periods): a file
    copied back, restored or planted at a destroyed path is not indexed as live footage
    again (the rows that said so have left the index); their paths, to report."""
    if not new or not periods:
        return new, []
    cur.execute(
        "SELECT start_us, end_us FROM destroyed_period WHERE camera_id = ? AND start_us < ? "
        "AND end_us > ? ORDER BY start_us",
        [camera_id, max(s.end_us for s in new), min(s.start_us for s in new)],
    )
    spans: list[list[int]] = []
    for start, end in cur.fetchall():  # merged: sorted, disjoint
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], int(end))
        else:
            spans.append([int(start), int(end)])
    if not spans:
        return new, []
    starts = [lo for lo, _hi in spans]
    keep: list[NewSegment] = []
    gone: list[NewSegment] = []
    for seg in new:
        at = bisect.bisect_right(starts, seg.start_us) - 1
        (gone if at >= 0 and seg.start_us < spans[at][1] else keep).append(seg)
    return keep, [s.path for s in gone]


def _batch_records(camera: Camera, segments: Sequence[NewSegment]) -> list[Batch]:
    by_hour: dict[int, list[NewSegment]] = defaultdict(list)
    for seg in segments:
        by_hour[seg.start_us - seg.start_us % HOUR_US].append(seg)
    batches = []
    for hour, segs in sorted(by_hour.items()):
        segs.sort(key=lambda s: s.start_us)
        levels = merkle.tree_levels([merkle.leaf_hash(s.record()) for s in segs])
        root = merkle.levels_root(levels, len(segs)).hex()
        record = Record(
            "footage.ingest",
            {"camera": camera.id, "hour": utc_text(hour)},
            _("segments indexed and hashed at ingest"),
            data={
                "segments": len(segs),
                "bytes": sum(s.size for s in segs),
                "first": utc_text(segs[0].start_us),
                "last_end": utc_text(segs[-1].end_us),
                "merkle_root": root,
            },
        )
        batches.append((hour, segs, record))
    return batches


Batch = tuple[int, list[NewSegment], Record]  # hour, its segments, its ingest entry


def record_ingest(
    site: Site, cur: Cursor, camera: Camera, new: Sequence[NewSegment], actor: str
) -> int:
    """Index hashed segments inside the caller's write transaction: one ledger entry per
    camera and hour, carrying the Merkle root of its segment records (which the purge
    checks the rows against before deleting a file). Returns the number of batches."""
    return _record_batches(site, cur, camera, _batch_records(camera, new), actor)


def _record_batches(
    site: Site, cur: Cursor, camera: Camera, batches: Sequence[Batch], actor: str
) -> int:
    appended = site.ledger.append_in(cur, actor, [record for _hour, _segs, record in batches])
    for (hour, segs, record), entry in zip(batches, appended, strict=True):
        batch_id = cur.execute(
            "INSERT INTO ingest_batch (camera_id, hour_us, segments, bytes, merkle_root, "
            "ledger_seq) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            [
                camera.id,
                hour,
                len(segs),
                record.data["bytes"],
                record.data["merkle_root"],
                entry.seq,
            ],
        ).fetchone()[0]
        cur.executemany(
            "INSERT INTO segment (camera_id, path, start_us, end_us, size, sha256, batch_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(camera.id, s.path, s.start_us, s.end_us, s.size, s.sha256, batch_id) for s in segs],
        )
    return len(batches)


WRITE_BATCH = 5_000  # new segments hashed before they are recorded, in one transaction


@dataclass
class Hashed:
    """One camera's new segments, hashed, not yet recorded; and the directories read
    to the end (no file too fresh), whose modification times the record keeps."""

    camera: Camera
    segments: list[NewSegment]
    states: list[tuple[str, int]]
    batches: list[Batch] = field(default_factory=list)  # their records and Merkle roots


def hash_new(
    site: Site, camera: Camera, report: ScanReport, settle_seconds: float = SETTLE_SECONDS
) -> Hashed:
    """List and hash one camera's new segments (the store is read; nothing is written).
    Only the directories whose modification time changed since the last scan are listed;
    what the index knows of them is read in one transaction for the camera."""
    store = camera_store(camera)
    listed: list[tuple[Path, str, int]] = []
    for directory in store.directories(camera.store_camera):
        try:
            mtime = directory.stat().st_mtime_ns
        except FileNotFoundError:
            continue
        listed.append((directory, str(directory.relative_to(store.root)), mtime))
    with site.db.read() as cur:
        cur.execute("SELECT directory, mtime_ns FROM scan_state WHERE camera_id = ?", [camera.id])
        seen = dict(cur.fetchall())
        changed = [
            (directory, rel, mtime, _known_paths(cur, camera.id, rel))
            for directory, rel, mtime in listed
            if seen.get(rel) != mtime
        ]
    hashed = Hashed(camera, [], [])
    for directory, rel, mtime, known in changed:
        report.directories += 1
        found, settled = _new_segments(store, directory, known, report, settle_seconds)
        hashed.segments += found
        if settled:
            hashed.states.append((rel, mtime))
    # Records and roots made here, outside the writer lock (and a name that cannot be
    # recorded stops the scan here, before this camera joins other cameras' transaction).
    hashed.batches = _batch_records(camera, hashed.segments)
    return hashed


def record_hashed(site: Site, hashed: Sequence[Hashed], actor: str, report: ScanReport) -> None:
    """Record several cameras' hashed segments in one write transaction (one commit, not
    one per camera: at 770 cameras a scan every few minutes finds a few segments each),
    still one ledger entry per camera and hour."""
    if not hashed:
        return
    with site.db.write() as cur:
        done = []
        periods = _has_periods(cur)
        for one in hashed:
            new, destroyed = _already_destroyed(
                cur, one.camera.id, _not_yet_indexed(cur, one.camera.id, one.segments), periods
            )
            report.destroyed += destroyed
            made = one.batches if len(new) == len(one.segments) else None  # else re-made
            batches = _record_batches(
                site, cur, one.camera, made or _batch_records(one.camera, new), actor
            )
            for rel, mtime in one.states:
                cur.execute(
                    "DELETE FROM scan_state WHERE camera_id = ? AND directory = ?",
                    [one.camera.id, rel],
                )
                cur.execute(
                    "INSERT INTO scan_state (camera_id, directory, mtime_ns) VALUES (?, ?, ?)",
                    [one.camera.id, rel, mtime],
                )
            done.append((new, batches))
    for new, batches in done:  # counted once committed
        report.cameras += 1
        report.segments += len(new)
        report.bytes += sum(s.size for s in new)
        report.batches += batches


class Recorder:
    """Collects cameras' hashed segments and records them in one transaction per
    WRITE_BATCH segments. Leaving the `with` block records what is left, even on an
    error: the cameras hashed before it are recorded, as when each had its own
    transaction."""

    def __init__(self, site: Site, actor: str, report: ScanReport) -> None:
        self.site, self.actor, self.report = site, actor, report
        self.pending: list[Hashed] = []
        self.count = 0

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.flush()

    def add(self, hashed: Hashed) -> None:
        self.pending.append(hashed)
        self.count += len(hashed.segments)
        if self.count >= WRITE_BATCH:
            self.flush()

    def flush(self) -> None:
        pending, self.pending, self.count = self.pending, [], 0  # never recorded twice
        record_hashed(self.site, pending, self.actor, self.report)


def scan(
    site: Site,
    cameras: Iterable[Camera],
    actor: str,
    progress: Callable[[Camera], None] | None = None,
    settle_seconds: float = SETTLE_SECONDS,
) -> ScanReport:
    """Index new segments of every camera; files younger than `settle_seconds` wait."""
    report = ScanReport()
    with Recorder(site, actor, report) as recorder:
        for camera in cameras:
            recorder.add(hash_new(site, camera, report, settle_seconds))
            if progress:
                progress(camera)
    return report


@dataclass(frozen=True)
class SegmentRef:
    """An indexed segment; times in the recorder's clock.

    `root` and `path` name it in its store (read only through `open_store_file`);
    `file` is where its bytes are read to make a working copy: the store file, or, in
    an export, the master copy verified against the ingest hash."""

    path: str
    file: Path
    start_us: int
    end_us: int
    size: int
    sha256: str
    root: Path


@dataclass(frozen=True)
class Span:
    """A stretch of reference time covered by readable footage, without a break."""

    start_us: int
    end_us: int
    segments: tuple[SegmentRef, ...]


@dataclass(frozen=True)
class Unusable:
    """An indexed segment that gives no footage, and why. `reason` is English whatever the
    user's language: manifests record it, and a signed file does not change with the
    language (what users read is named from `kind`: exporters.gaps)."""

    segment: SegmentRef
    kind: GapKind
    reason: str


@dataclass(frozen=True)
class Gap:
    """A stretch of reference time with no usable footage, and why (the segment that
    should have covered it, for every kind but `no_footage`)."""

    start_us: int
    end_us: int
    kind: GapKind
    reason: str
    segment: str | None = None


@dataclass(frozen=True)
class Coverage:
    camera: Camera
    window: Window  # reference time
    offset_us: int  # recorder clock minus reference clock
    segments: tuple[SegmentRef, ...]  # every indexed segment overlapping the window
    spans: tuple[Span, ...]
    gaps: tuple[Gap, ...]
    unusable: tuple[Unusable, ...] = ()
    rejected: tuple[str, ...] = ()  # index rows no ingest entry vouches for: not footage

    @property
    def complete(self) -> bool:
        """No gap, and no indexed segment withheld (even one whose time other footage
        covers: an investigator must know that a recording was tampered with)."""
        return not self.gaps and not self.withheld and not self.rejected

    @property
    def withheld(self) -> tuple[Unusable, ...]:
        """Indexed segments that are no longer what was ingested (gap or not)."""
        return tuple(u for u in self.unusable if u.kind in WITHHELD)


def batch_rows_vouched(cur: Cursor, batch_id: int, camera_id: str) -> set[int]:
    """The ids of an ingest batch's segment rows that its ledger entry vouches for: the
    rows whose records rebuild the Merkle root the `footage.ingest` entry recorded.

    A row planted since (INSERT around scelle, with this batch's id) is left out: the
    entry's count of segments picks, among the batch's rows taken in the order they were
    inserted, the run that rebuilds the root. If none does, no row is vouched."""
    row = cur.execute(
        "SELECT b.camera_id, b.hour_us, e.body FROM ingest_batch b "
        "JOIN ledger_entry e ON e.seq = b.ledger_seq WHERE b.id = ?",
        [batch_id],
    ).fetchone()
    if row is None or row[0] != camera_id:
        return set()
    entry = json.loads(bytes(row[2]))
    data = entry.get("data") if isinstance(entry.get("data"), dict) else {}
    if entry.get("action") != "footage.ingest" or entry.get("subject") != {
        "camera": camera_id,
        "hour": utc_text(int(row[1])),
    }:
        return set()
    cur.execute(
        "SELECT id, path, start_us, end_us, size, sha256 FROM segment WHERE batch_id = ? "
        "ORDER BY id",
        [batch_id],
    )
    rows = cur.fetchall()
    count = data.get("segments")
    if not isinstance(count, int) or not 0 < count <= len(rows):
        return set()

    def root(chosen: Sequence[tuple[int, str, int, int, int, str]]) -> str:
        ordered = sorted(chosen, key=lambda r: (r[2], r[0]))  # start, then id
        if any(not 0 <= r[4] <= MAX_INT for r in ordered):
            return ""  # a size no scan recorded: it rebuilds no root
        try:
            leaves = [
                merkle.leaf_hash(_record(path, start, end, size, sha))
                for _id, path, start, end, size, sha in ordered
            ]
        except UnicodeEncodeError:  # nor does a name that is not UTF-8
            return ""
        return merkle.levels_root(merkle.tree_levels(leaves), len(ordered)).hex()

    for first in range(len(rows) - count + 1):
        run = rows[first : first + count]
        if root(run) == data.get("merkle_root"):
            return {int(r[0]) for r in run}
    return set()


def _indexed(
    site: Site, camera: Camera, start: int, end: int
) -> tuple[list[SegmentRef], list[str]]:
    """The indexed segments overlapping [start, end) (recorder clock) that their ingest
    entry vouches for, and the paths of rows it does not (planted around scelle)."""
    root = Path(camera.store_path)
    with site.db.read() as cur:
        cur.execute(
            "SELECT id, batch_id, path, start_us, end_us, size, sha256 FROM segment "
            "WHERE camera_id = ? AND start_us < ? AND start_us > ? AND end_us > ? "
            "AND destroyed_at IS NULL ORDER BY start_us",
            [camera.id, end, start - MAX_SEGMENT_US, start],
        )
        rows = cur.fetchall()
        vouched: dict[int, set[int]] = {}
        for _id, batch, *_rest in rows:
            if batch not in vouched:
                vouched[batch] = batch_rows_vouched(cur, batch, camera.id)
    found, rejected = [], []
    for row_id, batch, path, s, e, size, digest in rows:
        if row_id in vouched[batch]:
            found.append(SegmentRef(path, root / path, s, e, size, digest, root))
        else:
            rejected.append(path)
    return found, rejected


def find(site: Site, camera: Camera, window: Window, *, check: bool = True) -> Coverage:
    """Segments, spans and gaps of `window` (reference time) for one camera.

    With `check`, every segment is opened in its store without following links, hashed
    and compared with its ingest hash, and read through (no decoding): a segment that is
    not a regular file, altered, corrupt, truncated or vanished is unusable. Without it,
    nothing is opened (an extraction checks the master copies it makes instead).
    """
    offset = camera.clock_offset_ms * 1000
    rec = Window(window.start + offset, window.end + offset)
    segments, rejected = _indexed(site, camera, rec.start, rec.end)
    usable: list[SegmentRef] = []
    unusable: list[Unusable] = []
    for seg in segments:
        bad = check_segment(seg) if check else None
        if bad:
            unusable.append(bad)
        else:
            usable.append(seg)
    coverage = coverage_of(camera, window, segments, usable, unusable)
    return replace(coverage, rejected=tuple(rejected)) if rejected else coverage


def coverage_of(
    camera: Camera,
    window: Window,
    segments: Sequence[SegmentRef],
    usable: Sequence[SegmentRef],
    unusable: Sequence[Unusable],
) -> Coverage:
    """Spans are the union of the usable segments; gaps are the rest of the window,
    attributed to the unusable segments they overlap (so a corrupt or altered segment
    never hides good footage another segment holds)."""
    offset = camera.clock_offset_ms * 1000
    rec = Window(window.start + offset, window.end + offset)
    spans: list[Span] = []
    members: list[SegmentRef] = []
    span_start = span_end = rec.start
    for seg in sorted(usable, key=lambda s: s.start_us):
        start, end = max(seg.start_us, rec.start), min(seg.end_us, rec.end)
        if end <= start:
            continue
        if members and start <= span_end:
            if end > span_end:
                members.append(seg)
                span_end = end
            continue
        if members:
            spans.append(Span(span_start - offset, span_end - offset, tuple(members)))
        members, span_start, span_end = [seg], start, end
    if members:
        spans.append(Span(span_start - offset, span_end - offset, tuple(members)))
    bad = sorted(unusable, key=lambda u: u.segment.start_us)
    gaps: list[Gap] = []
    cursor = rec.start
    covered = [(s.start_us + offset, s.end_us + offset) for s in spans] + [(rec.end, rec.end)]
    for covered_from, covered_to in covered:  # the holes lie between covered stretches
        if covered_from > cursor:
            gaps += _explain_hole(cursor, covered_from, bad, offset)
        cursor = max(cursor, covered_to)
    return Coverage(camera, window, offset, tuple(segments), tuple(spans), _merge(gaps), tuple(bad))


def _explain_hole(start: int, end: int, unusable: list[Unusable], offset: int) -> list[Gap]:
    """Split a stretch with no usable footage by the unusable segments inside it."""
    gaps, pos = [], start
    for bad in unusable:
        seg = bad.segment
        s, e = max(seg.start_us, pos), min(seg.end_us, end)
        if e <= s:
            continue
        if s > pos:
            gaps.append(Gap(pos - offset, s - offset, GapKind.NO_FOOTAGE, NO_FOOTAGE))
        gaps.append(Gap(s - offset, e - offset, bad.kind, bad.reason, seg.path))
        pos = e
    if pos < end:
        gaps.append(Gap(pos - offset, end - offset, GapKind.NO_FOOTAGE, NO_FOOTAGE))
    return gaps


NO_FOOTAGE = "no footage recorded"


def _merge(gaps: list[Gap]) -> tuple[Gap, ...]:
    """Join adjacent gaps that say the same thing (kind, reason, segment)."""
    merged: list[Gap] = []
    for gap in gaps:
        joined = replace(gap, start_us=merged[-1].start_us) if merged else None
        if (
            joined
            and merged[-1].end_us == gap.start_us
            and joined == replace(merged[-1], end_us=gap.end_us)
        ):
            merged[-1] = joined
        else:
            merged.append(gap)
    return tuple(merged)


def unreachable(seg: SegmentRef, exc: OSError | ValueError) -> Unusable:
    """The gap kind of a segment its store will not give: a link or another non-regular
    file (withheld), or a file gone or unreadable."""
    if isinstance(exc, NotRegularFileError | ValueError):
        what = exc.strerror if isinstance(exc, NotRegularFileError) else "not a plain path"
        return Unusable(
            seg,
            GapKind.NOT_REGULAR,
            f"segment {seg.path} is not a regular file in the store ({what}): withheld",
        )
    if isinstance(exc, FileNotFoundError):
        return Unusable(seg, GapKind.MISSING, f"segment {seg.path} missing from the store")
    return Unusable(
        seg,
        GapKind.MISSING,
        f"segment {seg.path} cannot be read from the store ({exc.strerror or exc})",
    )


def altered(seg: SegmentRef, digest: str, size: int) -> Unusable | None:
    """None if (`digest`, `size`) are the segment's ingest hash and size."""
    if (digest, size) == (seg.sha256, seg.size):
        return None
    return Unusable(
        seg,
        GapKind.ALTERED,
        f"segment {seg.path} altered since ingest (sha256 {seg.sha256[:16]}… and "
        f"{seg.size} bytes at ingest, now {digest[:16]}… and {size} bytes): withheld",
    )


def corrupt(seg: SegmentRef, exc: CorruptSegmentError) -> Unusable:
    why = exc.english if isinstance(exc, UnreadableVideoError) else exc.message
    return Unusable(seg, GapKind.CORRUPT, f"corrupt segment {seg.path}: {why}")


def check_segment(seg: SegmentRef) -> Unusable | None:
    """Is this indexed segment, in its store, still a regular file reached with no link,
    bit for bit what was ingested, and readable video? None if so."""
    try:
        handle = open_store_file(seg.root, seg.path)
    except (OSError, ValueError) as exc:
        return unreachable(seg, exc)
    with handle:
        changed = altered(seg, *sha256_stream(handle))
        if changed:
            return changed
        try:
            check_readable(handle)
        except CorruptSegmentError as exc:
            return corrupt(seg, exc)
    return None


def require_footage(coverage: Coverage, now_us: int) -> None:
    """Refuse a window with no footage at all, saying whether retention explains it."""
    if coverage.segments:
        return
    camera, window = coverage.camera, coverage.window
    when = {
        "camera": camera.id,
        "start": local_text(window.start, camera.timezone),
        "end": local_text(window.end, camera.timezone),
    }
    kept_from = now_us - camera.retention_days * 24 * HOUR_US
    if window.end <= kept_from:
        raise FootageUnavailableError(
            _(
                "camera {camera}: {start} to {end} is past its {days}-day retention "
                "and no hold kept it: the footage is no longer kept"
            ).format(days=camera.retention_days, **when)
        )
    if window.start >= now_us:
        raise FootageUnavailableError(
            _("camera {camera}: {start} to {end} is in the future").format(**when)
        )
    raise FootageUnavailableError(
        _("camera {camera}: no footage recorded from {start} to {end}").format(**when)
    )


def footage_summary(site: Site, camera: Camera) -> dict[str, Any]:
    """What the index holds of a camera (recorder clock)."""
    with site.db.read() as cur:
        count, size, first, last = cur.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0), MIN(start_us), MAX(end_us) FROM segment "
            "WHERE camera_id = ? AND destroyed_at IS NULL",
            [camera.id],
        ).fetchone()
    return {
        "segments": count,
        "bytes": size,
        "first_utc": utc_text(first) if first is not None else None,
        "last_utc": utc_text(last) if last is not None else None,
    }


def coverage_json(coverage: Coverage) -> dict[str, Any]:
    """The coverage as auditors and manifests read it: local and UTC times, exact gaps."""
    zone = coverage.camera.timezone

    def interval(start: int, end: int) -> dict[str, str]:
        return {
            "from": local_text(start, zone),
            "to": local_text(end, zone),
            "from_utc": utc_text(start),
            "to_utc": utc_text(end),
        }

    state = {u.segment.path: str(u.kind) for u in coverage.unusable}
    store = camera_store(coverage.camera)

    def named(seg: SegmentRef) -> dict[str, Any]:
        """For a file whose local-time name the autumn change repeats: what it says,
        and that the scan placed it by its own timing."""
        where = PurePosixPath(seg.path)
        name = store.parse(store.root / where.parent, where.name)
        if name is None or not name.others:
            return {}
        wall = from_us(seg.start_us).astimezone(ZoneInfo(zone)).replace(tzinfo=None)
        return {"name_time_repeated": wall.isoformat(timespec="milliseconds")}

    out: dict[str, Any] = {
        "camera": coverage.camera.id,
        "window": interval(coverage.window.start, coverage.window.end),
        "clock_offset_ms": coverage.camera.clock_offset_ms,
        "segments": [
            {
                "path": s.path,
                "recorder_start_utc": utc_text(s.start_us),
                "recorder_end_utc": utc_text(s.end_us),
                "size": s.size,
                "sha256": s.sha256,
                "state": state.get(s.path, "ok"),
            }
            | named(s)
            for s in coverage.segments
        ],
        "spans": [
            interval(s.start_us, s.end_us) | {"segments": [x.path for x in s.segments]}
            for s in coverage.spans
        ],
        "gaps": [
            interval(g.start_us, g.end_us)
            | {"kind": str(g.kind), "reason": g.reason, "segment": g.segment}
            for g in coverage.gaps
        ],
        "complete": coverage.complete,
    }
    if coverage.rejected:  # rows planted in the index: named, never taken for footage
        out["index_rows_rejected"] = list(coverage.rejected)
    return out
