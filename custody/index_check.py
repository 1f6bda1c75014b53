"""`ledger verify`'s check of the audit index (custody/audit.py): each chunk's index rows
re-derived from its entries' bytes and compared with the stored ones.

Apart from audit.py because it reads the entries with msgspec, which no everyday command
needs (its import is a tenth of their start-up).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from json.scanner import make_scanner
from typing import Any

import msgspec

from custody.access import REGISTER
from custody.audit import derive, named_requisitions, registrations
from custody.db import Cursor

# json.loads's own parser, without its wrappers (typeshed's stub wants a scanner-like
# context; a JSONDecoder is what the json package itself passes).
_scan = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def _loads(bodies: Sequence[bytes]) -> list[Any]:
    """json.loads of each body. A body that is one JSON value and nothing else (as every
    canonical entry is) is parsed by one call of the scanner json.loads itself uses; the
    three Python layers around it were half the time of parsing a million entries. Any
    other body goes through json.loads, which accepts or refuses it as always (None for
    a body it refuses: rewritten bytes, their hash recomputed, are still not an entry)."""
    entries: list[Any] = []
    scan = _scan
    for body in bodies:
        try:
            text = body.decode()
            value, end = scan(text, 0)
            if end == len(text):
                entries.append(value)
                continue
        except (ValueError, StopIteration):
            pass
        try:
            entries.append(json.loads(body))
        except (ValueError, RecursionError):  # not JSON (nor UTF-8): no entry at all
            entries.append(None)
    return entries


def _first_pair_difference(a: Sequence[tuple[int, str]], b: Sequence[tuple[int, str]]) -> int:
    """The smallest seq whose (seq, camera) pairs differ between two sorted lists."""
    for x, y in zip(a, b, strict=False):
        if x != y:
            return min(x[0], y[0])
    longer = a if len(a) > len(b) else b
    return longer[min(len(a), len(b))][0]


def chunk_disagreement(cur: Cursor, lo: int, hi: int, bodies: Sequence[bytes]) -> int | None:
    """The first seq in [lo, hi) whose index rows are not what its entry says, or None.

    Entries are parsed, not re-canonicalised (their bytes are proven by their hashes);
    a requisition registered in an earlier chunk lends its procedure and unit through
    its own index row, which that chunk checks against its entry (a registration at or
    after `lo` cannot have been known when an entry here was appended, and is not read:
    so appends made while this runs change nothing). The derived rows and camera pairs
    are compared with the stored ones as whole lists (one comparison in C), and
    searched for the first difference only when they differ."""
    heads = _heads(bodies)
    if heads is None:
        rows, pairs, failed = _derived(cur, lo, bodies)
    else:
        rows, pairs, failed = _derived_heads(cur, lo, heads)
    cur.execute(
        "SELECT seq, time, actor, action, requisition, procedure, unit FROM ledger_audit "
        "WHERE seq >= ? AND seq < ? ORDER BY seq",
        [lo, hi],
    )
    stored = cur.fetchall()  # tuples, from sqlite3 and psycopg alike
    cur.execute(
        "SELECT seq, camera FROM ledger_audit_camera WHERE seq >= ? AND seq < ? ORDER BY seq",
        [lo, hi],
    )
    stored_pairs = sorted(cur.fetchall())  # Python's order, whatever the collation
    if failed is None and rows == stored and pairs == stored_pairs:
        return None
    found = [] if failed is None else [failed]
    if rows != stored:
        found.append(lo + _first_difference(rows, stored))
    if pairs != stored_pairs:
        found.append(_first_pair_difference(pairs, stored_pairs))
    return min(found)


Derived = tuple[list[tuple[Any, ...]], list[tuple[int, str]], int | None]


def _derived(cur: Cursor, lo: int, bodies: Sequence[bytes]) -> Derived:
    """The index rows (columns), camera pairs and first underivable seq of entries from
    `lo` on: json.loads and derive, entry by entry."""
    entries = _loads(bodies)
    # an entry is a JSON object: what follows the first body that is not goes unread
    whole = next((i for i, e in enumerate(entries) if type(e) is not dict), len(entries))
    entries = entries[:whole]
    known = registrations(cur, named_requisitions(entries), before=lo)
    rows: list[tuple[Any, ...]] = []
    pairs: list[tuple[int, str]] = []
    for offset, entry in enumerate(entries):
        try:
            row = derive(entry, known)
        except (KeyError, TypeError, ValueError):
            return rows, pairs, lo + offset
        rows.append(row[:7])
        for camera in row.cameras:
            pairs.append((row.seq, camera))
    return rows, pairs, None if whole == len(bodies) else lo + whole


class _Subject(msgspec.Struct, gc=False):
    """What an index row takes from an entry's subject, when it is an object."""

    requisition: Any = None
    camera: Any = None
    cameras: Any = None


class _Data(msgspec.Struct, gc=False):
    """What an index row takes from an entry's data."""

    officer_unit: Any = None
    unit: Any = None
    windows: Any = None


