"""Canonical JSON: what we sign must round-trip exactly and refuse ambiguous values."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.canonical import canonical_bytes, parse_canonical
from custody.errors import InputError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_round_trip_is_exact(value: dict[str, Any]) -> None:
    data = canonical_bytes(value)
    assert parse_canonical(data) == value
    assert canonical_bytes(parse_canonical(data)) == data


def test_keys_sorted_no_whitespace_utf8() -> None:
    assert canonical_bytes({"b": 1, "a": "é", "c": [True, None]}) == (
        b'{"a":"\xc3\xa9","b":1,"c":[true,null]}'
    )


@pytest.mark.parametrize("bad", [1.0, -0.0, float("nan"), {"x": [0.5]}])
def test_floats_are_refused(bad: Any) -> None:
    with pytest.raises(InputError, match="floats are not allowed"):
        canonical_bytes({"value": bad})


@pytest.mark.parametrize("n", [2**53, -(2**53), 2**60])
def test_huge_integers_are_refused(n: int) -> None:
    with pytest.raises(InputError, match="beyond what JSON holds exactly"):
        canonical_bytes({"n": n})


everything = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"])), inner, max_size=5)
    ),
    max_leaves=25,
)


@given(st.dictionaries(st.text(st.characters(exclude_categories=["Cs"])), everything))
def test_fast_path_equals_rfc8785(value: dict[str, Any]) -> None:
    """Any Unicode, any key order trap: our bytes are the reference library's."""
    assert canonical_bytes(value) == rfc8785.dumps(value)


def test_utf16_key_order_trap() -> None:
    """U+1F600 sorts before U+FF01 in UTF-16 (surrogates D83D...) but after it by code point."""
    value = {"！": 1, "😀": 2, "a": 3}
    assert canonical_bytes(value) == rfc8785.dumps(value)
    assert canonical_bytes(value).index("😀".encode()) < canonical_bytes(value).index("！".encode())


def test_lone_surrogates_are_refused() -> None:
    with pytest.raises(InputError, match="cannot canonicalise"):
        canonical_bytes({"s": "\ud800"})


def test_non_canonical_bytes_are_rejected() -> None:
    with pytest.raises(ValueError, match="canonical"):
        parse_canonical(json.dumps({"b": 1, "a": 2}).encode())


no_nul = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")  # jsonb refuses NUL
in_postgresql = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(no_nul),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(no_nul), inner, max_size=5),
    max_leaves=25,
)


@pytest.mark.backends("postgresql")
def test_the_database_canonicalises_as_we_do(site_env: Any) -> None:
    """PostgreSQL's scelle_canonical (which scelle_append checks every entry with) writes
    our bytes for any Unicode, any key order trap, and refuses what we refuse."""
    from tests.conftest import raw_connection

    conn = raw_connection(site_env)

    def theirs(value: Any) -> bytes:
        row = conn.execute("SELECT scelle_canonical(%s::jsonb)", [json.dumps(value)]).fetchone()
        return str(row[0]).encode()

    @given(st.dictionaries(st.text(no_nul), in_postgresql))
    def agree(value: dict[str, Any]) -> None:
        assert theirs(value) == canonical_bytes(value)

    agree()
    assert theirs({"！": 1, "😀": 2, "a": 3}) == canonical_bytes({"！": 1, "😀": 2, "a": 3})
    for bad in ("1.5", "1.0", "9007199254740992"):
        with pytest.raises(Exception, match="is not an integer JSON holds exactly"):
            conn.execute(f"SELECT scelle_canonical('{{\"n\": {bad}}}'::jsonb)")
    # Other spellings of an integer come out canonical, so scelle_append (which compares
    # them with the bytes given) refuses the entry that spelt them so.
    assert theirs({"n": 100}) == b'{"n":100}'
    row = conn.execute("""SELECT scelle_canonical('{"n": 1e2, "m": -0}'::jsonb)""").fetchone()
    assert row[0] == '{"m":0,"n":100}'
    conn.close()


@pytest.mark.backends("postgresql")
def test_the_databases_entry_check_calls_canonical_exactly_what_is(site_env: Any) -> None:
    """scelle_entry_shape takes a short way to an entry's canonical bytes (its fields in
    their order, only subject and data canonicalised): it refuses as not canonical
    exactly the entries whose bytes are not scelle_canonical's own, however spelt."""
    import psycopg

    from custody.pg_queue import PLACEHOLDER_TIME
    from tests.conftest import raw_connection

    conn = raw_connection(site_env)

    def refused_as_not_canonical(body: bytes) -> bool:
        try:
            conn.execute("SELECT scelle_entry_shape(%s, 0, 'x', true, 'e')", [body])
        except psycopg.errors.RaiseException as exc:
            return "not canonical" in str(exc) or "not an integer JSON holds" in str(exc)
        return False

    def canonical_in_the_database(body: bytes) -> bool:
        query = "SELECT convert_to(scelle_canonical(convert_from(%s, 'UTF8')::jsonb), 'UTF8')"
        try:
            return bool(conn.execute(query, [body]).fetchone()[0] == body)
        except psycopg.errors.RaiseException:
            return False

    @settings(max_examples=60, deadline=None)
    @given(
        st.text(no_nul) | st.dictionaries(st.text(no_nul), in_postgresql, max_size=3),
        st.dictionaries(st.text(no_nul), in_postgresql, max_size=4),
        st.none() | st.text(no_nul, min_size=1),
        st.text(no_nul, min_size=1),
    )
    def agree(subject: Any, data: dict[str, Any], procedure: str | None, reason: str) -> None:
        entry = {
            "v": 1,
            "seq": 0,
            "time": PLACEHOLDER_TIME,
            "actor": "x",
            "action": "ledger.note",
            "subject": subject,
            "reason": reason,
            "procedure": procedure,
            "data": data,
        }
        body = canonical_bytes(entry)
        spellings = [
            body,
            body.replace(b'"seq":0', b'"seq":0.0', 1),
            body.replace(b'"v":1}', b'"v":1.0}'),
            body.replace(b'":', b'": ', 1),
            json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode(),
            json.dumps(entry, sort_keys=True, separators=(",", ":")).encode(),
        ]
        for spelt in spellings:
            assert refused_as_not_canonical(spelt) is not canonical_in_the_database(spelt)
        assert not refused_as_not_canonical(body)

    agree()
    conn.close()
