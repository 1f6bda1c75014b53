"""The retention purge: destroy exactly what has expired, keep exactly what is held.

For each camera, a segment is destroyed when all of it is older than the camera's
retention (reference time: the recorder's clock offset is applied) and no active hold
overlaps it; a segment that straddles the boundary waits until it has wholly expired.

What decides is what the ledger proves, not what a table says: the holds are read from
the ledger's `hold.*` entries (requisition/holds.py); a camera's retention and store are
those of its `camera.add` entry; each segment row is checked against the Merkle root its
ingest entry recorded and against the name the recorder gave the file. A camera or a
segment that fails a check is left in place and reported, never deleted on the word of
an edited row.

Holds and deletions never cross. Files are deleted in batches, each inside the site's
writer transaction (the lock every hold placement takes), after re-reading the holds
there: a hold committed before a batch's transaction is obeyed by it, one placed later
waits for it. A purge killed anywhere is finished by the next run, which re-plans its
remaining segments against the holds then in force. The intent (which segments, their
Merkle root) is recorded before any deletion and the outcome after; the signed
destruction certificate is made from what was recorded, so a run whose certificate could
not be written (disk full) gets it on the next run. One purge at a time, on every
workstation (a lock in the database). A system clock behind the last purge is refused.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from custody import merkle
from custody.canonical import canonical_bytes
from custody.checkpoints import read_identity
from custody.db import Cursor
from custody.errors import DiskFull, InputError, IntegrityError, InvalidState
from custody.files import NotRegular, fsync_dir, unlink_beneath, write_atomic
from custody.keys import Signer, der_sha256, public_pem, ssh_fingerprint
from custody.ledger import Record, decode_entry
from custody.signatures import sign_raw
from custody.site import Site
from exporters.documents import fr_time, render
from exporters.index import NewSegment
from exporters.stores import StoreKind, open_store
from requisition.holds import HoldBook
from requisition.timewindow import now_us, parse_time, to_us, utc_text

DAY_US = 86_400_000_000
BATCH = 1000  # segments deleted per writer transaction: a hold waits at most one batch
CLOCK_SLACK_US = 5_000_000  # a purge "as of" later than this past the clock is refused
EXPORT_KEEP_US = 30 * DAY_US  # CSI L252-3: at most one month after transmission
REASON = "retention period expired (CSI L252-5)"
FORMAT = "scelle-destruction/1"

Step = Callable[[str], None]  # called between the steps of a run (tests pause or kill there)


@dataclass(frozen=True)
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

    def record(self) -> bytes:
        """The Merkle leaf of a destroyed segment: `path\\nsize\\nsha256\\nstart_us` (a
        fixed line format: a million of them are hashed in a purge)."""
        return f"{self.path}\n{self.size}\n{self.sha256}\n{self.start_us}".encode()


def merkle_root(items: Sequence[Doomed]) -> str:
    leaves = [merkle.leaf_hash(d.record()) for d in items]
    return merkle.levels_root(merkle.tree_levels(leaves), len(leaves)).hex()


@dataclass
class CameraPlan:
    camera_id: str
    doomed: list[Doomed] = field(default_factory=list)
    held: int = 0  # expired segments kept by a hold when the plan was made
    refused: str | None = None  # why this camera is not purged at all


@dataclass
class Deletion:
    """What one run's batches did."""

    destroyed: list[Doomed] = field(default_factory=list)  # deleted now
    absent: list[Doomed] = field(default_factory=list)  # already gone: nothing to delete
    spared: Counter[str] = field(default_factory=Counter)  # held since the intent
    failures: list[str] = field(default_factory=list)

    @property
    def gone(self) -> list[Doomed]:
        return self.destroyed + self.absent


@dataclass
class PurgeReport:
    run: int | None
    dry_run: bool
    as_of: int
    plans: list[CameraPlan] = field(default_factory=list)
    destroyed: int = 0
    absent: int = 0
    bytes: int = 0
    spared: int = 0
    failures: list[str] = field(default_factory=list)
    resumed: list[int] = field(default_factory=list)
    pending: dict[int, int] = field(default_factory=dict)  # dry run: interrupted run -> left
    certificates: list[Path] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)  # requisitions whose export went

    def add(self, deletion: Deletion) -> None:
        self.destroyed += len(deletion.destroyed)
        self.absent += len(deletion.absent)
        self.bytes += sum(d.size for d in deletion.destroyed)
        self.spared += sum(deletion.spared.values())
        self.failures += deletion.failures

    @property
    def nothing_to_do(self) -> bool:
        return (
            not any(p.doomed for p in self.plans)
            and not self.resumed
            and not self.pending
            and not self.exports
            and not self.certificates
            and not self.failures
        )


