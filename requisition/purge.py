"""The retention purge: destroy exactly what has expired, keep exactly what is held.

For each camera, a segment is destroyed when all of it is older than the camera's
retention (reference time: the recorder's clock offset is applied) and no active hold
overlaps it; a segment that straddles the boundary waits until it has wholly expired.

What decides is what the ledger proves, not what a table says: the holds are read from
the ledger's `hold.*` entries (requisition/holds.py); cameras and segment rows are
checked against their ledger entries and file names (requisition/purge_rows.py). A
camera or a segment that fails a check is left in place and reported, never deleted on
the word of an edited row.

Holds and deletions never cross. Files are deleted in batches, each inside the site's
writer transaction (the lock every hold placement takes), after re-reading the holds
there: a hold committed before a batch's transaction is obeyed by it, one placed later
waits for it. A purge killed anywhere is finished by the next run, which re-plans its
remaining segments against the holds then in force. The intent (which segments, their
Merkle root) is recorded before any deletion and the outcome after; the signed
destruction certificate is made from what was recorded (requisition/destruction.py), so
a run whose certificate could not be written (disk full) gets it on the next run. One
purge at a time, on every workstation (a lock in the database). A system clock behind
the last purge is refused.
"""

from __future__ import annotations

import gc
import json
import os
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from custody import destruction
from custody.db import Cursor
from custody.errors import InputError, InvalidStateError
from custody.files import directory_beneath, unlink_at
from custody.i18n import _, ngettext
from custody.keys import Signer
from custody.site import Site
from custody.timewindow import now_us, parse_time, stored_now, stored_utc, to_us, utc_text
from exporters.documents import PdfSign
from requisition.destruction import certificate
from requisition.export_purge import purge_exports, purge_unexported_attachments
from requisition.holds import HoldBook
from requisition.purge_history import compact
from requisition.purge_rows import (
    Doomed,
    Place,
    RunCamera,
    Voucher,
    camera_facts,
    check_index,
    mark,
    marked,
    new_run,
    run_cameras,
    set_run,
)

DAY_US = 86_400_000_000
BATCH = 1000  # segments deleted per writer transaction: a hold waits at most one batch
UNLINKERS = 4  # directories unlinked at once within a batch
CLOCK_SLACK_US = 5_000_000  # a purge "as of" later than this past the clock is refused

Step = Callable[[str], None]  # called between the steps of a run (tests pause or kill there)


@dataclass
class CameraPlan:
    """What expires of a camera: its segments' ids only (8 bytes each), what the run
    records is read back from the index when it claims them."""

    camera_id: str
    ids: array[int] = field(default_factory=lambda: array("q"))
    held: int = 0  # expired segments kept by a hold when the plan was made
    refused: str | None = None  # why this camera is not purged at all
    bytes: int = 0

    @property
    def count(self) -> int:
        return len(self.ids)


@dataclass
class Deletion:
    """What one run's batches did."""

    destroyed: int = 0  # deleted now
    bytes: int = 0  # of those
    absent: int = 0  # already gone: nothing to delete
    spared: Counter[str] = field(default_factory=Counter)  # held since the intent
    failures: list[str] = field(default_factory=list)


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
    attachments: list[str] = field(default_factory=list)  # their attachments, unexported
    compacted: int = 0  # destroyed segment rows moved into periods (purge_history)

    def add(self, deletion: Deletion) -> None:
        self.destroyed += deletion.destroyed
        self.absent += deletion.absent
        self.bytes += deletion.bytes
        self.spared += sum(deletion.spared.values())
        self.failures += deletion.failures

    @property
    def nothing_to_do(self) -> bool:
        return (
            not any(p.ids for p in self.plans)
            and not self.resumed
            and not self.pending
            and not self.exports
            and not self.attachments
            and not self.certificates
            and not self.failures
        )


# -- planning ---------------------------------------------------------------------------


