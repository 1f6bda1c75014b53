"""What every footage store offers: where a recorder writes a segment, and how to read
back which segments exist, with their start times, from names alone."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class SegmentName:
    """What a segment's path says: its start (recorder clock, UTC µs) and, if the layout
    records it, its duration."""

    start_us: int
    duration_us: int | None


class FootageStore(Protocol):
    root: Path
    default_segment_seconds: int

    def segment_path(self, camera: str, start_us: int, duration_us: int) -> Path:
        """Where the recorder writes the segment starting at `start_us`."""
        ...

    def directories(self, camera: str) -> Iterator[Path]:
        """Every directory that may hold this camera's segments, oldest first."""
        ...

    def parse(self, directory: Path, name: str) -> SegmentName | None:
        """Read a file's name (and directory); None if it is not a segment."""
        ...


def subdirs(path: Path) -> list[Path]:
    """Real subdirectories (no symbolic links: a link could lead out of the store)."""
    try:
        with os.scandir(path) as entries:
            return sorted(Path(e.path) for e in entries if e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []
