"""What every footage store offers: where a recorder writes a segment, and how to read
back which segments exist, with their start times, from names alone."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class SegmentName:
    """What a segment's path says: its start (recorder clock, UTC µs) and, if the layout
    records it, its duration. A local-time name in the hour the autumn change repeats
    says two instants (`start_us` and `others`); one the spring change skips says none
    (`unplaced`): the scan places such files from their own timing, or reports them."""

    start_us: int
    duration_us: int | None
    others: tuple[int, ...] = ()
    unplaced: bool = False


class FootageStore(Protocol):
    root: Path
    default_segment_seconds: int
    container: str  # ffmpeg's muxer for the recorder's files: mp4, matroska, mpegts

    def segment_path(self, camera: str, start_us: int, duration_us: int) -> Path:
        """Where the recorder writes the segment starting at `start_us`."""
        ...

    def directories(self, camera: str) -> Iterator[Path]:
        """Every directory that may hold this camera's segments, oldest first."""
        ...

    def parse(self, directory: Path, name: str) -> SegmentName | None:
        """Read a file's name (and directory); None if it is not a segment."""
        ...

    def vouches(self, rel: str, camera: str, start_us: int, end_us: int) -> bool:
        """An index row's path, camera and times are what the recorder's file name says
        (the purge's check before it deletes the file)."""
        ...


def real_dir(path: Path) -> bool:
    """True if `path` itself is a directory, not a symbolic link to one (`is_dir()`
    follows links: a camera directory linked elsewhere would lead out of the store)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def subdirs(path: Path) -> list[Path]:
    """Real subdirectories of the real directory `path` (no symbolic links, neither
    `path` itself nor below it: a link could lead out of the store). Reads go through
    `custody.files.open_beneath` all the same, which refuses a link swapped in later."""
    if not real_dir(path):
        return []
    try:
        with os.scandir(path) as entries:
            return sorted(Path(e.path) for e in entries if e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []
