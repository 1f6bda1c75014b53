"""Any recorder's own layout, described by a path template (`StoreKind.TEMPLATE`).

A template is the segment's path below the store root, `/` between folders, with fields
in braces; everything else is literal text:

    {camera}   the camera's name in the store      {YYYY} {YY}  year (YY: 2000 + YY)
    {MM} {DD}  month, day                          {hh} {mm} {ss}  hour, minute, second
    {fff}      milliseconds                        {epoch}  seconds since 1970 (UTC)
    {*}        any text within one name (an event number, a channel suffix)

Examples: Shinobi `{camera}/{YYYY}-{MM}-{DD}T{hh}-{mm}-{ss}.mp4`, a NAS
`{camera}/{YYYY}{MM}{DD}/{hh}{mm}{ss}.mkv`, ZoneMinder's deep storage
`{camera}/{YY}/{MM}/{DD}/{hh}/{mm}/{ss}/{*}-video.mp4`. Names give the start; the length
is probed from the file. Names are UTC or the camera's local time (`local`): a local
name in the hour the autumn change repeats could be either of two instants; `parse`
returns both, and the scan places the file from its own timing
(exporters/stores/clock_change.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path, PurePosixPath
from zoneinfo import ZoneInfo

from custody.errors import InputError
from custody.i18n import _
from custody.timewindow import from_us, to_us
from exporters.stores.base import SegmentName, real_dir, subdirs


class NameClock(StrEnum):
    UTC = "utc"
    LOCAL = "local"  # the camera's time zone


_FIELDS = {  # field -> what it matches
    "YYYY": r"\d{4}",
    "YY": r"\d{2}",
    "MM": r"\d{2}",
    "DD": r"\d{2}",
    "hh": r"\d{2}",
    "mm": r"\d{2}",
    "ss": r"\d{2}",
    "fff": r"\d{3}",
    "epoch": r"\d{9,11}",
    "camera": r"[^/]+?",
    "*": r"[^/]*?",
}
_FIELD = re.compile(r"\{([^{}]*)\}")
_CONTAINERS = {".mp4": "mp4", ".mov": "mp4", ".mkv": "matroska", ".ts": "mpegts"}
EXAMPLES = {
    "Shinobi": "{camera}/{YYYY}-{MM}-{DD}T{hh}-{mm}-{ss}.mp4",
    "NAS": "{camera}/{YYYY}{MM}{DD}/{hh}{mm}{ss}.mkv",
    "ZoneMinder": "{camera}/{YY}/{MM}/{DD}/{hh}/{mm}/{ss}/{*}-video.mp4",
}


@dataclass(frozen=True)
class Template:
    """A checked template: its text, and one pattern per path level."""

    text: str
    levels: tuple[str, ...]

    @property
    def extension(self) -> str:
        return PurePosixPath(self.levels[-1]).suffix.lower()


def check_template(text: str) -> Template:
    """The template, or InputError saying what is wrong with it."""
    levels = tuple(text.split("/"))
    if not text or text.startswith("/") or any(p in ("", ".", "..") for p in levels):
        raise InputError(
            _(
                "store template {template!r}: a relative path, with no empty, '.' or '..' part"
            ).format(template=text)
        )
    fields = _FIELD.findall(text)
    unknown = sorted({f for f in fields if f not in _FIELDS})
    if unknown or _FIELD.sub("", text).count("{") or _FIELD.sub("", text).count("}"):
        raise InputError(
            _("store template {template!r}: unknown field {field}; the fields are {fields}").format(
                template=text,
                field=", ".join(f"{{{f}}}" for f in unknown) or "{",
                fields=" ".join(f"{{{f}}}" for f in _FIELDS),
            )
        )
    dated = "epoch" in fields or (
        ("YYYY" in fields or "YY" in fields) and all(f in fields for f in ("MM", "DD", "hh", "mm"))
    )
    if not dated:
        raise InputError(
            _(
                "store template {template!r}: it must give the start to the minute at least "
                "({{YYYY}} {{MM}} {{DD}} {{hh}} {{mm}}, or {{epoch}})"
            ).format(template=text)
        )
    return Template(text, levels)


def _pattern(level: str, camera: str | None, seen: set[str]) -> str:
    """A level's regular expression; a field seen before must repeat its value."""
    out, at = [], 0
    for match in _FIELD.finditer(level):
        out.append(re.escape(level[at : match.start()]))
        field = match[1]
        group = "any" if field == "*" else field
        if field == "*":
            out.append(_FIELDS[field])
        elif field == "camera" and camera is not None:
            out.append(re.escape(camera))
        elif group in seen:
            out.append(f"(?P={group})")
        else:
            seen.add(group)
            out.append(f"(?P<{group}>{_FIELDS[field]})")
        at = match.end()
    out.append(re.escape(level[at:]))
    return "".join(out)