class _Head(msgspec.Struct, gc=False):
    """What an index row is made of, as msgspec reads it from an entry's bytes: every
    other field (the reason, a window's times, ...) is checked as JSON and skipped, never
    built. Typed as scelle writes every entry (seq a number; time, actor and action text;
    the subject text or an object; the data an object): an entry that is not so is left
    to json.loads and derive, which make of it what they always did."""

    seq: int
    time: str
    actor: str
    action: str
    procedure: Any = None
    subject: _Subject | str | None = None
    data: _Data | None = None


_decode_head = msgspec.json.Decoder(_Head).decode
_SHALLOW = 400  # bytes: a body this short nests at most 200 deep, far below json's limit


def _heads(bodies: Sequence[bytes]) -> list[_Head] | None:
    """Each body's head, or None if any body is one that msgspec does not read, or could
    read otherwise than json.loads (then json reads them all, as `_derived`).

    msgspec reads the bodies in a third of the time json takes (it builds only what an
    index row needs), and reads what it accepts as json.loads does: the same objects
    (the last of duplicate keys), strings, integers of any size and floats
    (tests/test_audit_derive.py compares the two on arbitrary JSON). What it refuses
    (NaN, a lone surrogate, a subject that is a list...) goes to json.loads. It does not
    check the UTF-8 of the fields it skips, and may nest a few levels deeper than json
    before Python's recursion limit: so the UTF-8 is checked here, and a body that could
    nest that deep is parsed by json first; one that json refuses goes to json (which
    refuses it as before)."""
    if not all(map(bytes.isascii, bodies)):  # ASCII is UTF-8
        try:
            for body in bodies:
                if not body.isascii():
                    body.decode("utf-8", "surrogatepass")  # as json.loads decodes bytes
        except UnicodeDecodeError:
            return None
    if max(map(len, bodies), default=0) > _SHALLOW:
        for body in bodies:
            if len(body) > _SHALLOW and body.count(b"[") + body.count(b"{") > _SHALLOW // 2:
                try:  # may nest deep (a purge's hundreds of windows do not): json says
                    json.loads(body)
                except (ValueError, RecursionError):
                    return None
    try:
        return list(map(_decode_head, bodies))
    except (msgspec.MsgspecError, RecursionError):
        return None


def _derived_heads(cur: Cursor, lo: int, heads: Sequence[_Head]) -> Derived:
    """`_derived` from heads: derive's rules, on msgspec's objects, in one loop.

    A registration's procedure and unit matter only to the entries that name a
    requisition, and only those learn one: the rows are made knowing none, then those
    entries, in order, take the registrations before `lo` (one query, for the
    requisitions named: most chunks name none) and those made since."""
    rows: list[tuple[Any, ...]] = []
    pairs: list[tuple[int, str]] = []
    named: list[int] = []
    try:
        for h in heads:
            subject, data = h.subject, h.data
            if type(subject) is _Subject:
                requisition, camera, many = subject.requisition, subject.camera, subject.cameras
                if type(requisition) is not str or not requisition:
                    requisition = None
            else:  # text or nothing: no requisition, no camera
                requisition = camera = many = None
            if data is None:
                unit = windows = None
            else:
                unit, windows = data.officer_unit, data.windows
                if type(unit) is not str or not unit:
                    unit = data.unit
                    if type(unit) is not str or not unit:
                        unit = None
            procedure = h.procedure
            if type(procedure) is not str or not procedure:
                procedure = None
            seq = h.seq
            if not many and type(windows) is not list:  # one camera at most: most entries
                if type(camera) is str and camera:
                    pairs.append((seq, camera))
            else:
                found = [camera, *(many or [])]
                if type(windows) is list:
                    found += [w.get("camera") for w in windows if type(w) is dict]
                for c in sorted({c for c in found if type(c) is str and c}):
                    pairs.append((seq, c))
            if requisition is not None:
                named.append(len(rows))
            rows.append((seq, h.time, h.actor, h.action, requisition, procedure, unit))
    except TypeError:  # cameras that are a number: derive refuses the entry
        return _registered(cur, lo, rows, named), pairs, lo + len(rows)
    return _registered(cur, lo, rows, named), pairs, None


def _registered(
    cur: Cursor, lo: int, rows: list[tuple[Any, ...]], named: Sequence[int]
) -> list[tuple[Any, ...]]:
    """`rows`, those at `named` (in order) completed as derive does from `known`."""
    if not named:
        return rows
    known = registrations(cur, [rows[i][4] for i in named], before=lo)
    for i in named:
        seq, time, actor, action, requisition, procedure, unit = rows[i]
        if requisition in known:
            registered_procedure, registered_unit = known[requisition]
            procedure = procedure or registered_procedure
            unit = unit or registered_unit
            rows[i] = (seq, time, actor, action, requisition, procedure, unit)
        if action == REGISTER:
            known[requisition] = (procedure, unit)
    return rows


def _first_difference(a: Sequence[Any], b: Sequence[Any]) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))
