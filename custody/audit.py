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
from typing import Any, NamedTuple

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


def named_requisitions(entries: Iterable[Mapping[str, Any]]) -> list[str]:
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
    known = registrations(cur, named_requisitions(entries))
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
        named = named_requisitions(entries)
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


def backfill(cur: Cursor) -> None:
    """Index a ledger written before the index existed (schema v5), in seq order."""
    known: Known = {}
    bodies = cur.execute("SELECT body FROM ledger_entry ORDER BY seq").fetchall()
    write(cur, [derive(decode_entry(bytes(body)), known) for (body,) in bodies])
