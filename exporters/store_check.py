"""`scelle camera check`: what a camera's store holds as its layout reads it, before
anyone relies on it (a wrong template finds nothing, or the wrong files).

Every name is read (count, first, last); the files of the latest hours are also opened
and probed, as the scan would, for their lengths and the gaps between them. Nothing is
hashed or indexed: a check of a month of footage reads headers, not terabytes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from custody.errors import CorruptSegmentError
from custody.files import NotRegularFileError
from exporters.ffmpeg import probe
from exporters.index import camera_store, open_store_file
from exporters.models import Camera
from exporters.stores.clock_change import Ambiguous, Basis, place

EXAMPLES = 5  # files named that the layout does not read, shown to fix a template
SHORT_BREAK_US = 1_000_000  # breaks shorter than this are counted, not listed


# A segment by its name: (start, path, directory, file name, whether the start is one of two)
_Name = tuple[int, str, Path, str, bool]


@dataclass(frozen=True)
class Found:
    path: str
    start_us: int
    end_us: int


@dataclass
class StoreCheck:
    """What the store holds for one camera (recorder clock)."""

    directories: int = 0
    segments: int = 0
    bytes: int = 0
    first: str | None = None  # path of the earliest segment by its name
    first_us: int | None = None
    last: str | None = None
    last_us: int | None = None  # the latest segment's start by its name
    read_from_us: int | None = None  # segments starting from here were probed
    read: list[Found] = field(default_factory=list)  # probed, in time order
    gaps: list[tuple[int, int]] = field(default_factory=list)  # at least SHORT_BREAK_US
    short_breaks: int = 0
    short_break_us: int = 0
    unreadable: list[str] = field(default_factory=list)
    placed: list[tuple[str, Basis]] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)
    others: int = 0  # files in the store's folders that are not segments by the layout
    other_examples: list[str] = field(default_factory=list)


def check_store(camera: Camera, hours: int) -> StoreCheck:
    """Read every name of the camera's store; probe the segments of the latest `hours`."""
    store = camera_store(camera)
    result = StoreCheck()
    names: list[_Name] = []
    for directory in store.directories(camera.store_camera):
        result.directories += 1
        try:
            with os.scandir(directory) as entries:
                files = sorted(
                    (e for e in entries if e.is_file(follow_symlinks=False)), key=lambda e: e.name
                )
        except OSError:
            continue
        for entry in files:
            rel = str(Path(entry.path).relative_to(store.root))
            name = store.parse(directory, entry.name)
            if name is None:
                result.others += 1
                if len(result.other_examples) < EXAMPLES:
                    result.other_examples.append(rel)
                continue
            if name.unplaced:
                result.unplaced.append(rel)
                continue
            try:
                size = entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:  # the recorder's clean-up removed it meanwhile
                continue
            result.segments += 1
            result.bytes += size
            names.append((name.start_us, rel, directory, entry.name, bool(name.others)))
    if not names:
        return result
    names.sort()
    result.read_from_us = names[-1][0] - hours * 3_600_000_000
    # The repeated hour's files are probed wherever they lie: their names alone do not
    # say when they were recorded, so neither would a first or last read from names.
    probed = _probe(camera, [n for n in names if n[0] >= result.read_from_us or n[4]], result)
    starts = sorted(
        (probed[rel].start_us if rel in probed else start, rel)
        for start, rel, _directory, _file, others in names
        if rel in probed or not others
    )
    if starts:
        (result.first_us, result.first), (result.last_us, result.last) = starts[0], starts[-1]
    result.read = sorted(
        (f for f in probed.values() if f.start_us >= result.read_from_us), key=lambda f: f.start_us
    )
    reached = result.read[0].end_us if result.read else 0
    for segment in result.read[1:]:
        if segment.start_us > reached:
            if segment.start_us - reached >= SHORT_BREAK_US:
                result.gaps.append((reached, segment.start_us))
            else:
                result.short_breaks += 1
                result.short_break_us += segment.start_us - reached
        reached = max(reached, segment.end_us)
    return result


def _probe(camera: Camera, names: list[_Name], result: StoreCheck) -> dict[str, Found]:
    """Lengths of these segments, placed as the scan places them: path -> times."""
    store = camera_store(camera)
    found: dict[str, Found] = {}
    ambiguous: list[tuple[Ambiguous, Found]] = []
    for _start, rel, directory, file_name, _others in names:
        name = store.parse(directory, file_name)
        if name is None:  # renamed or gone since the listing
            continue
        try:
            with open_store_file(store.root, rel) as handle:
                duration, created = name.duration_us, None
                if duration is None:
                    facts = probe(handle)
                    duration, created = facts.duration_us, facts.created_us
                mtime = os.fstat(handle.fileno()).st_mtime_ns // 1000
        except CorruptSegmentError:
            result.unreadable.append(rel)
            continue
        except (FileNotFoundError, NotRegularFileError):
            continue
        segment = Found(rel, name.start_us, name.start_us + duration)
        if name.others:
            ambiguous.append((Ambiguous(rel, name, duration, created, mtime), segment))
        else:
            found[rel] = segment
    placed = place([timing for timing, _segment in ambiguous])
    for timing, segment in ambiguous:
        if timing.rel in placed:
            start, basis = placed[timing.rel]
            result.placed.append((timing.rel, basis))
            found[timing.rel] = replace(segment, start_us=start, end_us=start + timing.duration_us)
        else:
            result.unplaced.append(timing.rel)
    return found