@contextmanager
def _no_collector() -> Iterator[None]:
    """A night's plan reads a million rows whose tuples form no cycle: the cyclic
    collector would walk them again and again (a third of the plan's time at 1 M rows)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def plan(site: Site, as_of: int, holds: HoldBook | None = None) -> list[CameraPlan]:
    """What a purge as of `as_of` would destroy and keep, camera by camera."""
    plans = []
    with site.db.read() as cur, _no_collector():
        held = (holds or HoldBook()).refresh(cur)
        facts, refused = camera_facts(cur)
        plans += [CameraPlan(c, refused=why) for c, why in refused.items()]
        for camera in facts:
            offset = camera.clock_offset_ms * 1000
            cutoff = as_of - camera.retention_days * DAY_US  # reference time
            cur.execute(
                "SELECT id, start_us, end_us, size FROM segment "
                "WHERE camera_id = ? AND end_us <= ? AND destroyed_at IS NULL "
                "AND purge_run IS NULL",
                [camera.id, cutoff + offset],
            )
            result = CameraPlan(camera.id)
            holding = held.active(camera.id)  # read once per camera, not once per segment
            keep = result.ids.append
            while rows := cur.fetchmany(10_000):  # streamed: never all the rows at once
                if not holding:
                    for seg_id, _start, _end, size in rows:
                        keep(seg_id)
                        result.bytes += size
                    continue
                for seg_id, start, end, size in rows:
                    if any(h.covers(start - offset, end - offset) for h in holding):
                        result.held += 1
                    else:
                        keep(seg_id)
                        result.bytes += size
            plans.append(result)
    return sorted(plans, key=lambda p: p.camera_id)


# -- deleting ---------------------------------------------------------------------------


def _delete(
    site: Site,
    run: int,
    holds: HoldBook,
    *,
    resuming: bool,
    step: Step | None,
) -> Deletion:
    """Delete what the run marked, batch by batch, read back from the index (never all
    in memory): each batch is checked against the ledger and the file names, then, under
    the writer lock after re-reading the holds there, deleted. Held ones go back to the
    pool (purge_run cleared); refused and failed ones too, so the next purge retries them."""
    done = Deletion()
    with site.db.read() as cur:
        voucher = Voucher(cur, now_us())
    with (
        ThreadPoolExecutor(UNLINKERS, thread_name_prefix="unlink") as unlinkers,
        ThreadPoolExecutor(1, thread_name_prefix="vouch") as reader,
    ):
        try:
            _batches(
                site, run, holds, voucher, unlinkers, reader, done, resuming=resuming, step=step
            )
        finally:
            reader.submit(site.db.close_thread)
    with site.db.write() as cur:  # anything still marked (a row the batches never read)
        mark(cur, run, _all_marked(cur, run), "release")  # goes back to the pool
    return done


class Read(NamedTuple):
    """One batch as read and checked outside the writer lock."""

    batch: list[Doomed]
    good: list[Doomed]
    failures: list[str]


def _read(site: Site, run: int, voucher: Voucher, after: Place | None, step: Step | None) -> Read:
    """The batch after `after`, vouched for (in the reader thread, its own connection)."""
    if step:
        step("batch")
    with site.db.read() as cur:
        batch = marked(cur, run, after, BATCH)
        failures: list[str] = []
        return Read(batch, voucher.good(cur, batch, failures), failures)


def _batches(
    site: Site,
    run: int,
    holds: HoldBook,
    voucher: Voucher,
    unlinkers: ThreadPoolExecutor,
    reader: ThreadPoolExecutor,
    done: Deletion,
    *,
    resuming: bool,
    step: Step | None,
) -> None:
    """`_delete`'s batches, one writer transaction each. The next batch is read and
    vouched for while this one is deleted: the unlinks wait on the kernel and release
    the interpreter, so reading ahead costs the night almost nothing. Reading ahead
    changes no decision: the holds are re-read under the writer lock, and a row is
    recorded destroyed only if still claimed by this run."""
    ahead = reader.submit(_read, site, run, voucher, None, step)
    while True:
        batch, good, failures = ahead.result()
        if not batch:
            break
        last = batch[-1]
        ahead = reader.submit(
            _read, site, run, voucher, (last.camera_id, last.start_us, last.segment_id), step
        )
        trusted = {d.segment_id for d in good}
        with site.db.write() as cur:
            holds.refresh(cur)
            if step:
                step("locked")
            deleted: list[Doomed] = []
            absent: list[Doomed] = []
            spared: Counter[str] = Counter()
            back = [d.segment_id for d in batch if d.segment_id not in trusted]
            doomed: dict[tuple[Path, str], list[Doomed]] = defaultdict(list)
            for item in good:
                held = holds.holding(
                    item.camera_id, item.start_us - item.offset_us, item.end_us - item.offset_us
                )
                if not held:
                    doomed[(item.root, item.path.rpartition("/")[0])].append(item)
                # Killed mid-batch, an earlier run deleted files before this hold could
                # commit: a file already gone on resume was destroyed then.
                elif resuming and not (item.root / item.path).exists():
                    absent.append(item)
                else:
                    spared[item.camera_id] += 1
                    back.append(item.segment_id)
            # Directories at once: the unlinks are the kernel's work, one directory's
            # never waits for another's (find -delete, a single thread, is the baseline).
            for unlinked in unlinkers.map(_unlink_in, doomed.items()):
                deleted += unlinked.deleted
                absent += unlinked.absent
                failures += unlinked.failures
                back += unlinked.back
            if step:
                step("unlinked")
            _tally(cur, run, absent, spared, failures)
            gone = [d.segment_id for d in deleted + absent]
            mark(cur, run, gone, "destroyed", stored_now())
            mark(cur, run, back, "release")
        done.destroyed += len(deleted)
        done.bytes += sum(d.size for d in deleted)
        done.absent += len(absent)
        done.spared += spared
        done.failures += failures


@dataclass
class Unlinked:
    """What became of one directory's doomed files."""

    deleted: list[Doomed] = field(default_factory=list)
    absent: list[Doomed] = field(default_factory=list)  # already gone
    failures: list[str] = field(default_factory=list)
    back: list[int] = field(default_factory=list)  # left in place: back to the pool


