"""Auditors' questions, answered from the ledger: who touched which recordings of which
camera, when, why, for which procedure and receiving unit.

The entries are the evidence. `ledger_audit` (one row per entry) and
`ledger_audit_camera` (one row per camera an entry names) only index them: written in
the same transaction as the entry, append-only like it, so that a query over millions
of entries reads only the rows it returns. Each returned row is then re-read from the
entry's own bytes and checked against the filter again: a damaged index can make a
query miss a row (`ledger verify` recomputes the index and says so), never show one the
ledger does not hold.

Each answer also carries what décret 2023-1102 asks of the access log (custody/access.py:
the operation, the agent's surname, first name and role at the time, the recipient, the
recordings), resolved from the ledger's own designation and registration entries, which
are read from their bytes like the answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from json.scanner import make_scanner
from typing import Any, NamedTuple

import msgspec

from custody import access
from custody.db import Cursor, Database
from custody.entry import decode_entry
from custody.errors import IntegrityError
from custody.i18n import _

_REGISTER = "requisition.register"
Known = dict[str, tuple[str | None, str | None]]  # requisition -> (procedure, unit)


class IndexRow(NamedTuple):
    """What the index keeps of one entry. A named tuple, not a frozen dataclass: every
    `ledger verify` derives one per entry, and the dataclass's __init__ (one
    object.__setattr__ per field) took most of the time of deriving a million."""

    seq: int
    time: str
    actor: str
    action: str
    requisition: str | None
    procedure: str | None
    unit: str | None
    cameras: tuple[str, ...]

    def columns(self) -> tuple[Any, ...]:
        """The values of a `ledger_audit` row, in its column order."""
        return self[:7]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _cameras(subject: Any, data: Mapping[str, Any]) -> tuple[str, ...]:
    """The cameras an entry names: in its subject, or in the windows its data lists."""
    found: list[Any] = []
    windows = data.get("windows")
    if type(subject) is dict:
        many = subject.get("cameras")
        if not many and type(windows) is not list:  # one camera at most: most entries
            camera = subject.get("camera")
            return (camera,) if type(camera) is str and camera else ()
        found += [subject.get("camera"), *(many or [])]
    if type(windows) is list:
        found += [w.get("camera") for w in windows if type(w) is dict]
    if not found:
        return ()
    return tuple(sorted({c for c in found if type(c) is str and c}))


def derive(entry: Mapping[str, Any], known: Known) -> IndexRow:
    """The index row of a decoded entry (parsed JSON: dicts, lists, str). `known` maps a
    requisition to the (procedure, unit) of its registration, so that every later entry
    about it carries them too; a registration derived here is added to it.

    Exact type tests (`type(x) is dict`) rather than ABCs: a million entries are derived
    in every `ledger verify`, and the ABC check was a third of the time."""
    subject = entry.get("subject")
    data = entry.get("data")
    if type(data) is not dict:
        data = {}
    requisition = subject.get("requisition") if type(subject) is dict else None
    if type(requisition) is not str or not requisition:
        requisition = None
    procedure, unit = entry.get("procedure"), data.get("officer_unit")
    if type(procedure) is not str or not procedure:
        procedure = None
    if type(unit) is not str or not unit:
        unit = data.get("unit")
        if type(unit) is not str or not unit:
            unit = None
    if requisition is not None and requisition in known:
        registered_procedure, registered_unit = known[requisition]
        procedure = procedure or registered_procedure
        unit = unit or registered_unit
    action = str(entry.get("action"))
    row = IndexRow(
        int(entry["seq"]),
        str(entry.get("time")),
        str(entry.get("actor")),
        action,
        requisition,
        procedure,
        unit,
        _cameras(subject, data),
    )
    if action == _REGISTER and requisition is not None:
        known[requisition] = (procedure, unit)
    return row


def _named_requisitions(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    named = []
    for e in entries:
        subject = e.get("subject")
        # `type() is dict` first: the ABC check alone was a tenth of a full verification
        if (type(subject) is dict or isinstance(subject, Mapping)) and _text(
            subject.get("requisition")
        ):
            named.append(subject["requisition"])
    return named


def registrations(cur: Cursor, requisitions: Iterable[str], before: int | None = None) -> Known:
    """(procedure, unit) of each requisition's registration, from the index; with
    `before`, only registrations in entries before that seq (what an entry there was
    indexed with when it was appended)."""
    found: Known = {}
    wanted = sorted(set(requisitions))
    bound = "" if before is None else " AND seq < ?"
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        cur.execute(
            "SELECT requisition, procedure, unit FROM ledger_audit "
            f"WHERE action = ? AND requisition IN ({marks}){bound}",
            [_REGISTER, *chunk] + ([] if before is None else [before]),
        )
        for rid, procedure, unit in cur.fetchall():
            found[rid] = (procedure, unit)
    return found


def index_entries(cur: Cursor, entries: Sequence[Mapping[str, Any]]) -> None:
    """Index entries being appended, inside the append's transaction."""
    known = registrations(cur, _named_requisitions(entries))
    write(cur, [derive(entry, known) for entry in entries])