# -- what the ledger says -------------------------------------------------------------


def _entries(cur: Cursor, action: str, column: str, value: str) -> list[dict[str, Any]]:
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


_CAMERA_FACTS = ("retention_days", "store_kind", "store_path", "store_camera", "clock_offset_ms")


@dataclass(frozen=True)
class CameraFacts:
    id: str
    retention_days: int
    store_kind: str
    store_path: str
    store_camera: str
    clock_offset_ms: int


def _camera_facts(cur: Cursor) -> tuple[list[CameraFacts], dict[str, str]]:
    """Every camera as its `camera.add` entry recorded it; cameras whose register row says
    otherwise are refused (with why): their footage is not purged on an edited row."""
    cur.execute(f"SELECT id, {', '.join(_CAMERA_FACTS)} FROM camera ORDER BY id")
    rows = cur.fetchall()
    facts, refused = [], {}
    for row in rows:
        camera_id = row[0]
        added = _entries(cur, "camera.add", "camera", camera_id)
        if not added:
            refused[camera_id] = "no camera.add entry in the ledger"
            continue
        data = added[-1].get("data", {})
        differs = [
            name
            for name, value in zip(_CAMERA_FACTS, row[1:], strict=True)
            if data.get(name) != value
        ]
        if differs:
            refused[camera_id] = (
                f"its register row differs from its ledger entry ({', '.join(differs)})"
            )
            continue
        facts.append(CameraFacts(camera_id, *row[1:]))
    return facts, refused


def _check_index(cur: Cursor) -> None:
    """The holds are read through the audit index: it must index every entry."""
    (indexed,) = cur.execute("SELECT COUNT(*) FROM ledger_audit").fetchone()
    (size,) = cur.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM ledger_entry").fetchone()
    if int(indexed) != int(size):
        raise IntegrityError(
            f"the ledger's audit index holds {indexed} rows for {size} entries: refusing to "
            "purge on an index that could hide a hold",
            hint="run 'scelle ledger verify --audit-index'",
        )


# -- planning ---------------------------------------------------------------------------


def plan(site: Site, as_of: int, holds: HoldBook | None = None) -> list[CameraPlan]:
    """What a purge as of `as_of` would destroy and keep, camera by camera."""
    plans = []
    with site.db.read() as cur:
        held = (holds or HoldBook()).refresh(cur)
        facts, refused = _camera_facts(cur)
        plans += [CameraPlan(c, refused=why) for c, why in refused.items()]
        for camera in facts:
            offset = camera.clock_offset_ms * 1000
            cutoff = as_of - camera.retention_days * DAY_US  # reference time
            cur.execute(
                "SELECT id, path, start_us, end_us, size, sha256, batch_id FROM segment "
                "WHERE camera_id = ? AND end_us <= ? AND destroyed_at IS NULL "
                "AND purge_run IS NULL ORDER BY start_us, id",
                [camera.id, cutoff + offset],
            )
            result = CameraPlan(camera.id)
            root = Path(camera.store_path)
            for seg_id, path, start, end, size, sha, batch in cur.fetchall():
                if held.holding(camera.id, start - offset, end - offset):
                    result.held += 1
                    continue
                result.doomed.append(
                    Doomed(seg_id, camera.id, root, path, start, end, size, sha, batch, offset)
                )
            plans.append(result)
    return sorted(plans, key=lambda p: p.camera_id)


# -- checks before deleting -------------------------------------------------------------