def _unlink_in(where: tuple[tuple[Path, str], list[Doomed]]) -> Unlinked:
    """Delete a directory's doomed files through one descriptor reached without any
    symbolic link, then fsync it (the deletions survive a power cut). Runs in a worker
    thread: it touches nothing but its own directory and its own result."""
    (root, directory), items = where
    out = Unlinked()
    deleted, absent, failures, back = out.deleted, out.absent, out.failures, out.back
    try:
        with directory_beneath(root, directory) as fd:
            for item in items:
                try:
                    name = item.path.rpartition("/")[2]
                    (deleted if unlink_at(fd, name, item.path) else absent).append(item)
                except OSError as exc:
                    failures.append(f"{item.camera_id}/{item.path}: {exc.strerror}")
                    back.append(item.segment_id)
            os.fsync(fd)
    except FileNotFoundError:
        absent.extend(i for i in items if i not in deleted)
    except (OSError, ValueError) as exc:  # a link in the way, an odd path: left in place
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        for item in items:
            if item not in deleted and item not in absent:
                failures.append(f"{item.camera_id}/{item.path}: {reason}")
                back.append(item.segment_id)
    return out


def _all_marked(cur: Cursor, run: int) -> list[int]:
    cur.execute("SELECT id FROM segment WHERE purge_run = ? AND destroyed_at IS NULL", [run])
    return [int(i) for (i,) in cur.fetchall()]


# -- recording --------------------------------------------------------------------------


def _intent(site: Site, actor: str, started: int, as_of: int, plans: list[CameraPlan]) -> int:
    """Claim the planned segments for a new run and record, in the same transaction,
    what it means to destroy, read back from what it claimed: the intent states exactly
    the rows the run then deletes."""
    doomed = [p for p in plans if p.ids]
    held = {p.camera_id: p.held for p in doomed}
    with site.db.write() as cur:
        run = new_run(
            cur,
            stored_utc(started),
            stored_utc(as_of),
            actor,
            sum(p.count for p in doomed),
            sum(p.bytes for p in doomed),
        )
        for p in doomed:
            mark(cur, run, p.ids, "claim")
        appended = site.ledger.append_in(
            cur,
            actor,
            [
                destruction.intent(
                    c.camera_id,
                    run,
                    {
                        "segments": c.segments,
                        "bytes": c.bytes,
                        "first_utc": utc_text(c.first_us),
                        "last_end_utc": utc_text(c.last_end_us),
                        "merkle_root": c.root,
                        "held": held.get(c.camera_id, 0),
                    },
                )
                for c in run_cameras(cur, run, destroyed=False)
            ],
        )
        set_run(cur, run, intent_seqs=json.dumps([a.seq for a in appended]))
    return run