def write(cur: Cursor, rows: Sequence[IndexRow]) -> None:
    cur.insert(
        "ledger_audit (seq, time, actor, action, requisition, procedure, unit)",
        [r.columns() for r in rows],
    )
    cameras = [(c, r.seq) for r in rows for c in r.cameras]
    if cameras:
        cur.insert("ledger_audit_camera (camera, seq)", cameras)


@dataclass(frozen=True)
class AuditFilter:
    """What an auditor asks; every field given must hold. Times are UTC ISO text."""

    agent: str | None = None
    camera: str | None = None
    requisition: str | None = None
    procedure: str | None = None
    action: str | None = None  # "footage.extract", or a prefix: "footage"
    since: str | None = None
    until: str | None = None

    def matches(self, row: IndexRow) -> bool:
        action_ok = self.action is None or (
            row.action == self.action or row.action.startswith(self.action + ".")
        )
        return (
            action_ok
            and (self.agent is None or row.actor == self.agent)
            and (self.camera is None or self.camera in row.cameras)
            and (self.requisition is None or row.requisition == self.requisition)
            and (self.procedure is None or row.procedure == self.procedure)
            and (self.since is None or row.time >= self.since)
            and (self.until is None or row.time < self.until)
        )


@dataclass(frozen=True)
class AuditRow:
    """One answer: the index row, re-derived from the entry, with the entry's words and
    what the décret's access log says of it."""

    row: IndexRow
    reason: str
    access: access.Access

    @property
    def recordings(self) -> tuple[str, ...]:
        """`CAM-1 2026-11-24T14:00:00+01:00 → 2026-11-24T14:05:00+01:00`, as recorded."""
        shown = tuple(r.text() for r in self.access.recordings)
        return shown or ((self.access.summary,) if self.access.summary else ())

    def as_json(self) -> dict[str, Any]:
        """Stored values (the action, the role, the operation) as stored: the same in
        every language. `cameras` and `recordings` include those a requisition's
        registration names for its extraction, handover and destruction entries."""
        r, a = self.row, self.access
        who = a.designation
        return {
            "seq": r.seq,
            "time": r.time,
            "agent": r.actor,
            "action": r.action,
            "cameras": list(a.cameras),
            "recordings": list(self.recordings),
            "requisition": r.requisition,
            "procedure": r.procedure,
            "unit": r.unit,
            "reason": self.reason,
            "operation": a.operation.value,
            "surname": who.surname if who else None,
            "first_name": who.first_name if who else None,
            "role": who.role if who else None,
            "recipient": a.recipient.as_json() if a.recipient else None,
        }