def _named_as_recorded(camera: CameraFacts, item: Doomed) -> bool:
    """The row's camera and start are what the recorder's file name says."""
    store = open_store(StoreKind(camera.store_kind), Path(camera.store_path))
    rel = PurePosixPath(item.path)
    if ".." in rel.parts or rel.is_absolute() or len(rel.parts) < 2:
        return False
    name = store.parse(store.root / rel.parent, rel.name)
    if name is None or name.start_us != item.start_us:
        return False
    if name.duration_us is not None and item.start_us + name.duration_us != item.end_us:
        return False
    if StoreKind(camera.store_kind) is StoreKind.FRIGATE:
        return rel.parts[0] == "recordings" and rel.parts[-2] == camera.store_camera
    return rel.parts[0] == camera.store_camera


def _ingested_as_recorded(cur: Cursor, batch_id: int, camera_id: str) -> bool:
    """The ingest batch's rows rebuild the Merkle root its ledger entry recorded."""
    row = cur.execute(
        "SELECT b.camera_id, b.hour_us, e.body FROM ingest_batch b "
        "JOIN ledger_entry e ON e.seq = b.ledger_seq WHERE b.id = ?",
        [batch_id],
    ).fetchone()
    if row is None or row[0] != camera_id:
        return False
    entry = decode_entry(bytes(row[2]))
    subject = entry.get("subject")
    if entry.get("action") != "footage.ingest" or subject != {
        "camera": camera_id,
        "hour": utc_text(int(row[1])),
    }:
        return False
    cur.execute(
        "SELECT path, start_us, end_us, size, sha256 FROM segment WHERE batch_id = ? "
        "ORDER BY start_us, id",
        [batch_id],
    )
    records = [NewSegment(*r).record() for r in cur.fetchall()]
    levels = merkle.tree_levels([merkle.leaf_hash(r) for r in records])
    root = merkle.levels_root(levels, len(records)).hex()
    return bool(entry.get("data", {}).get("merkle_root") == root)


def _vouched(site: Site, items: Sequence[Doomed], failures: list[str]) -> list[Doomed]:
    """The items whose rows agree with the ledger and the file names; the rest are
    reported and left in place."""
    with site.db.read() as cur:
        facts, refused = _camera_facts(cur)
        cameras = {c.id: c for c in facts}
        batches: dict[int, bool] = {}
        good = []
        for item in items:
            camera = cameras.get(item.camera_id)
            if camera is None:
                why = refused.get(item.camera_id, "unknown camera")
                failures.append(f"{item.camera_id}/{item.path}: camera not purged: {why}")
                continue
            if not _named_as_recorded(camera, item):
                failures.append(
                    f"{item.camera_id}/{item.path}: its index row does not match the file "
                    "name: left in place"
                )
                continue
            if item.batch_id not in batches:
                batches[item.batch_id] = _ingested_as_recorded(cur, item.batch_id, camera.id)
            if not batches[item.batch_id]:
                failures.append(
                    f"{item.camera_id}/{item.path}: its index rows no longer match the ingest "
                    f"entry of the ledger (batch {item.batch_id}): left in place"
                )
                continue
            good.append(item)
    return good


# -- deleting ---------------------------------------------------------------------------


def _ids_sql(column: str, ids: Sequence[int]) -> str:
    return f"{column} IN ({', '.join('?' * len(ids))})"