class TemplateStore:
    default_segment_seconds = 60

    def __init__(self, root: Path, template: str, clock: NameClock, zone: str) -> None:
        self.root = root
        self.template = check_template(template)
        self.clock = clock
        self.zone = ZoneInfo(zone)
        self.container = _CONTAINERS.get(self.template.extension, "mp4")
        seen: set[str] = set()
        self._path = re.compile("/".join(_pattern(p, None, seen) for p in self.template.levels))
        self._folders: dict[Path, str | None] = {}  # directory -> its path below root + "/x"

    def segment_path(self, camera: str, start_us: int, duration_us: int) -> Path:
        moment = from_us(start_us)
        if self.clock is NameClock.LOCAL:
            moment = moment.astimezone(self.zone)
        values = {
            "camera": camera,
            "YYYY": f"{moment:%Y}",
            "YY": f"{moment:%y}",
            "MM": f"{moment:%m}",
            "DD": f"{moment:%d}",
            "hh": f"{moment:%H}",
            "mm": f"{moment:%M}",
            "ss": f"{moment:%S}",
            "fff": f"{moment.microsecond // 1000:03d}",
            "epoch": str(start_us // 1_000_000),
            "*": str(start_us // 1_000_000),  # as an event number would: unique, rising
        }
        return self.root / _FIELD.sub(lambda m: values[m[1]], self.template.text)

    def directories(self, camera: str) -> Iterator[Path]:
        """Walk the folder levels, keeping the names each level's pattern allows."""
        seen: set[str] = set()
        patterns = [re.compile(_pattern(p, camera, seen)) for p in self.template.levels[:-1]]
        level = [self.root] if real_dir(self.root) else []
        for pattern in patterns:
            level = [d for parent in level for d in subdirs(parent) if pattern.fullmatch(d.name)]
        yield from level

    def parse(self, directory: Path, name: str) -> SegmentName | None:
        if directory not in self._folders:  # once per directory, not once per file
            try:
                self._folders[directory] = (directory / "x").relative_to(self.root).as_posix()
            except ValueError:
                self._folders[directory] = None
        folder = self._folders[directory]
        if folder is None:
            return None
        match = self._path.fullmatch(f"{folder[:-1]}{name}")
        if match is None:
            return None
        return self._name(match.groupdict())

    def vouches(self, rel: str, camera: str, start_us: int, end_us: int) -> bool:
        """The row's camera and start are what the file's name says (either of the two
        instants, for a name in the hour the autumn change repeats)."""
        match = self._path.fullmatch(rel)
        if match is None or match.groupdict().get("camera", camera) != camera:
            return False
        named = self._name(match.groupdict())
        return named is not None and start_us in (named.start_us, *named.others)

    def _name(self, fields: dict[str, str | None]) -> SegmentName | None:
        if fields.get("epoch"):
            base = int(fields["epoch"] or 0) * 1_000_000
            return SegmentName(base + int(fields.get("fff") or 0) * 1000, None)
        year = int(fields.get("YYYY") or 0) or 2000 + int(fields.get("YY") or 0)
        try:
            wall = datetime(
                year,
                int(fields["MM"] or 0),
                int(fields["DD"] or 0),
                int(fields["hh"] or 0),
                int(fields["mm"] or 0),
                int(fields.get("ss") or 0),
            ) + timedelta(milliseconds=int(fields.get("fff") or 0))
        except ValueError:
            return None
        if self.clock is NameClock.UTC:
            return SegmentName(to_us(wall.replace(tzinfo=UTC)), None)
        early, late = (to_us(wall.replace(tzinfo=self.zone, fold=f)) for f in (0, 1))
        if from_us(early).astimezone(self.zone).replace(tzinfo=None) != wall:
            # A wall time the spring change skips: no instant has this name.
            return SegmentName(early, None, unplaced=True)
        if early != late:  # the hour the autumn change repeats
            return SegmentName(early, None, others=(late,))
        return SegmentName(early, None)