def _tally(
    cur: Cursor, run: int, absent: Sequence[Doomed], spared: Counter[str], failures: list[str]
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
    set_run(cur, run, tally=json.dumps(tally))


def _span(destroyed: RunCamera) -> dict[str, str]:
    """Which recordings were destroyed (the access log names them): from the start of
    the first to the end of the last, in the recorder's clock as the intent states its own,
    and in reference time (its offset taken off), as every other access names them."""
    if not destroyed.segments:
        return {}
    first, last, offset = destroyed.first_us, destroyed.max_end_us, destroyed.offset_us
    return {
        "first_utc": utc_text(first),
        "last_end_utc": utc_text(last),
        "first_reference_utc": utc_text(first - offset),
        "last_end_reference_utc": utc_text(last - offset),
    }


def _outcome(site: Site, actor: str, run: int) -> None:
    """Record what the run did, from what its batches committed."""
    with site.db.write() as cur:
        tally = json.loads(
            cur.execute("SELECT tally FROM purge_run WHERE id = ?", [run]).fetchone()[0] or "{}"
        )
        by_camera = {c.camera_id: c for c in run_cameras(cur, run, destroyed=True)}
        absent, spared = tally.get("absent", {}), tally.get("spared", {})
        failures, count = tally.get("failures", []), int(tally.get("failure_count", 0))
        records = []
        for camera in sorted(set(by_camera) | set(spared)):
            done = by_camera.get(camera) or RunCamera(camera, 0)
            records.append(
                destruction.outcome(
                    camera,
                    run,
                    {
                        "segments": done.segments,
                        "bytes": done.bytes,
                        "already_absent": int(absent.get(camera, 0)),
                        "held_since_intent": int(spared.get(camera, 0)),
                        "merkle_root": done.root,
                        **_span(done),
                    },
                )
            )
        if count:
            records.append(destruction.failed(run, failures, count))
        appended = site.ledger.append_in(cur, actor, records) if records else []
        outcome = json.dumps([a.seq for a in appended])
        set_run(
            cur, run, state="partial" if count else "done", failures=count, outcome_seqs=outcome
        )


# -- the run ----------------------------------------------------------------------------


def _check_clock(site: Site, real: int) -> None:
    with site.db.read() as cur:
        last = cur.execute("SELECT MAX(started_at) FROM purge_run").fetchone()[0]
    if last and to_us(parse_time(last, "UTC")) > real + CLOCK_SLACK_US:
        raise InvalidStateError(
            _(
                "the system clock says {now}, before the last purge started ({last}): "
                "refusing to purge"
            ).format(now=utc_text(real), last=last),
            hint=_("the clock has gone back: check the system clock (NTP) before purging again"),
        )


def _intended(site: Site, run: int, failures: list[str]) -> bool:
    """Whether the ledger holds the intent of an interrupted run: a run row without one
    (planted around scelle) is not resumed, and what it marked goes back to the pool."""
    with site.db.read() as cur:
        (seqs,) = cur.execute("SELECT intent_seqs FROM purge_run WHERE id = ?", [run]).fetchone()
        intents = []
        for seq in json.loads(seqs or "[]") if isinstance(seqs, str) else []:
            row = cur.execute("SELECT body FROM ledger_entry WHERE seq = ?", [seq]).fetchone()
            if row is not None:
                entry = json.loads(bytes(row[0]))
                subject = entry.get("subject")
                if entry.get("action") == "footage.destroy.intent" and isinstance(subject, dict):
                    intents.append(subject.get("purge") == run)
    if intents and all(intents):
        return True
    failures.append(_("purge run {run} has no intent in the ledger: not resumed").format(run=run))
    with site.db.write() as cur:
        mark(cur, run, _all_marked(cur, run), "release")
        set_run(cur, run, state="void")
    return False


def _interrupted(site: Site) -> list[int]:
    with site.db.read() as cur:
        cur.execute("SELECT id FROM purge_run WHERE state = 'intent' ORDER BY id")
        return [int(r) for (r,) in cur.fetchall()]


def uncertified(site: Site) -> list[int]:
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
    pdf: PdfSign | None = None,
) -> PurgeReport:
    """Run (or, with `dry_run`, only plan) the retention purge.

    `as_of` (default: now) may lie in the past (a purge "as of" an earlier time destroys
    less), never ahead of the system clock: footage inside its retention is never
    destroyed. With a signer, each run leaves a signed destruction certificate."""
    real = now_us()
    moment = real if as_of is None else as_of
    if moment > real + CLOCK_SLACK_US and not dry_run:
        raise InputError(
            _(
                "a purge as of {moment}, after the system clock ({now}), would destroy footage "
                "inside its retention"
            ).format(moment=utc_text(moment), now=utc_text(real)),
            hint=_("a later time only with a dry run (--dry-run --now …)"),
        )
    report = PurgeReport(None, dry_run, moment)
    with site.db.exclusive("purge", _("another purge is running")):
        _check_clock(site, real)
        with site.db.read() as cur:
            check_index(cur)
        holds = HoldBook()
        if dry_run:
            with site.db.read() as cur:
                report.pending = {run: len(_all_marked(cur, run)) for run in _interrupted(site)}
            report.plans = plan(site, moment, holds)
            return report
        _run(site, actor, real, moment, holds, report, signer, step, pdf)
        compacted = compact(site)  # whatever the run did, certified history leaves the index
        report.compacted = compacted.moved
        report.failures += [
            _(
                "ingest batch {batch}: its rows no longer match its ledger entry: kept in the "
                "index, not compacted"
            ).format(batch=batch)
            for batch in compacted.refused
        ]
    return report