def _delete(
    site: Site,
    run: int,
    items: Sequence[Doomed],
    holds: HoldBook,
    *,
    resuming: bool,
    step: Step | None,
) -> Deletion:
    """Delete `items` batch by batch, each batch under the writer lock after re-reading
    the holds there. Held ones go back to the pool (purge_run cleared); failures too, so
    that the next purge retries them."""
    done = Deletion()
    items = _vouched(site, items, done.failures)
    vouched = {d.segment_id for d in items}
    if done.failures:
        with site.db.write() as cur:
            _tally(cur, run, [], Counter(), done.failures)
    for start in range(0, len(items), BATCH):
        batch = items[start : start + BATCH]
        if step:
            step("batch")
        with site.db.write() as cur:
            holds.refresh(cur)
            if step:
                step("locked")
            deleted: list[Doomed] = []
            absent: list[Doomed] = []
            spared: Counter[str] = Counter()
            failures: list[str] = []
            back: list[int] = []
            for item in batch:
                held = holds.holding(
                    item.camera_id, item.start_us - item.offset_us, item.end_us - item.offset_us
                )
                try:
                    if held:
                        # Killed mid-batch, an earlier run deleted files before this hold
                        # could commit: a file already gone on resume was destroyed then.
                        if resuming and not (item.root / item.path).exists():
                            absent.append(item)
                        else:
                            spared[item.camera_id] += 1
                            back.append(item.segment_id)
                        continue
                    (deleted if unlink_beneath(item.root, item.path) else absent).append(item)
                except (NotRegular, OSError, ValueError) as exc:
                    reason = exc.strerror if isinstance(exc, OSError) else str(exc)
                    failures.append(f"{item.camera_id}/{item.path}: {reason}")
                    back.append(item.segment_id)
            for directory in {d.root / d.path for d in deleted}:
                if directory.parent.is_dir():
                    fsync_dir(directory.parent)
            if step:
                step("unlinked")
            _tally(cur, run, absent, spared, failures)
            now = utc_text(now_us())
            gone = [d.segment_id for d in deleted + absent]
            for at in range(0, len(gone), 500):
                ids = gone[at : at + 500]
                cur.execute(
                    f"UPDATE segment SET destroyed_at = ? WHERE {_ids_sql('id', ids)}", [now, *ids]
                )
            for at in range(0, len(back), 500):
                ids = back[at : at + 500]
                cur.execute(f"UPDATE segment SET purge_run = NULL WHERE {_ids_sql('id', ids)}", ids)
        done.destroyed += deleted
        done.absent += absent
        done.spared += spared
        done.failures += failures
    refused = [i for i in _all_marked(site, run) if i not in vouched]
    if refused:
        with site.db.write() as cur:
            for at in range(0, len(refused), 500):
                ids = refused[at : at + 500]
                cur.execute(
                    f"UPDATE segment SET purge_run = NULL WHERE {_ids_sql('id', ids)} "
                    "AND destroyed_at IS NULL",
                    ids,
                )
    return done


def _all_marked(site: Site, run: int) -> list[int]:
    with site.db.read() as cur:
        cur.execute("SELECT id FROM segment WHERE purge_run = ? AND destroyed_at IS NULL", [run])
        return [int(i) for (i,) in cur.fetchall()]


def _marked(site: Site, run: int) -> list[Doomed]:
    """The segments an interrupted run meant to destroy and has not recorded destroyed."""
    with site.db.read() as cur:
        cur.execute(
            "SELECT s.id, s.camera_id, c.store_path, s.path, s.start_us, s.end_us, s.size, "
            "s.sha256, s.batch_id, c.clock_offset_ms FROM segment s "
            "JOIN camera c ON c.id = s.camera_id "
            "WHERE s.purge_run = ? AND s.destroyed_at IS NULL ORDER BY s.camera_id, s.start_us",
            [run],
        )
        return [
            Doomed(i, cam, Path(root), path, s, e, size, sha, batch, off * 1000)
            for i, cam, root, path, s, e, size, sha, batch, off in cur.fetchall()
        ]


# -- recording --------------------------------------------------------------------------


def _intent(site: Site, actor: str, started: int, as_of: int, plans: list[CameraPlan]) -> int:
    doomed = [d for p in plans for d in p.doomed]
    with site.db.write() as cur:
        cur.execute(
            "INSERT INTO purge_run (started_at, now_utc, actor, state, segments, bytes, failures) "
            "VALUES (?, ?, ?, 'intent', ?, ?, 0)",
            [utc_text(started), utc_text(as_of), actor, len(doomed), sum(d.size for d in doomed)],
        )
        run = int(cur.execute("SELECT MAX(id) FROM purge_run").fetchone()[0])
        for start in range(0, len(doomed), 500):
            ids = [d.segment_id for d in doomed[start : start + 500]]
            cur.execute(
                f"UPDATE segment SET purge_run = ? WHERE {_ids_sql('id', ids)}", [run, *ids]
            )
        appended = site.ledger.append_in(
            cur,
            actor,
            [
                Record(
                    "footage.destroy.intent",
                    {"camera": p.camera_id, "purge": run},
                    REASON,
                    data={
                        "segments": len(p.doomed),
                        "bytes": sum(d.size for d in p.doomed),
                        "first_utc": utc_text(p.doomed[0].start_us),
                        "last_end_utc": utc_text(p.doomed[-1].end_us),
                        "merkle_root": merkle_root(p.doomed),
                        "held": p.held,
                    },
                )
                for p in plans
                if p.doomed
            ],
        )
        cur.execute(
            "UPDATE purge_run SET intent_seqs = ? WHERE id = ?",
            [json.dumps([a.seq for a in appended]), run],
        )
    return run