def query(db: Database, wanted: AuditFilter) -> list[AuditRow]:
    """Every entry matching `wanted`, oldest first, read back from the entry bytes.

    The bytes are parsed, not re-canonicalised: proving them intact is `ledger verify`'s
    job; this checks only that the index says what they say. Nothing is recorded here:
    an auditor's question goes through custody/audit_query.py `ask`, which records it."""

    where, params = ["1 = 1"], []
    source = "ledger_audit a"
    if wanted.camera is not None:
        source += " JOIN ledger_audit_camera c ON c.seq = a.seq AND c.camera = ?"
        params.append(wanted.camera)
    for column, value in (
        ("a.actor", wanted.agent),
        ("a.requisition", wanted.requisition),
        ("a.procedure", wanted.procedure),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if wanted.action is not None:
        where.append("(a.action = ? OR (a.action > ? AND a.action < ?))")
        params += [wanted.action, wanted.action + ".", wanted.action + "/"]
    if wanted.since is not None:
        where.append("a.time >= ?")
        params.append(wanted.since)
    if wanted.until is not None:
        where.append("a.time < ?")
        params.append(wanted.until)
    sql = (
        f"SELECT a.seq, e.body FROM {source} JOIN ledger_entry e ON e.seq = a.seq "
        f"WHERE {' AND '.join(where)} ORDER BY a.seq"
    )
    answers: list[AuditRow] = []
    with db.read() as cur:
        check_complete(cur)
        cur.execute(sql, params)
        rows = cur.fetchall()
        entries = [_parse(bytes(body), int(seq)) for seq, body in rows]
        named = _named_requisitions(entries)
        known = registrations(cur, named)
        context = _context(cur, named, int(rows[-1][0]) if rows else 0)
    for (seq, _body), entry in zip(rows, entries, strict=True):
        row = derive(entry, known)
        if row.seq != int(seq) or not wanted.matches(row):
            raise IntegrityError(
                _("the audit index disagrees with ledger entry {seq}").format(seq=seq),
                hint=_("run 'scelle ledger verify'"),
            )
        answers.append(AuditRow(row, str(entry.get("reason")), access.describe(entry, context)))
    return answers


def _context(cur: Cursor, requisitions: Iterable[str], last: int) -> access.Context:
    """The designations before entry `last` and the registrations of `requisitions`, read
    from the entries' own bytes (the index only finds them: an entry that does not say
    what the index says it is teaches nothing)."""
    context = access.Context()
    marks = ", ".join("?" * len(access.DESIGNATIONS))
    cur.execute(
        "SELECT e.body FROM ledger_audit a JOIN ledger_entry e ON e.seq = a.seq "
        f"WHERE a.action IN ({marks}) AND a.seq < ? ORDER BY a.seq",
        [*access.DESIGNATIONS, last],
    )
    bodies = [body for (body,) in cur.fetchall()]
    wanted = sorted(set(requisitions))
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        cur.execute(
            "SELECT e.body FROM ledger_audit a JOIN ledger_entry e ON e.seq = a.seq "
            f"WHERE a.action = ? AND a.requisition IN ({', '.join('?' * len(chunk))})",
            [access.REGISTER, *chunk],
        )
        bodies += [body for (body,) in cur.fetchall()]
    for body in bodies:
        try:
            entry = json.loads(bytes(body))
        except ValueError:
            continue  # `ledger verify` names it; this row only loses what it would say
        if isinstance(entry, dict):
            context.learn(entry)
    return context


def _parse(body: bytes, seq: int) -> dict[str, Any]:
    try:
        entry = json.loads(body)
    except ValueError as exc:
        raise IntegrityError(_("ledger entry {seq} is not JSON").format(seq=seq)) from exc
    if not isinstance(entry, dict) or entry.get("seq") != seq:
        raise IntegrityError(
            _("ledger entry {seq} is not the entry the index names").format(seq=seq)
        )
    return entry


def check_complete(cur: Cursor, *, count: bool = False) -> None:
    """The index reaches the last entry (an index behind the log would hide rows); with
    `count`, it also has exactly one row per entry (a full scan of the index)."""
    last_entry = cur.execute("SELECT MAX(seq) FROM ledger_entry").fetchone()[0]
    last_row = cur.execute("SELECT MAX(seq) FROM ledger_audit").fetchone()[0]
    size = 0 if last_entry is None else int(last_entry) + 1
    rows = int(cur.execute("SELECT COUNT(*) FROM ledger_audit").fetchone()[0]) if count else size
    if last_row != last_entry or rows != size:
        if last_row is None:
            message = _("the audit index covers none ({rows} rows) of {size} ledger entries")
        else:
            message = _(
                "the audit index covers up to entry {last} ({rows} rows) of {size} ledger entries"
            )
        raise IntegrityError(
            message.format(last=last_row, rows=rows, size=size),
            hint=_("run 'scelle ledger verify --audit-index'"),
        )


def recompute(db: Database) -> None:
    """Compare the whole index with what the entries say; IntegrityError on the first
    difference. Run by `ledger verify --audit-index` (reads and parses every entry)."""
    with db.read() as cur:
        check_complete(cur, count=True)
        cur.execute(
            "SELECT e.body, a.seq, a.time, a.actor, a.action, a.requisition, a.procedure, a.unit "
            "FROM ledger_entry e JOIN ledger_audit a ON a.seq = e.seq ORDER BY e.seq"
        )
        known: Known = {}
        stored: list[IndexRow] = []
        while chunk := cur.fetchmany(5000):
            for body, *values in chunk:
                row = derive(decode_entry(bytes(body)), known)
                stored.append(row)
                if row.columns() != tuple(values):
                    raise IntegrityError(
                        _("the audit index disagrees with ledger entry {seq}").format(seq=row.seq)
                    )
        cameras = sorted(cur.execute("SELECT seq, camera FROM ledger_audit_camera").fetchall())
    if [(int(s), c) for s, c in cameras] != sorted((r.seq, c) for r in stored for c in r.cameras):
        raise IntegrityError(_("the audit index's cameras disagree with the ledger entries"))


# json.loads's own parser, without its wrappers (typeshed's stub wants a scanner-like
# context; a JSONDecoder is what the json package itself passes).
_scan = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def _loads(bodies: Sequence[bytes]) -> list[Any]:
    """json.loads of each body. A body that is one JSON value and nothing else (as every
    canonical entry is) is parsed by one call of the scanner json.loads itself uses; the
    three Python layers around it were half the time of parsing a million entries. Any
    other body goes through json.loads, which accepts or refuses it as always."""
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
        entries.append(json.loads(body))
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
    known = registrations(cur, _named_requisitions(entries), before=lo)
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
    return rows, pairs, None


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
    before Python's recursion limit: bodies json would refuse for either reason are
    sent to json here, which refuses them as before."""
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
        if action == _REGISTER:
            known[requisition] = (procedure, unit)
    return rows


def _first_difference(a: Sequence[Any], b: Sequence[Any]) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


def backfill(cur: Cursor) -> None:
    """Index a ledger written before the index existed (schema v5), in seq order."""
    known: Known = {}
    bodies = cur.execute("SELECT body FROM ledger_entry ORDER BY seq").fetchall()
    write(cur, [derive(decode_entry(bytes(body)), known) for (body,) in bodies])