def _run(
    site: Site,
    actor: str,
    real: int,
    moment: int,
    holds: HoldBook,
    report: PurgeReport,
    signer: Signer | None,
    step: Step | None,
    pdf: PdfSign | None,
) -> None:
    """Finish interrupted runs, certify, purge exports, then plan, record and run this
    one, into `report`."""
    for run in _interrupted(site):
        if not _intended(site, run, report.failures):
            continue
        deletion = _delete(site, run, holds, resuming=True, step=step)
        _outcome(site, actor, run)
        report.add(deletion)
        report.resumed.append(run)
    if signer is not None:
        report.certificates += [certificate(site, run, signer, pdf) for run in uncertified(site)]
    report.exports = purge_exports(site, actor, real, holds, report.failures)
    report.attachments = purge_unexported_attachments(site, actor, real, holds, report.failures)
    report.plans = plan(site, moment, holds)
    for p in report.plans:
        if p.refused:
            report.failures.append(
                _("camera {camera} not purged: {why}").format(camera=p.camera_id, why=p.refused)
            )
    if step:
        step("planned")
    if not any(p.ids for p in report.plans):
        return
    run = report.run = _intent(site, actor, real, moment, report.plans)
    if step:
        step("intent")
    deletion = _delete(site, run, holds, resuming=False, step=step)
    report.add(deletion)
    if step:
        step("deleted")
    _outcome(site, actor, run)
    if signer is not None:
        report.certificates.append(certificate(site, run, signer, pdf))


def summary(report: PurgeReport) -> dict[str, Any]:
    """`scelle purge --json`."""
    return {
        "run": report.run,
        "dry_run": report.dry_run,
        "as_of_utc": utc_text(report.as_of),
        "resumed": report.resumed,
        "pending_interrupted": {str(k): v for k, v in report.pending.items()},
        "exports_destroyed": report.exports,
        "attachments_destroyed": report.attachments,
        "destroyed": report.destroyed,
        "already_absent": report.absent,
        "bytes": report.bytes,
        "held_since_plan": report.spared,
        "failures": report.failures,
        "certificates": [str(p) for p in report.certificates],
        "history_compacted": report.compacted,
        "cameras": [
            {"camera": p.camera_id, "to_destroy": p.count, "held": p.held}
            for p in report.plans
            if p.ids or p.held
        ],
    }


def lines(report: PurgeReport) -> list[str]:
    """What `scelle purge` prints: every run it finished or would finish, and the totals
    of what it did, resumed runs included."""
    # English says "segment(s)" whatever the count; ngettext lets French choose.
    out = [
        ngettext(
            "interrupted purge {run} will be completed first: {left} segment(s) still to "
            "destroy or keep, against the holds then in force",
            "interrupted purge {run} will be completed first: {left} segment(s) still to "
            "destroy or keep, against the holds then in force",
            left,
        ).format(run=run, left=left)
        for run, left in report.pending.items()
    ]
    out += [_("completed interrupted purge {run}").format(run=run) for run in report.resumed]
    for p in report.plans:
        if not (p.ids or p.held):
            continue
        n = p.count
        planned = (
            ngettext(
                "{camera}: would destroy {n} segment(s), kept {held} held",
                "{camera}: would destroy {n} segment(s), kept {held} held",
                n,
            )
            if report.dry_run
            else ngettext(
                "{camera}: planned to destroy {n} segment(s), kept {held} held",
                "{camera}: planned to destroy {n} segment(s), kept {held} held",
                n,
            )
        )
        out.append(planned.format(camera=p.camera_id, n=n, held=p.held))
    if not report.dry_run and (report.destroyed or report.absent or report.spared):
        out.append(
            ngettext(
                "destroyed {n} segment(s), {bytes:,} bytes; {absent} already absent; "
                "{spared} kept by a hold placed since the plan",
                "destroyed {n} segment(s), {bytes:,} bytes; {absent} already absent; "
                "{spared} kept by a hold placed since the plan",
                report.destroyed,
            ).format(
                n=report.destroyed,
                bytes=report.bytes,
                absent=report.absent,
                spared=report.spared,
            )
        )
    out += [_("destruction certificate {path}").format(path=path) for path in report.certificates]
    out += [
        _(
            "export of requisition {requisition} destroyed (handed over more than a month ago)"
        ).format(requisition=rid)
        for rid in report.exports
    ]
    out += [
        _(
            "files another system exported for requisition {requisition} destroyed (denied or "
            "cancelled, older than any retention)"
        ).format(requisition=rid)
        for rid in report.attachments
    ]
    return out