def _tally(
    cur: Cursor, run: int, absent: list[Doomed], spared: Counter[str], failures: list[str]
) -> None:
    """Add a batch's counts to its run, in the batch's own transaction: a run killed
    midway and finished later still certifies every batch."""
    row = cur.execute("SELECT tally FROM purge_run WHERE id = ?", [run]).fetchone()
    tally = json.loads(row[0] or "{}")
    for key, counts in (("absent", Counter(d.camera_id for d in absent)), ("spared", spared)):
        merged = Counter(tally.get(key, {}))
        merged.update(counts)
        tally[key] = dict(merged)
    tally["failures"] = (tally.get("failures", []) + failures)[:100]
    tally["failure_count"] = tally.get("failure_count", 0) + len(failures)
    cur.execute("UPDATE purge_run SET tally = ? WHERE id = ?", [json.dumps(tally), run])


def _destroyed(cur: Cursor, run: int) -> list[Doomed]:
    """Every segment a run recorded destroyed, camera by camera, in time order."""
    cur.execute(
        "SELECT s.id, s.camera_id, c.store_path, s.path, s.start_us, s.end_us, s.size, "
        "s.sha256, s.batch_id, c.clock_offset_ms FROM segment s "
        "JOIN camera c ON c.id = s.camera_id WHERE s.purge_run = ? "
        "AND s.destroyed_at IS NOT NULL ORDER BY s.camera_id, s.start_us, s.id",
        [run],
    )
    return [
        Doomed(i, cam, Path(root), path, s, e, size, sha, batch, off * 1000)
        for i, cam, root, path, s, e, size, sha, batch, off in cur.fetchall()
    ]


def _outcome(site: Site, actor: str, run: int) -> None:
    """Record what the run did, from what its batches committed."""
    with site.db.write() as cur:
        tally = json.loads(
            cur.execute("SELECT tally FROM purge_run WHERE id = ?", [run]).fetchone()[0] or "{}"
        )
        by_camera: dict[str, list[Doomed]] = defaultdict(list)
        for d in _destroyed(cur, run):
            by_camera[d.camera_id].append(d)
        absent, spared = tally.get("absent", {}), tally.get("spared", {})
        failures, count = tally.get("failures", []), int(tally.get("failure_count", 0))
        records = [
            Record(
                "footage.destroy",
                {"camera": camera, "purge": run},
                REASON,
                data={
                    "segments": len(by_camera[camera]),
                    "bytes": sum(d.size for d in by_camera[camera]),
                    "already_absent": int(absent.get(camera, 0)),
                    "held_since_intent": int(spared.get(camera, 0)),
                    "merkle_root": merkle_root(by_camera[camera]),
                },
            )
            for camera in sorted(set(by_camera) | set(spared))
        ]
        if count:
            records.append(
                Record(
                    "footage.destroy.failed",
                    {"purge": run},
                    "some segments could not be destroyed: left in place",
                    data={"failures": failures, "count": count},
                )
            )
        appended = site.ledger.append_in(cur, actor, records) if records else []
        cur.execute(
            "UPDATE purge_run SET state = ?, failures = ?, outcome_seqs = ? WHERE id = ?",
            ["partial" if count else "done", count, json.dumps([a.seq for a in appended]), run],
        )


# -- the run ----------------------------------------------------------------------------


def _check_clock(site: Site, real: int) -> None:
    with site.db.read() as cur:
        last = cur.execute("SELECT MAX(started_at) FROM purge_run").fetchone()[0]
    if last and to_us(parse_time(last, "UTC")) > real + CLOCK_SLACK_US:
        raise InvalidState(
            f"the system clock says {utc_text(real)}, before the last purge started ({last}): "
            "refusing to purge",
            hint="the clock has gone back: check the system clock (NTP) before purging again",
        )


def _interrupted(site: Site) -> list[int]:
    with site.db.read() as cur:
        cur.execute("SELECT id FROM purge_run WHERE state = 'intent' ORDER BY id")
        return [int(r) for (r,) in cur.fetchall()]


