"""scelle's own segment directory: `<root>/<camera>/<YYYY-MM-DD>/<HH>/<start>Z_<ms>.mp4`.

The name carries the start (UTC, recorder clock, to the millisecond) and the duration
in milliseconds, so indexing needs no probe of the file: a scan costs one read of
each byte, for its hash, and nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from custody.timewindow import from_us, to_us
from exporters.stores.base import SegmentName, subdirs

_NAME = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z_(\d{1,9})\.mp4")


class ScelleDirStore:
    default_segment_seconds = 60
    container = "mp4"

    def __init__(self, root: Path) -> None:
        self.root = root

    def segment_path(self, camera: str, start_us: int, duration_us: int) -> Path:
        moment = from_us(start_us)
        name = f"{moment:%Y%m%dT%H%M%S}.{moment.microsecond // 1000:03d}Z_{duration_us // 1000}.mp4"
        return self.root / camera / f"{moment:%Y-%m-%d}" / f"{moment:%H}" / name

    def directories(self, camera: str) -> Iterator[Path]:
        for day in subdirs(self.root / camera):
            yield from subdirs(day)

    def parse(self, directory: Path, name: str) -> SegmentName | None:
        match = _NAME.fullmatch(name)
        if not match:
            return None
        year, month, day, hour, minute, second, millis, duration = map(int, match.groups())
        # Fixed widths: what strptime("%Y%m%dT%H%M%S") read, without its cost per file.
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        return SegmentName(to_us(moment) + millis * 1000, duration * 1000)

    def vouches(self, rel: str, camera: str, start_us: int, end_us: int) -> bool:
        # Split, not PurePosixPath: the purge asks this of every row it deletes.
        parts = rel.split("/")
        if len(parts) < 2 or parts[0] != camera:
            return False
        name = self.parse(self.root, parts[-1])  # the name alone says the times
        return (
            name is not None
            and name.start_us == start_us
            and (name.duration_us is None or start_us + name.duration_us == end_us)
        )
