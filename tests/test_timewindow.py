"""Local times as officers write them: ambiguous and missing times refused, offsets kept."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custody.errors import InputError
from custody.timewindow import (
    from_us,
    local_text,
    parse_span,
    parse_time,
    parse_window,
    to_us,
    utc_text,
)

ZONE = "Europe/Paris"


def utc(text: str, zone: str = ZONE) -> str:
    return utc_text(to_us(parse_time(text, zone)))


def test_plain_local_times() -> None:
    assert utc("2026-11-20T10:00") == "2026-11-20T09:00:00Z"
    assert utc("2026-07-01 10:00:30") == "2026-07-01T08:00:30Z"
    assert utc("2026-07-01T10:00:30.250") == "2026-07-01T08:00:30.250000Z"
    assert utc("2026-07-01T10:00Z") == "2026-07-01T10:00:00Z"


def test_the_autumn_repeated_hour_needs_an_offset() -> None:
    with pytest.raises(InputError) as caught:
        parse_time("2026-10-25T02:30", ZONE)
    assert caught.value.message == (
        "2026-10-25T02:30 happens twice in Europe/Paris (the clocks went back): add the UTC "
        "offset, 2026-10-25T02:30+02:00 or 2026-10-25T02:30+01:00"
    )
    assert utc("2026-10-25T02:30+02:00") == "2026-10-25T00:30:00Z"
    assert utc("2026-10-25T02:30+01:00") == "2026-10-25T01:30:00Z"


def test_the_spring_missing_hour_is_refused() -> None:
    with pytest.raises(InputError, match="does not exist in Europe/Paris"):
        parse_time("2026-03-29T02:30", ZONE)
    with pytest.raises(InputError, match=r"\+01:00 is not the UTC offset"):
        parse_time("2026-07-01T10:00+01:00", ZONE)


@pytest.mark.parametrize(
    "bad", ["yesterday", "2026-13-01T10:00", "2026-11-20", "2026-11-20T25:00", "20261120T1000"]
)
def test_malformed_times(bad: str) -> None:
    with pytest.raises(InputError, match="malformed time"):
        parse_time(bad, ZONE)


def test_windows() -> None:
    w = parse_window("2026-10-25T02:59+02:00", "2026-10-25T02:02+01:00", ZONE, 24)
    assert w.end - w.start == 180_000_000
    with pytest.raises(InputError, match=r"ends .* before it starts"):
        parse_window("2026-11-20T10:00", "2026-11-20T09:00", ZONE, 24)
    with pytest.raises(InputError, match="more than the maximum of 2 h"):
        parse_window("2026-11-20T10:00", "2026-11-20T12:30", ZONE, 2)
    with pytest.raises(InputError, match="expected START/END"):
        parse_span("2026-11-20T10:00", ZONE)


@given(st.integers(min_value=0, max_value=4_000_000_000 * 1_000_000))
def test_local_text_round_trips_through_parse(us: int) -> None:
    for zone in (ZONE, "America/New_York", "UTC", "Australia/Lord_Howe"):
        assert to_us(parse_time(local_text(us, zone), zone)) == us


@given(st.integers(0, 2**50), st.integers(1, 10**12))
def test_stored_instants_sort_as_time_does(start: int, later: int) -> None:
    """The stored form is fixed width: text order is time order (the short display form
    is not: `…:20Z` sorts after `…:20.500000Z`)."""
    from custody.timewindow import stored_utc

    assert stored_utc(start) < stored_utc(start + later)
    assert len(stored_utc(start)) == len(stored_utc(start + later)) == 27


@given(st.integers(-62_135_596_800_000_000, 253_402_300_799_999_999))
def test_utc_text_is_the_instants_iso_form(us: int) -> None:
    """utc_text reuses each hour's text (a scan writes two per segment record, and the
    Merkle roots in the ledger hang on them): the same text datetime gives, to the µs."""
    moment = from_us(us)
    micro = f".{moment.microsecond:06d}" if moment.microsecond else ""
    assert utc_text(us) == moment.strftime("%Y-%m-%dT%H:%M:%S") + micro + "Z"


def test_the_short_form_does_not_sort_as_time_does() -> None:
    """Why the stored form exists: the display form breaks text comparisons."""
    from custody.timewindow import utc_text

    earlier, later = 1_795_000_000_000_000, 1_795_000_000_500_000
    assert utc_text(earlier) > utc_text(later)  # "…:40Z" > "…:40.500000Z"


def test_days_as_people_write_them() -> None:
    from datetime import date

    from custody.timewindow import day_start, parse_day

    assert parse_day("29/11/2026") == parse_day("2026-11-29") == date(2026, 11, 29)
    assert parse_day("1/3/2026") == date(2026, 3, 1)
    for bad in ("31/02/2026", "2026-02-30", "demain", "29/11/26", "29.11.2026"):
        assert parse_day(bad) is None
    # midnight local: 23:00 UTC the evening before in winter, 22:00 in summer
    assert utc_text(day_start(date(2026, 11, 29), "Europe/Paris")) == "2026-11-28T23:00:00Z"
    assert utc_text(day_start(date(2026, 7, 14), "Europe/Paris")) == "2026-07-13T22:00:00Z"