def _uncertified(site: Site) -> list[int]:
    with site.db.read() as cur:
        cur.execute(
            "SELECT id FROM purge_run WHERE state IN ('done', 'partial') AND certificate IS NULL "
            "AND outcome_seqs IS NOT NULL ORDER BY id"
        )
        return [int(r) for (r,) in cur.fetchall()]


def purge(
    site: Site,
    actor: str,
    as_of: int | None = None,
    *,
    dry_run: bool = False,
    signer: Signer | None = None,
    step: Step | None = None,
) -> PurgeReport:
    """Run (or, with `dry_run`, only plan) the retention purge.

    `as_of` (default: now) may lie in the past (a purge "as of" an earlier time destroys
    less), never ahead of the system clock: footage inside its retention is never
    destroyed. With a signer, each run leaves a signed destruction certificate."""
    real = now_us()
    moment = real if as_of is None else as_of
    if moment > real + CLOCK_SLACK_US and not dry_run:
        raise InputError(
            f"a purge as of {utc_text(moment)}, after the system clock ({utc_text(real)}), "
            "would destroy footage inside its retention",
            hint="a later time only with a dry run (--dry-run --now …)",
        )
    report = PurgeReport(None, dry_run, moment)
    with site.db.exclusive("purge", "another purge is running"):
        _check_clock(site, real)
        with site.db.read() as cur:
            _check_index(cur)
        holds = HoldBook()
        if dry_run:
            report.pending = {run: len(_marked(site, run)) for run in _interrupted(site)}
            report.plans = plan(site, moment, holds)
            return report
        for run in _interrupted(site):
            deletion = _delete(site, run, _marked(site, run), holds, resuming=True, step=step)
            _outcome(site, actor, run)
            report.add(deletion)
            report.resumed.append(run)
        if signer is not None:
            report.certificates += [certificate(site, run, signer) for run in _uncertified(site)]
        report.exports = purge_exports(site, actor, real, holds, report.failures)
        report.plans = plan(site, moment, holds)
        for p in report.plans:
            if p.refused:
                report.failures.append(f"camera {p.camera_id} not purged: {p.refused}")
        if step:
            step("planned")
        if not any(p.doomed for p in report.plans):
            return report
        run = report.run = _intent(site, actor, real, moment, report.plans)
        if step:
            step("intent")
        deletion = _delete(
            site, run, [d for p in report.plans for d in p.doomed], holds, resuming=False, step=step
        )
        report.add(deletion)
        if step:
            step("deleted")
        _outcome(site, actor, run)
        if signer is not None:
            report.certificates.append(certificate(site, run, signer))
    return report


# -- exports kept at the CSV -------------------------------------------------------------


def purge_exports(
    site: Site, actor: str, now: int, holds: HoldBook, failures: list[str]
) -> list[str]:
    """Exports kept at the CSV after handover go one month after it (CSI L252-3), unless
    a hold of their requisition stands. The handover, the sealed manifest and the holds
    are read from the ledger; a directory is removed only if it holds that manifest."""
    limit = now - EXPORT_KEEP_US
    with site.db.read() as cur:
        holds.refresh(cur)
        rows = cur.execute(
            "SELECT id, export_path, pv_number FROM requisition "
            "WHERE handed_at IS NOT NULL AND export_path IS NOT NULL ORDER BY id"
        ).fetchall()
        due: list[tuple[str, Path, str, str]] = []
        for rid, path, pv in rows:
            handed = _entries(cur, "requisition.handover", "requisition", rid)
            sealed = _entries(cur, "requisition.export", "requisition", rid)
            if not handed or not sealed:
                continue
            at = handed[-1].get("data", {}).get("at")
            if not isinstance(at, str) or to_us(parse_time(at, "UTC")) > limit:
                continue
            if any(h.requisition_id == rid for h in holds.active()):
                continue
            due.append((rid, Path(path), pv, str(sealed[-1]["data"].get("manifest_sha256"))))
    gone = []
    for rid, path, pv, manifest in due:
        if path.exists():
            if not _is_sealed_export(path, rid, manifest):
                failures.append(
                    f"export of {rid} at {path} is not the sealed export the ledger records: "
                    "left in place"
                )
                continue
            shutil.rmtree(path)  # never follows symbolic links (fd-based on Linux)
        with site.db.write() as cur:
            cur.execute("UPDATE requisition SET export_path = NULL WHERE id = ?", [rid])
            site.ledger.append_in(
                cur,
                actor,
                [
                    Record(
                        "export.destroy",
                        {"requisition": rid},
                        "export kept one month after transmission (CSI L252-3)",
                        pv,
                        data={"path": str(path), "manifest_sha256": manifest},
                    )
                ],
            )
        gone.append(rid)
    return gone


