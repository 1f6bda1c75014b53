"""Frigate's recordings: `<root>/recordings/<YYYY-MM-DD>/<HH>/<camera>/<MM>.<SS>.mp4`, UTC.

Frigate names a segment by its start to the second; its exact start and end are in
Frigate's own database, `frigate.db`, when it is beside `recordings/` (table
`recordings`: `path`, `camera`, `start_time`, `end_time`, seconds since the epoch as
floats). Where the database has the segment, its times are taken to the microsecond,
so that segments that follow each other leave no false gap of a fraction of a second;
without it (or without the row), the name's second, and the length probed from the file.

The database is Frigate's, live: it is opened read-only (`mode=ro`), one short query
per hour directory, and closed at once, so that it is never held locked against
Frigate's own writes.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from custody.timewindow import from_us, to_us
from exporters.stores.base import SegmentName, real_dir, subdirs

_NAME = re.compile(r"(\d{2})\.(\d{2})\.mp4")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_HOUR = re.compile(r"\d{2}")
DATABASE = "frigate.db"
_SECOND = 1_000_000
_HOUR_US = 3600 * _SECOND


class FrigateStore:
    default_segment_seconds = 10
    container = "mp4"

    def __init__(self, root: Path) -> None:
        self.root = root
        self._timed: dict[Path, dict[str, tuple[int, int]]] = {}
        self._hours: dict[Path, int | None] = {}

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
        """The exact times are the database's, when it has this segment within the
        second its name says; else the name's."""
        by_name = self.parse_name(directory, name)
        if by_name is None:
            return None
        named = by_name.start_us
        timed = self._database_times(directory, named - named % _HOUR_US).get(name)
        if timed is not None and named <= timed[0] < named + _SECOND and timed[1] > timed[0]:
            return SegmentName(timed[0], timed[1] - timed[0])
        return by_name

    def parse_name(self, directory: Path, name: str) -> SegmentName | None:
        """The name alone: the day and hour are the directories' names, minute and
        second the file's (the purge's check of a row against its file, which holds
        whether the row was indexed before or after Frigate wrote its database row)."""
        match = _NAME.fullmatch(name)
        if not match:
            return None
        hour, minute, second = self._hour_us(directory), int(match[1]), int(match[2])
        if hour is None or minute > 59 or second > 59:
            return None
        return SegmentName(hour + (minute * 60 + second) * _SECOND, None)

    def _hour_us(self, directory: Path) -> int | None:
        """The start of the hour a camera directory's names count from (read once per
        directory, not once per file); None if its day or hour is not a date."""
        if directory not in self._hours:
            day, hour = directory.parent.parent.name, directory.parent.name
            try:
                moment = datetime.strptime(f"{day} {hour}", "%Y-%m-%d %H")
            except ValueError:
                self._hours[directory] = None
            else:
                self._hours[directory] = to_us(moment.replace(tzinfo=UTC))
        return self._hours[directory]

    def vouches(self, rel: str, camera: str, start_us: int, end_us: int) -> bool:
        """Named to the second; the row's start may be the database's, within it."""
        path = PurePosixPath(rel)
        if len(path.parts) < 2 or path.parts[0] != "recordings" or path.parts[-2] != camera:
            return False
        named = self.parse_name(self.root / path.parent, path.name)
        return named is not None and named.start_us <= start_us < named.start_us + _SECOND

    def _database_times(self, directory: Path, hour_us: int) -> dict[str, tuple[int, int]]:
        """File name -> (start, end) in µs, for the segments of one hour directory."""
        if directory not in self._timed:
            self._timed[directory] = _hour_from_database(
                self.root / DATABASE, directory.name, directory, hour_us
            )
        return self._timed[directory]


def _hour_from_database(
    database: Path, camera: str, directory: Path, hour_us: int
) -> dict[str, tuple[int, int]]:
    """One read-only query; nothing (names are read instead) if there is no readable
    database or no such table."""
    if not database.is_file():
        return {}
    where = directory.parts[-4:]  # recordings, <day>, <hour>, <camera>
    try:
        connection = sqlite3.connect(f"{database.absolute().as_uri()}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return {}
    try:
        rows = connection.execute(
            "SELECT path, start_time, end_time FROM recordings "
            "WHERE camera = ? AND start_time >= ? AND start_time < ?",
            [camera, hour_us / _SECOND - 1, (hour_us + _HOUR_US) / _SECOND + 1],
        ).fetchall()
    except sqlite3.Error:
        return {}
    finally:
        connection.close()
    times = {}
    for path, start, end in rows:  # Frigate stores its own absolute paths: match the tail
        numbers = all(isinstance(t, int | float) for t in (start, end))
        if numbers and isinstance(path, str):
            tail = _tail(path)
            if tuple(tail[:-1]) == where:
                times[tail[-1]] = (round(start * _SECOND), round(end * _SECOND))
    return times


def _tail(path: str) -> list[str]:
    """The last five parts of a path as PurePosixPath names them, without building one
    for each of an hour's rows unless the path has `//` or `/./` in its tail."""
    tail = path.split("/")[-5:]
    if "" in tail or "." in tail:
        return list(PurePosixPath(path).parts[-5:])
    return tail
