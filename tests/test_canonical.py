"""Canonical JSON: what we sign must round-trip exactly and refuse ambiguous values."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
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


def test_huge_integers_are_refused() -> None:
    with pytest.raises(InputError, match="cannot canonicalise"):
        canonical_bytes({"n": 2**60})


def test_non_canonical_bytes_are_rejected() -> None:
    with pytest.raises(ValueError, match="canonical"):
        parse_canonical(json.dumps({"b": 1, "a": 2}).encode())
