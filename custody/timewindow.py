"""Time windows as requisitions state them: local wall-clock time, made unambiguous.

Inside scelle every instant is UTC (integer microseconds since the epoch, or an aware
datetime). At the edge, officers write local times. Two traps: the autumn night has two
02:30s (a time there needs an explicit UTC offset), and the spring night has none (such
a time is refused). A peer VMS documents exports that silently gain an hour across the
change; we refuse to guess instead.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from custody.errors import InputError, MalformedTimeError
from custody.i18n import _, current

_OFFSET = r"(?:\s*(?P<offset>Z|[+-]\d{2}:\d{2}))?"
_ISO = re.compile(  # ASCII: \d would also take `٠١` (Arabic-Indic) in an offset
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})[T ]"
    r"(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,6}))?)?"
    + _OFFSET,
    re.ASCII,
)
_FRENCH = re.compile(  # 29/11/2026 14:00, 29/11/2026 14h00, 29/11/2026 à 14h, 29/11/2026 14:00:30
    r"(?P<day>\d{1,2})/(?P<month>\d{1,2})/(?P<year>\d{4})\s+(?:à\s+)?"
    r"(?P<hour>\d{1,2})(?:(?::(?P<minute>\d{2})(?::(?P<second>\d{2}))?)|[hH](?P<hminute>\d{2})?)"
    + _OFFSET,
    re.ASCII,
)
_CLOCK = re.compile(  # the end of a window on the start's day: 14:10, 14h10, 14h
    r"(?P<hour>\d{1,2})(?:(?::(?P<minute>\d{2})(?::(?P<second>\d{2}))?)|[hH](?P<hminute>\d{2})?)"
    + _OFFSET,
    re.ASCII,
)
EXAMPLE = "29/11/2026 14:00"
FORMS = "29/11/2026 14:00, 29/11/2026 14h00, 29/11/2026 14h, 2026-11-29T14:00"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR_US = 3_600_000_000


def to_us(moment: datetime) -> int:
    """Aware datetime to integer microseconds since the epoch (exact, no float)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def now_us() -> int:
    return to_us(datetime.now(UTC))


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def utc_text(us: int) -> str:
    """`2026-10-25T00:30:00Z` (microseconds shown only when not zero): for people and
    JSON output; what is stored and compared is `stored_utc`. Every segment record of a
    scan or a purge writes two, so the hour's text is formatted once and reused."""
    hour, rest = divmod(us, _HOUR_US)
    second, micro = divmod(rest, 1_000_000)
    text = f"{_hour_text(hour)}{second // 60:02d}:{second % 60:02d}"
    if micro:
        text += f".{micro:06d}"
    return text + "Z"


@functools.lru_cache(maxsize=4096)
def _hour_text(hour: int) -> str:
    return from_us(hour * _HOUR_US).strftime("%Y-%m-%dT%H:")


def stored_utc(us: int) -> str:
    """`2026-10-25T00:30:00.000000Z`: the one form an instant takes in the database and in
    ledger entries' own times. Fixed width, so text order is time order (with
    `utc_text`'s shorter form `"…:20Z"` sorted after `"…:20.500000Z"`, which is later)."""
    return from_us(us).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stored_now() -> str:
    return stored_utc(now_us())


def local_text(us: int, zone: str) -> str:
    """Local wall time with its UTC offset, never ambiguous: `2026-10-25T02:30:00+01:00`."""
    moment = from_us(us).astimezone(ZoneInfo(zone))
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")


def _malformed(text: str) -> InputError:
    return MalformedTimeError(
        _(
            "malformed time {text!r}: write it as {forms} (a UTC offset such as +01:00 may follow)"
        ).format(text=text, forms=FORMS)
    )


