"""The segment rows a retention purge deals with, and what vouches for them.

What decides is what the ledger proves, not what a table says: a camera's retention and
store are those of its `camera.add` entry (a register row edited since stops the purge of
that camera); each segment row is checked against the name the recorder gave its file
and against the Merkle root its ingest entry recorded, before its file is deleted; the
holds are read through the audit index, which must index every entry.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custody import destruction
from custody.db import Cursor
from custody.entry import decode_entry
from custody.errors import IntegrityError
from custody.i18n import _, ngettext
from exporters.index import batch_rows_vouched
from exporters.models import ADDED_LATER
from exporters.stores import FootageStore, StoreKind, open_store

DAY_US = 86_400_000_000


@dataclass(frozen=True, slots=True)  # a million of them at a centre's nightly purge
class Doomed:
    """A segment the purge means to destroy (times in the recorder's clock)."""

    segment_id: int
    camera_id: str
    root: Path
    path: str
    start_us: int
    end_us: int
    size: int
    sha256: str
    batch_id: int
    offset_us: int  # recorder clock minus reference clock


def entries_about(cur: Cursor, action: str, column: str, value: str) -> list[dict[str, Any]]:
    """Entries of `action` about a camera or a requisition, decoded from their bytes."""
    if column == "camera":
        cur.execute(
            "SELECT e.body FROM ledger_audit_camera c JOIN ledger_audit a ON a.seq = c.seq "
            "JOIN ledger_entry e ON e.seq = a.seq WHERE c.camera = ? AND a.action = ? "
            "ORDER BY a.seq",
            [value, action],
        )
    else:
        cur.execute(
            "SELECT e.body FROM ledger_audit a JOIN ledger_entry e ON e.seq = a.seq "
            "WHERE a.requisition = ? AND a.action = ? ORDER BY a.seq",
            [value, action],
        )
    return [decode_entry(bytes(body)) for (body,) in cur.fetchall()]


_CAMERA_FACTS = (
    "retention_days",
    "store_kind",
    "store_path",
    "store_camera",
    "clock_offset_ms",
    "store_template",
    "store_time",
    "timezone",
)


@dataclass(frozen=True)
class CameraFacts:
    id: str
    retention_days: int
    store_kind: str
    store_path: str
    store_camera: str
    clock_offset_ms: int
    store_template: str
    store_time: str
    timezone: str


def camera_facts(cur: Cursor) -> tuple[list[CameraFacts], dict[str, str]]:
    """Every camera as its `camera.add` entry recorded it; cameras whose register row says
    otherwise are refused (with why): their footage is not purged on an edited row."""
    cur.execute(f"SELECT id, {', '.join(_CAMERA_FACTS)} FROM camera ORDER BY id")
    rows = cur.fetchall()
    facts, refused = [], {}
    for row in rows:
        camera_id = row[0]
        added = entries_about(cur, "camera.add", "camera", camera_id)
        if not added:
            refused[camera_id] = _("no camera.add entry in the ledger")
            continue
        data = added[-1].get("data", {})
        differs = [
            name
            for name, value in zip(_CAMERA_FACTS, row[1:], strict=True)
            if data.get(name, ADDED_LATER.get(name)) != value
        ]
        if differs:
            refused[camera_id] = _(
                "its register row differs from its ledger entry ({columns})"
            ).format(columns=", ".join(differs))
            continue
        facts.append(CameraFacts(camera_id, *row[1:]))
    return facts, refused


def check_index(cur: Cursor) -> None:
    """The holds are read through the audit index: it must index every entry."""
    (indexed,) = cur.execute("SELECT COUNT(*) FROM ledger_audit").fetchone()
    (size,) = cur.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM ledger_entry").fetchone()
    if int(indexed) != int(size):
        raise IntegrityError(
            _(
                "the ledger's audit index holds {indexed} rows for {size} entries: refusing to "
                "purge on an index that could hide a hold"
            ).format(indexed=indexed, size=size),
            hint=_("run 'scelle ledger verify --audit-index'"),
        )


def _named_as_recorded(camera: CameraFacts, store: FootageStore, item: Doomed) -> bool:
    """The row's camera and start are what the recorder's file name says, and its path
    is relative and plain (no `..`, `.` or empty part: the path unlinked is the one
    vouched for, as the scan wrote it)."""
    if any(part in ("", ".", "..") for part in item.path.split("/")):
        return False
    return store.vouches(item.path, camera.store_camera, item.start_us, item.end_us)


class Voucher:
    """Checks segment rows before their files are deleted: they agree with the ledger
    and the file names, and have wholly expired as of the system clock (`now`) by their
    camera's recorded retention; the rest are reported and left in place. Whatever marked
    them for a run, footage inside its retention is never deleted.

    Built once per run (each camera's facts are read from its ledger entries), then asked
    batch by batch."""

    def __init__(self, cur: Cursor, now: int) -> None:
        facts, self.refused = camera_facts(cur)
        self.cameras = {c.id: c for c in facts}
        self.now = now
        self.stores: dict[str, FootageStore] = {}
        self.batches: dict[int, set[int]] = {}

    def good(self, cur: Cursor, items: Sequence[Doomed], failures: list[str]) -> list[Doomed]:
        """The items that may go; a line in `failures` for each of the others."""
        if len(self.batches) > 4096:  # rows come in ingest order: old batches are done
            self.batches.clear()
        return [item for item in items if self._check(cur, item, failures)]

    def _check(self, cur: Cursor, item: Doomed, failures: list[str]) -> bool:
        camera = self.cameras.get(item.camera_id)
        if camera is None:
            why = self.refused.get(item.camera_id) or _("unknown camera")
            failures.append(
                _("{camera}/{path}: camera not purged: {why}").format(
                    camera=item.camera_id, path=item.path, why=why
                )
            )
            return False
        # The batch's rows came with the camera row as it is now: its offset decides the
        # hold check and its store where files are unlinked, so both must still be what
        # the ledger recorded (a row edited during the run is refused, not obeyed).
        edited = [
            name
            for name, same in (
                ("clock_offset_ms", item.offset_us == camera.clock_offset_ms * 1000),
                ("store_path", item.root == Path(camera.store_path)),
            )
            if not same
        ]
        if edited:
            why = _("its register row differs from its ledger entry ({columns})").format(
                columns=", ".join(edited)
            )
            failures.append(
                _("{camera}/{path}: camera not purged: {why}").format(
                    camera=item.camera_id, path=item.path, why=why
                )
            )
            return False
        cutoff = self.now - camera.retention_days * DAY_US
        if item.end_us - camera.clock_offset_ms * 1000 > cutoff:
            failures.append(
                ngettext(  # English: "inside its 1-day retention" and "30-day" alike
                    "{camera}/{path}: inside its {days}-day retention: left in place",
                    "{camera}/{path}: inside its {days}-day retention: left in place",
                    camera.retention_days,
                ).format(camera=item.camera_id, path=item.path, days=camera.retention_days)
            )
            return False
        if camera.id not in self.stores:
            self.stores[camera.id] = open_store(
                StoreKind(camera.store_kind),
                Path(camera.store_path),
                camera.store_template,
                camera.store_time,
                camera.timezone,
            )
        if not _named_as_recorded(camera, self.stores[camera.id], item):
            failures.append(
                _(
                    "{camera}/{path}: its index row does not match the file name: left in place"
                ).format(camera=item.camera_id, path=item.path)
            )
            return False
        if item.batch_id not in self.batches:
            self.batches[item.batch_id] = batch_rows_vouched(cur, item.batch_id, camera.id)
        if item.segment_id not in self.batches[item.batch_id]:
            failures.append(
                _(
                    "{camera}/{path}: its index rows no longer match the ingest entry of "
                    "the ledger (batch {batch}): left in place"
                ).format(camera=item.camera_id, path=item.path, batch=item.batch_id)
            )
            return False
        return True


_RUN_ROWS = (
    "SELECT s.id, s.camera_id, c.store_path, s.path, s.start_us, s.end_us, s.size, s.sha256, "
    "s.batch_id, c.clock_offset_ms FROM segment s JOIN camera c ON c.id = s.camera_id "
    "WHERE s.purge_run = ? AND s.destroyed_at {done} "
)
Place = tuple[str, int, int]  # camera, start, id: where a run's rows are in time order


def marked(cur: Cursor, run: int, after: Place | None, limit: int) -> list[Doomed]:
    """The next `limit` segments a run marked and has not recorded destroyed, after
    `after`, camera by camera in time order (through the index of a run's rows)."""
    query = _RUN_ROWS.format(done="IS NULL")
    params: list[Any] = [run]
    if after is not None:
        query += "AND (s.camera_id, s.start_us, s.id) > (?, ?, ?) "
        params += after
    cur.execute(query + "ORDER BY s.camera_id, s.start_us, s.id LIMIT ?", [*params, limit])
    roots: dict[str, Path] = {}
    return [
        Doomed(i, cam, roots.setdefault(root, Path(root)), path, s, e, size, sha, batch, off * 1000)
        for i, cam, root, path, s, e, size, sha, batch, off in cur.fetchall()
    ]


@dataclass
class RunCamera:
    """What a run marked (or recorded destroyed) of one camera, summed as the ledger and
    the certificate state it: times in the recorder's clock, `offset_us` to take off for
    reference time."""

    camera_id: str
    offset_us: int
    segments: int = 0
    bytes: int = 0
    first_us: int = 0  # start of the first in time order
    last_end_us: int = 0  # end of the last in time order
    max_end_us: int = 0
    root: str = field(default_factory=lambda: destruction.root([]))  # no rows: empty tree


def run_cameras(cur: Cursor, run: int, *, destroyed: bool) -> list[RunCamera]:
    """A run's rows summed camera by camera, each with the Merkle root of its records in
    time order; streamed, so a night's million rows are never all in memory."""
    cur.execute(
        "SELECT s.camera_id, c.clock_offset_ms, s.path, s.start_us, s.end_us, s.size, s.sha256 "
        "FROM segment s JOIN camera c ON c.id = s.camera_id WHERE s.purge_run = ? "
        f"AND s.destroyed_at {'IS NOT NULL' if destroyed else 'IS NULL'} "
        "ORDER BY s.camera_id, s.start_us, s.id",
        [run],
    )
    out: list[RunCamera] = []
    builder = destruction.RootBuilder()
    current: RunCamera | None = None
    while rows := cur.fetchmany(10_000):
        for camera, offset, path, start, end, size, sha in rows:
            if current is None or camera != current.camera_id:
                if current is not None:
                    current.root = builder.hex()
                    builder = destruction.RootBuilder()
                current = RunCamera(camera, offset * 1000, first_us=start)
                out.append(current)
            current.segments += 1
            current.bytes += size
            current.last_end_us = end
            current.max_end_us = max(current.max_end_us, end)
            builder.add(destruction.leaf(path, size, sha, start))
    if current is not None:
        current.root = builder.hex()
    return out


# -- the purge's own bookkeeping ----------------------------------------------------------
# On PostgreSQL only a purging role may write it, through SECURITY DEFINER functions
# (custody/pg_ledger.py PG_PURGE); SQLite's file has one user. Same effect either way.


def new_run(cur: Cursor, started: str, as_of: str, actor: str, segments: int, size: int) -> int:
    if cur.is_sqlite:
        row = cur.execute(
            "INSERT INTO purge_run (started_at, now_utc, actor, state, segments, bytes, failures) "
            "VALUES (?, ?, ?, 'intent', ?, ?, 0) RETURNING id",
            [started, as_of, actor, segments, size],
        ).fetchone()
    else:
        row = cur.execute(
            "SELECT scelle_purge_run_new(?, ?, ?, ?, ?)", [started, as_of, actor, segments, size]
        ).fetchone()
    return int(row[0])


def set_run(cur: Cursor, run: int, **values: str | int | None) -> None:
    """Set some of state, failures, certificate, intent_seqs, outcome_seqs, tally."""
    names = ("state", "failures", "certificate", "intent_seqs", "outcome_seqs", "tally")
    if set(values) - set(names):
        raise ValueError(f"not a purge_run column: {sorted(set(values) - set(names))}")
    if cur.is_sqlite:
        sets = ", ".join(f"{name} = ?" for name in values)
        cur.execute(f"UPDATE purge_run SET {sets} WHERE id = ?", [*values.values(), run])
    else:
        cur.execute(
            "SELECT scelle_purge_run_set(?, ?, ?, ?, ?, ?, ?)",
            [run, *(values.get(name) for name in names)],
        )


# SQLite's statements for `mark` ({ids}: the chunk's placeholders). Each must find its
# rows by id: `+purge_run` keeps the run's index out of it, or SQLite walks all the run's
# rows for every chunk (a night's purge was quadratic; tests/test_purge.py checks plans).
MARKS = {
    "claim": "UPDATE segment SET purge_run = ? WHERE id IN ({ids}) "
    "AND purge_run IS NULL AND destroyed_at IS NULL",
    "destroyed": "UPDATE segment SET destroyed_at = ? WHERE id IN ({ids}) AND +purge_run = ?",
    "release": "UPDATE segment SET purge_run = NULL WHERE id IN ({ids}) AND +purge_run = ? "
    "AND destroyed_at IS NULL",
}


def mark(cur: Cursor, run: int, ids: Sequence[int], what: str, at: str | None = None) -> None:
    """claim (for the run), destroyed (at), release (back to the pool) segment rows."""
    if what not in MARKS:
        raise ValueError(f"unknown purge mark {what!r}")
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        if not cur.is_sqlite:
            cur.execute("SELECT scelle_purge_mark(?, ?, ?, ?)", [run, chunk, what, at])
            continue
        sql = MARKS[what].format(ids=", ".join("?" * len(chunk)))
        if what == "claim":
            cur.execute(sql, [run, *chunk])
        elif what == "destroyed":
            cur.execute(sql, [at, *chunk, run])
        else:
            cur.execute(sql, [*chunk, run])


def backfill_runs(cur: Cursor) -> None:
    """Schema v6: runs recorded before it get the seqs of their intent and outcome
    entries (a run interrupted before v6 is resumed on them) and, as start, the time of
    their intent entry: the clock when they ran, where `started_at` used to be the
    purge's "as of" (which `--now` could set in the future, and the clock guard then
    refused every purge until that date)."""
    cur.execute(
        "SELECT e.body FROM ledger_audit a JOIN ledger_entry e ON e.seq = a.seq "
        "WHERE a.action IN ('footage.destroy.intent', 'footage.destroy', "
        "'footage.destroy.failed') ORDER BY a.seq"
    )
    intents: dict[int, list[int]] = {}
    outcomes: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for (body,) in cur.fetchall():
        entry = decode_entry(bytes(body))
        subject = entry.get("subject")
        run = subject.get("purge") if isinstance(subject, dict) else None
        if not isinstance(run, int):
            continue
        if entry["action"] == "footage.destroy.intent":
            intents.setdefault(run, []).append(int(entry["seq"]))
            started.setdefault(run, str(entry["time"]))
        else:
            outcomes.setdefault(run, []).append(int(entry["seq"]))
    for run, seqs in intents.items():
        cur.execute(
            "UPDATE purge_run SET intent_seqs = ?, started_at = ? WHERE id = ? "
            "AND intent_seqs IS NULL",
            [json.dumps(seqs), started[run], run],
        )
    for run, seqs in outcomes.items():
        cur.execute(
            "UPDATE purge_run SET outcome_seqs = ? WHERE id = ? AND outcome_seqs IS NULL",
            [json.dumps(seqs), run],
        )
