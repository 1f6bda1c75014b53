"""Canonical JSON: what we sign must round-trip exactly and refuse ambiguous values."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
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