def _fields(text: str) -> tuple[datetime, str | None] | None:
    """The wall-clock time and offset `text` writes, in any form scelle reads; None for
    text that is not a time. Raises InputError for a time that is written right but
    cannot be (31/02, 25:00)."""
    stripped = text.strip()
    match = _ISO.fullmatch(stripped) or _FRENCH.fullmatch(stripped)
    if not match:
        return None
    parts = match.groupdict()
    minute = int(parts.get("minute") or parts.get("hminute") or "0")
    second = int(parts.get("second") or 0)
    fraction = int((parts.get("fraction") or "").ljust(6, "0"))
    hour = int(parts["hour"])
    # 24h00 (24:00) ends a day, as French timetables write it: the next day's midnight.
    midnight = hour == 24 and minute == second == fraction == 0
    try:
        day = date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
        naive = datetime(
            day.year, day.month, day.day, 0 if midnight else hour, minute, second, fraction
        ) + timedelta(days=1 if midnight else 0)
    except ValueError:
        raise InputError(
            _("malformed time {text!r}: no such day or hour (example: {example})").format(
                text=text, example=EXAMPLE
            )
        ) from None
    return naive, parts.get("offset")


_DAY = re.compile(
    r"(?P<day>\d{1,2})/(?P<month>\d{1,2})/(?P<year>\d{4})|(?P<iso>\d{4}-\d{2}-\d{2})", re.ASCII
)


def parse_day(text: str) -> date | None:
    """A calendar day as people write it (29/11/2026) or ISO 8601 (2026-11-29); None for
    text that is not one (or a day that does not exist)."""
    match = _DAY.fullmatch(text.strip())
    if not match:
        return None
    try:
        if match["iso"]:
            return date.fromisoformat(match["iso"])
        return date(int(match["year"]), int(match["month"]), int(match["day"]))
    except ValueError:
        return None


def day_start(day: date, zone: str) -> int:
    """Midnight starting `day` in `zone` (UTC µs): when a day-long period begins."""
    return to_us(parse_time(f"{day.isoformat()}T00:00", zone))


def looks_like_time(text: str) -> bool:
    """Whether `text` is written as a time scelle reads (it may still not exist)."""
    stripped = text.strip()
    return bool(_ISO.fullmatch(stripped) or _FRENCH.fullmatch(stripped))


def people_time(us: int, zone: str) -> str:
    """An instant as people read it: local wall time with its UTC offset, never ambiguous,
    in the user's usage: `29/11/2026 14:00:30 (UTC+01:00)` in French,
    `2026-11-29 14:00:30 +01:00` in English."""
    moment = from_us(us).astimezone(ZoneInfo(zone))
    offset = moment.isoformat()[-6:]
    if current() == "fr":
        return moment.strftime("%d/%m/%Y %H:%M:%S") + f" (UTC{offset})"
    return moment.strftime("%Y-%m-%d %H:%M:%S") + f" {offset}"


def people_day(iso_day: str) -> str:
    """A calendar day (`2029-05-01`) as people write it: 01/05/2029 in French."""
    if current() != "fr":
        return iso_day
    try:
        return date.fromisoformat(iso_day).strftime("%d/%m/%Y")
    except ValueError:
        return iso_day


def people_text(text: str | None, zone: str) -> str | None:
    """A stored or ISO instant (`2026-11-30T05:16:11.895636Z`, `...+01:00`), as people
    read it (`people_time`); None stays None, text that is no instant stays as it is."""
    if not text:
        return text
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is None:
        return text
    return people_time(to_us(moment), zone)


def parse_time(text: str, zone: str) -> datetime:
    """Parse a requisition time in `zone`; refuse ambiguous, missing or inconsistent times.
    Read as people write them: 29/11/2026 14:00, 29/11/2026 14h00, 29/11/2026 14h, and
    ISO 8601 (2026-11-29T14:00), each optionally followed by Z or a UTC offset."""
    found = _fields(text)
    if found is None:
        raise _malformed(text)
    naive, offset = found
    if not 1900 <= naive.year <= 9998:
        raise InputError(_("{text}: the year must be between 1900 and 9998").format(text=text))
    tz = ZoneInfo(zone)
    if offset == "Z":
        return naive.replace(tzinfo=UTC)
    if offset:
        sign = 1 if offset[0] == "+" else -1
        delta = sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        moment = (naive - delta).replace(tzinfo=UTC)
        if moment.astimezone(tz).utcoffset() != delta:
            raise InputError(
                _("{text}: {offset} is not the UTC offset of {zone} at that time").format(
                    text=text, offset=offset, zone=zone
                )
            )
        return moment
    early, late = naive.replace(tzinfo=tz, fold=0), naive.replace(tzinfo=tz, fold=1)
    if early.utcoffset() == late.utcoffset():
        return early.astimezone(UTC)
    if early.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        raise InputError(
            _(
                "{text} does not exist in {zone} (the clocks went forward): "
                "give a time before or after the change"
            ).format(text=text, zone=zone)
        )
    raise InputError(
        _(
            "{text} happens twice in {zone} (the clocks went back): add the UTC offset, "
            "{early} or {late}"
        ).format(
            text=text, zone=zone, early=_with_offset(early, text), late=_with_offset(late, text)
        )
    )


