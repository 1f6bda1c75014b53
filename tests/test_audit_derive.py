"""`ledger verify` reads entries for the audit index check with msgspec, not json.loads:
on any bytes it accepts, it must derive exactly the rows json.loads and derive give."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from custody import index_check
from custody.canonical import canonical_bytes

REQUISITIONS = ["R-1", "R-2", ""]
# What the index holds of the registrations before the chunk: (procedure, unit).
REGISTERED = {"R-1": ("PV 1", "BSU"), "R-2": (None, "BAC")}


class Registrations:
    """A cursor that answers `audit.registrations` from REGISTERED (and nothing else)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str | None, str | None]] = []

    def execute(self, sql: str, params: Any = ()) -> Registrations:
        assert sql.startswith("SELECT requisition, procedure, unit FROM ledger_audit"), sql
        assert "seq < ?" in sql  # registrations made before the chunk only
        self.rows = [(r, *REGISTERED[r]) for r in params if r in REGISTERED]
        return self

    def fetchall(self) -> list[tuple[str, str | None, str | None]]:
        return self.rows


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6)
    | st.sampled_from(["C-1", "C-2", "", "requisition.register", "x", "\ud800", "é\U0001f600"])
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["camera", "cameras", "requisition", "windows", "unit", "officer_unit"])
            | st.text(max_size=4),
            inner,
            max_size=5,
        )
    ),
    max_leaves=12,
)
# Entries with the four fields every entry has, as they always are (msgspec reads them),
# and with anything anywhere (then json does, and the rows must agree all the same).
head = {
    "seq": st.integers(min_value=0, max_value=2**64),
    "time": st.text(max_size=6),
    "actor": st.text(max_size=6),
    "action": st.sampled_from(["requisition.register", "footage.extract"]) | st.text(max_size=3),
}
wild = {name: strategy | values for name, strategy in head.items()}
rest = {
    "procedure": st.sampled_from(["PV 9", ""]) | values,
    "subject": st.fixed_dictionaries(
        {},
        optional={
            "requisition": st.sampled_from(REQUISITIONS) | values,
            "camera": st.sampled_from(["C-1", "C-2", ""]) | values,
            "cameras": st.lists(st.sampled_from(["C-1", "C-3"]) | values, max_size=3) | values,
        },
    )
    | values,
    "data": st.fixed_dictionaries(
        {},
        optional={
            "unit": st.sampled_from(["BSU", ""]) | values,
            "officer_unit": st.sampled_from(["BAC", ""]) | values,
            "windows": st.lists(
                st.fixed_dictionaries({"camera": st.sampled_from(["C-2", "C-4"]) | values})
                | values,
                max_size=3,
            )
            | values,
        },
    )
    | values,
    "reason": values,
    "v": values,
}
fields = st.fixed_dictionaries(head, optional=rest)
anything = st.fixed_dictionaries({}, optional=wild | rest)


def _text(entry: dict[str, Any], rng: random.Random) -> bytes:
    """The entry as JSON text, in one of the ways bytes can say it: canonical, with
    spaces, with every non-ASCII character escaped, or with keys said twice."""
    how = rng.randrange(4)
    if how == 0:
        try:
            return canonical_bytes(entry)
        except Exception:  # floats, surrogates: any JSON will do
            pass
    if how == 3:
        return _shadowed(entry, rng).encode("utf-8", "surrogatepass")
    return json.dumps(entry, ensure_ascii=how == 2, indent=1 if how == 1 else None).encode(
        "utf-8", "surrogatepass"
    )


def _shadowed(value: Any, rng: random.Random) -> str:
    """JSON text of `value` in which objects, at any depth, may first give one of their
    keys another value (json.loads keeps the last)."""
    if isinstance(value, list):
        return "[" + ",".join(_shadowed(v, rng) for v in value) + "]"
    if not isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    items = [json.dumps(k, ensure_ascii=False) + ":" + _shadowed(v, rng) for k, v in value.items()]
    if value and rng.random() < 0.5:
        key = rng.choice(sorted(value))
        shadow = rng.choice(["shadowed", 7, None, {"camera": "C-9"}, ["C-9"]])
        items.insert(0, json.dumps(key, ensure_ascii=False) + ":" + json.dumps(shadow))
    return "{" + ",".join(items) + "}"


