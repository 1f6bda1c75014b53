"""Time windows as requisitions state them: local wall-clock time, made unambiguous.

Inside scelle every instant is UTC (integer microseconds since the epoch, or an aware
datetime). At the edge, officers write local times. Two traps: the autumn night has two
02:30s (a time there needs an explicit UTC offset), and the spring night has none (such
a time is refused). A peer VMS documents exports that silently gain an hour across the
change; we refuse to guess instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from custody.errors import InputError

_FORMAT = re.compile(  # ASCII: \d would also take `٠١` (Arabic-Indic) in an offset
    r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)(Z|[+-]\d{2}:\d{2})?",
    re.ASCII,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
    JSON output; what is stored and compared is `stored_utc`."""
    moment = from_us(us)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + "Z"


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


def parse_time(text: str, zone: str) -> datetime:
    """Parse a requisition time in `zone`; refuse ambiguous, missing or inconsistent times."""
    match = _FORMAT.fullmatch(text.strip())
    if not match:
        raise InputError(
            f"malformed time {text!r}: expected YYYY-MM-DDTHH:MM[:SS], optionally with +HH:MM or Z"
        )
    date_part, time_part, offset = match.groups()
    try:
        naive = datetime.fromisoformat(f"{date_part}T{time_part}")
    except ValueError as exc:
        raise InputError(f"malformed time {text!r}: {exc}") from exc
    if not 1900 <= naive.year <= 9998:
        raise InputError(f"{text}: the year must be between 1900 and 9998")
    tz = ZoneInfo(zone)
    if offset == "Z":
        return naive.replace(tzinfo=UTC)
    if offset:
        sign = 1 if offset[0] == "+" else -1
        delta = sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        moment = (naive - delta).replace(tzinfo=UTC)
        if moment.astimezone(tz).utcoffset() != delta:
            raise InputError(f"{text}: {offset} is not the UTC offset of {zone} at that time")
        return moment
    early, late = naive.replace(tzinfo=tz, fold=0), naive.replace(tzinfo=tz, fold=1)
    if early.utcoffset() == late.utcoffset():
        return early.astimezone(UTC)
    if early.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        raise InputError(
            f"{text} does not exist in {zone} (the clocks went forward): "
            "give a time before or after the change"
        )
    raise InputError(
        f"{text} happens twice in {zone} (the clocks went back): add the UTC offset, "
        f"{_with_offset(early)} or {_with_offset(late)}"
    )


def _with_offset(moment: datetime) -> str:
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
    """Parse `--from`/`--to`; the end must follow the start, within the configured maximum."""
    a, b = to_us(parse_time(start, zone)), to_us(parse_time(end, zone))
    if b <= a:
        raise InputError(f"the window ends ({end}) before it starts ({start})")
    if b - a > max_hours * 3_600_000_000:
        raise InputError(
            f"the window lasts {(b - a) / 3.6e9:.1f} h, more than the maximum of {max_hours} h",
            hint="split the requisition, or raise max_window_hours in scelle.toml",
        )
    return Window(a, b)


def parse_span(text: str, zone: str) -> Window:
    """`T/T` (as in `--gap`): a window with no maximum."""
    first, sep, second = text.partition("/")
    if not sep:
        raise InputError(f"malformed interval {text!r}: expected START/END")
    return parse_window(first, second, zone, max_hours=10**6)