def _is_sealed_export(path: Path, rid: str, manifest_sha256: str) -> bool:
    manifest = path / "manifest.json"
    if path.is_symlink() or path.name != rid or manifest.is_symlink() or not manifest.is_file():
        return False
    with manifest.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest() == manifest_sha256


# -- the certificate ----------------------------------------------------------------------


def _run_entries(cur: Cursor, seqs_json: str | None) -> list[dict[str, Any]]:
    seqs = json.loads(seqs_json or "[]")
    out = []
    for seq in seqs:
        row = cur.execute("SELECT body FROM ledger_entry WHERE seq = ?", [seq]).fetchone()
        if row is None:
            raise IntegrityError(f"ledger entry {seq} of a purge is missing")
        out.append(decode_entry(bytes(row[0])))
    return out


def certificate(site: Site, run: int, signer: Signer) -> Path:
    """The signed destruction certificate of a run, from what the run recorded (its
    ledger entries and its destroyed segments): canonical JSON, its PDF and HTML, each
    signed, built beside its place and renamed into it whole."""
    with site.db.read() as cur:
        row = cur.execute(
            "SELECT now_utc, actor, intent_seqs, outcome_seqs FROM purge_run WHERE id = ?", [run]
        ).fetchone()
        if row is None:
            raise InputError(f"no purge run {run}")
        as_of, actor, intent_json, outcome_json = row
        intent = _run_entries(cur, intent_json)
        outcome = _run_entries(cur, outcome_json)
        identity = read_identity(cur)
        destroyed = _destroyed(cur, run)
    held_at_plan = {
        e["subject"]["camera"]: int(e["data"].get("held", 0))
        for e in intent
        if e.get("action") == "footage.destroy.intent"
    }
    results = {
        e["subject"]["camera"]: e["data"] for e in outcome if e["action"] == "footage.destroy"
    }
    failed = [e["data"] for e in outcome if e["action"] == "footage.destroy.failed"]
    by_camera: dict[str, list[Doomed]] = defaultdict(list)
    for d in destroyed:
        by_camera[d.camera_id].append(d)
    cameras: list[dict[str, Any]] = []
    for camera in sorted(set(by_camera) | set(results) | set(held_at_plan)):
        items = by_camera.get(camera, [])
        result = results.get(camera, {})
        root = merkle_root(items)
        if items and result.get("merkle_root") != root:
            raise IntegrityError(
                f"purge {run}, camera {camera}: the destroyed segments no longer match the "
                "Merkle root of its outcome entry"
            )
        cameras.append(
            {
                "camera": camera,
                "segments": len(items),
                "bytes": sum(d.size for d in items),
                "already_absent": int(result.get("already_absent", 0)),
                "first_utc": utc_text(items[0].start_us) if items else None,
                "last_end_utc": utc_text(items[-1].end_us) if items else None,
                "merkle_root": root,
                "held_segments": held_at_plan.get(camera, 0)
                + int(result.get("held_since_intent", 0)),
            }
        )
    failures = [f for data in failed for f in data.get("failures", [])]
    body = canonical_bytes(
        {
            "format": FORMAT,
            "site": {"name": identity.key_name, "ledger_origin": identity.origin},
            "purge": run,
            "as_of_utc": as_of,
            "completed_utc": utc_text(now_us()),
            "actor": actor,
            "cameras": cameras,
            "failures": failures,
            "failure_count": sum(int(data.get("count", 0)) for data in failed),
            "ledger_entries": sorted(int(e["seq"]) for e in intent + outcome),
            "signer": {
                "ssh_fingerprint": ssh_fingerprint(signer.public_key),
                "der_sha256": der_sha256(signer.public_key),
            },
        }
    )
    document = _document(site, as_of, actor, cameras, body, signer)
    final = site.settings.home / "certificates" / f"purge-{run:06d}"
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    try:
        write_atomic(tmp / "certificate.json", body)
        write_atomic(tmp / "certificate.json.sig", sign_raw(signer, body))
        write_atomic(tmp / "keys" / "signer.pub.pem", public_pem(signer.public_key).encode())
        for path in document.write(tmp / "documents", "destruction"):
            write_atomic(path.with_name(path.name + ".sig"), sign_raw(signer, path.read_bytes()))
        for directory in (tmp, tmp / "keys", tmp / "documents"):
            fsync_dir(directory)
        if final.exists():  # an earlier attempt renamed it, then died before recording it
            shutil.rmtree(final)
        os.rename(tmp, final)
        fsync_dir(final.parent)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise DiskFull(
            f"no room in {final.parent} for the destruction certificate of purge {run}: the "
            "destruction is recorded in the ledger, and nothing half-written was kept",
            hint="free space there; the next 'scelle purge' makes the certificate",
        ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    with site.db.write() as cur:
        cur.execute("UPDATE purge_run SET certificate = ? WHERE id = ?", [str(final), run])
    return final


def _document(
    site: Site,
    as_of: str,
    actor: str,
    cameras: Iterable[dict[str, Any]],
    body: bytes,
    signer: Signer,
) -> Any:
    zone = site.settings.timezone
    cameras = list(cameras)
    return render(
        "destruction",
        {
            "csv": {
                "name": site.settings.csv_name,
                "authorisation": site.settings.csv_authorisation,
            },
            "run_at": fr_time(as_of, zone),
            "actor": actor,
            "destroyed": [
                {
                    "camera": c["camera"],
                    "from": fr_time(c["first_utc"], zone),
                    "to": fr_time(c["last_end_utc"], zone),
                    "segments": c["segments"],
                    "bytes": c["bytes"],
                }
                for c in cameras
                if c["segments"]
            ],
            "held": [
                f"{c['camera']} : {c['held_segments']} segment(s) sous main de justice"
                for c in cameras
                if c["held_segments"]
            ],
            "merkle_root": "; ".join(
                f"{c['camera']} {c['merkle_root']}" for c in cameras if c["segments"]
            ),
            "ledger_entries": ", ".join(str(s) for s in json.loads(body)["ledger_entries"]),
            "ssh_fingerprint": ssh_fingerprint(signer.public_key),
        },
    )


def summary(report: PurgeReport) -> dict[str, Any]:
    """`scelle purge --json`."""
    return {
        "run": report.run,
        "dry_run": report.dry_run,
        "as_of_utc": utc_text(report.as_of),
        "resumed": report.resumed,
        "pending_interrupted": {str(k): v for k, v in report.pending.items()},
        "exports_destroyed": report.exports,
        "destroyed": report.destroyed,
        "already_absent": report.absent,
        "bytes": report.bytes,
        "held_since_plan": report.spared,
        "failures": report.failures,
        "certificates": [str(p) for p in report.certificates],
        "cameras": [
            {"camera": p.camera_id, "to_destroy": len(p.doomed), "held": p.held}
            for p in report.plans
            if p.doomed or p.held
        ],
    }


def lines(report: PurgeReport) -> list[str]:
    """What `scelle purge` prints: every run it finished or would finish, and the totals
    of what it did, resumed runs included."""
    out = [
        f"interrupted purge {run} will be completed first: {left} segment(s) still to "
        "destroy or keep, against the holds then in force"
        for run, left in report.pending.items()
    ]
    out += [f"completed interrupted purge {run}" for run in report.resumed]
    verb = "would destroy" if report.dry_run else "planned to destroy"
    out += [
        f"{p.camera_id}: {verb} {len(p.doomed)} segment(s), kept {p.held} held"
        for p in report.plans
        if p.doomed or p.held
    ]
    if not report.dry_run and (report.destroyed or report.absent or report.spared):
        out.append(
            f"destroyed {report.destroyed} segment(s), {report.bytes:,} bytes; "
            f"{report.absent} already absent; {report.spared} kept by a hold placed since "
            "the plan"
        )
    out += [f"destruction certificate {path}" for path in report.certificates]
    out += [
        f"export of requisition {rid} destroyed (handed over more than a month ago)"
        for rid in report.exports
    ]
    return out
