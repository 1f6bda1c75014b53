"""Frigate's recordings: `<root>/recordings/<YYYY-MM-DD>/<HH>/<camera>/<MM>.<SS>.mp4`, UTC.

Frigate names a segment by its start to the second; its length (about 10 s) is in
Frigate's own database, or in the file, which the index probes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from custody.timewindow import from_us, to_us
from exporters.stores.base import SegmentName, real_dir, subdirs

_NAME = re.compile(r"(\d{2})\.(\d{2})\.mp4")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_HOUR = re.compile(r"\d{2}")


class FrigateStore:
    default_segment_seconds = 10

    def __init__(self, root: Path) -> None:
        self.root = root

    def segment_path(self, camera: str, start_us: int, duration_us: int) -> Path:
        moment = from_us(start_us)
        day, hour = f"{moment:%Y-%m-%d}", f"{moment:%H}"
        return self.root / "recordings" / day / hour / camera / f"{moment:%M.%S}.mp4"

    def directories(self, camera: str) -> Iterator[Path]:
        for day in subdirs(self.root / "recordings"):
            if _DAY.fullmatch(day.name):
                for hour in subdirs(day):
                    if _HOUR.fullmatch(hour.name) and real_dir(hour / camera):
                        yield hour / camera

    def parse(self, directory: Path, name: str) -> SegmentName | None:
        """The day and hour are the directories' names, minute and second the file's."""
        match = _NAME.fullmatch(name)
        if not match:
            return None
        day, hour = directory.parent.parent.name, directory.parent.name
        try:
            moment = datetime.strptime(f"{day} {hour}:{match[1]}:{match[2]}", "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return None
        return SegmentName(to_us(moment.replace(tzinfo=UTC)), None)