def _same_rows(bodies: list[bytes], lo: int = 40) -> bool:
    """Whether msgspec read the bodies (True) or left them to json (False); either way,
    the rows, pairs and failing seq are those of json.loads and derive."""
    cur: Any = Registrations()
    heads = index_check._heads(bodies)
    if heads is None:
        return False
    for body in bodies:
        json.loads(body)  # whatever msgspec accepts, json accepts
    assert index_check._derived_heads(cur, lo, heads) == index_check._derived(cur, lo, bodies)
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(fields, min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_msgspec_reads_entries_as_json_does(entries: list[dict[str, Any]], rng: Any) -> None:
    _same_rows([_text(e, rng) for e in entries])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(anything, st.randoms(use_true_random=False))
def test_any_entry_is_read_as_json_reads_it(entry: dict[str, Any], rng: Any) -> None:
    _same_rows([_text(entry, rng)])


def _entry(seq: int, **changes: Any) -> dict[str, Any]:
    entry = {
        "v": 1,
        "seq": seq,
        "time": "2026-11-20T14:00:00.000000Z",
        "actor": "op",
        "action": "footage.extract",
        "subject": {"camera": "C-1", "requisition": "R-1"},
        "reason": "réquisition",
        "procedure": None,
        "data": {"windows": [{"camera": "C-2"}], "unit": "BSU"},
    }
    return entry | changes


def test_registrations_in_the_chunk_and_before_it() -> None:
    """An entry naming a requisition takes its procedure and unit from the registration
    before the chunk, or from one earlier in the chunk, which replaces it."""
    entries = [
        _entry(40, procedure="PV 7"),
        _entry(41, action="requisition.register", procedure="PV 8", data={}),
        _entry(42),
        _entry(43, subject={"requisition": "R-2", "cameras": ["C-3", "C-1", "C-3"]}, data={}),
        _entry(44, subject="R-1"),
    ]
    bodies = [canonical_bytes(e) for e in entries]
    assert _same_rows(bodies)
    rows, pairs, failed = index_check._derived_heads(
        Registrations(), 40, index_check._heads(bodies) or []
    )
    assert failed is None
    assert [r[4:] for r in rows] == [
        ("R-1", "PV 7", "BSU"),
        ("R-1", "PV 8", "BSU"),  # the unit of the registration before the chunk
        ("R-1", "PV 8", "BSU"),  # the procedure of the one in the chunk
        ("R-2", None, "BAC"),
        (None, None, "BSU"),
    ]
    assert pairs == [
        (40, "C-1"),
        (40, "C-2"),
        (41, "C-1"),
        (42, "C-1"),
        (42, "C-2"),
        (43, "C-1"),
        (43, "C-3"),
        (44, "C-2"),
    ]


@example(b'{"seq":1,"time":"t","actor":"a","action":"x","reason":"\xff"}')
@example(b'{"seq":1,"time":"t","actor":"a","action":"x","reason":"\xc0\x80"}')
@example(b'{"seq":1,"time":"t","actor":"a","action":"x","reason":"\xed\xa0\x80"}')
@example(b'{"seq":1,"time":"\\ud800","actor":"a","action":"x"}')
@example(b'{"seq":1e400,"time":"t","actor":"a","action":"x"}')
@example(b'{"seq":NaN,"time":"t","actor":"a","action":"x"}')
@example(b'\xef\xbb\xbf{"seq":1,"time":"t","actor":"a","action":"x"}')
@example(b'{"seq":true,"time":"t","actor":"a","action":"x"}')
@example(b'{"seq":1,"seq":2,"time":"t","actor":"a","action":"x","time":"u"}')
@example(b'{"seq":1,"time":"t","actor":"a","action":"x","v":' + b"[" * 995 + b"]" * 995 + b"}")
@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120).map(lambda b: b'{"seq":1,"time":"t","actor":"a","action":"x",' + b))
def test_msgspec_accepts_no_bytes_json_refuses(body: bytes) -> None:
    """Bytes json.loads refuses (bad UTF-8 in a skipped field, too deep) or reads its
    own way (a lone surrogate, NaN) go to json.loads, which refuses them as before."""
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        assert index_check._heads([body]) is None
        return
    _same_rows([body])


def test_a_body_msgspec_leaves_sends_its_whole_chunk_to_json() -> None:
    bodies = [canonical_bytes(_entry(40)), b'{"seq":41,"time":NaN,"actor":"a","action":"x"}']
    assert index_check._heads(bodies) is None
    cur: Any = Registrations()
    rows, _pairs, failed = index_check._derived(cur, 40, bodies)
    assert failed is None and rows[1] == (41, "nan", "a", "x", None, None, None)


def test_a_deep_body_goes_to_json() -> None:
    head = b'{"seq":1,"time":"t","actor":"a","action":"x","data":{"windows":'
    assert index_check._heads([head + b"[" * 1200 + b"]" * 1200 + b"}}"]) is None
    assert index_check._heads([head + b"[" * 300 + b"]" * 300 + b"}}"]) is not None
    many = b",".join([b'{"camera":"C-1"}'] * 800)
    assert index_check._heads([head + b"[" + many + b"]}}"]) is not None