def _with_offset(moment: datetime, written: str) -> str:
    """`moment` with its offset, in the form the user wrote the time."""
    offset = moment.isoformat(timespec="minutes")[-6:]
    if _FRENCH.fullmatch(written.strip()):
        return moment.strftime("%d/%m/%Y %H:%M") + offset
    return moment.isoformat(timespec="minutes")


@dataclass(frozen=True)
class Window:
    """A half-open interval [start, end) of true (reference-clock) time, in UTC µs."""

    start: int
    end: int

    @property
    def seconds(self) -> float:
        return (self.end - self.start) / 1e6


def parse_window(start: str, end: str, zone: str, max_hours: int) -> Window:
    """Parse `--from`/`--to`; the end must follow the start, within the configured maximum.
    The end may be a time of day alone (14h10): on the start's day."""
    end = _on_the_day_of(start, end)
    a, b = to_us(parse_time(start, zone)), to_us(parse_time(end, zone))
    if b <= a:
        raise InputError(
            _("the window ends ({end}) before it starts ({start})").format(end=end, start=start)
        )
    if b - a > max_hours * 3_600_000_000:
        raise InputError(
            _("the window lasts {hours:.1f} h, more than the maximum of {maximum} h").format(
                hours=(b - a) / 3.6e9, maximum=max_hours
            ),
            hint=_("split the requisition, or raise max_window_hours in scelle.toml"),
        )
    return Window(a, b)


def _on_the_day_of(start: str, end: str) -> str:
    """`end` written as a time of day alone (14:10, 14h10, 14h), on `start`'s day, or
    the next one when it is earlier than the start (23h50/00h10) or 24h."""
    clock = _CLOCK.fullmatch(end.strip())
    found = _fields(start) if clock else None
    if not clock or found is None:
        return end
    parts = clock.groupdict()
    hour, minute = int(parts["hour"]), int(parts.get("minute") or parts.get("hminute") or 0)
    second = int(parts.get("second") or 0)
    started = found[0]
    day = started.date()
    if (hour, minute, second) < (started.hour, started.minute, started.second) or hour == 24:
        day += timedelta(days=1)  # 23h50/00h10 and 22h/24h end after midnight
        hour %= 24
    text = f"{day.isoformat()}T{hour:02d}:{minute:02d}:{second:02d}"
    return text + (parts.get("offset") or "")


def split_span(text: str) -> tuple[str, str]:
    """`FROM/TO` into its two times, though French dates hold slashes themselves
    (29/11/2026 14h00/29/11/2026 14h10): the one cut where both sides read as times."""
    cuts = [i for i, char in enumerate(text) if char == "/"]
    found = [
        (text[:i], text[i + 1 :])
        for i in cuts
        if looks_like_time(text[:i])
        and (looks_like_time(text[i + 1 :]) or _CLOCK.fullmatch(text[i + 1 :].strip()))
    ]
    if len(found) != 1:
        raise InputError(
            _(
                "malformed interval {text!r}: expected START/END, for example "
                "{example}/29/11/2026 14:10 or {example}/14h10"
            ).format(text=text, example=EXAMPLE)
        )
    return found[0]


def split_window(text: str) -> tuple[str, str, str]:
    """`CAMERA=FROM/TO` (as in `--window`) into its camera and two times."""
    camera, sep, span = text.partition("=")
    try:
        start, end = split_span(span) if sep and camera else ("", "")
    except InputError:
        start = end = ""
    if not (start and end):
        raise InputError(
            _(
                "malformed window {text!r}: expected CAMERA=FROM/TO, for example "
                "C-012={example}/29/11/2026 14:10"
            ).format(text=text, example=EXAMPLE)
        )
    return camera, start, end


def parse_span(text: str, zone: str) -> Window:
    """`T/T` (as in `--gap`): a window with no maximum."""
    first, second = split_span(text)
    return parse_window(first, second, zone, max_hours=10**6)
