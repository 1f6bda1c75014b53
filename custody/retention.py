"""The retention purge: destroy exactly what has expired, keep exactly what is held.

For each camera, a segment is destroyed when all of it is older than the camera's
retention (reference time, so the recorder's clock offset is applied) and no active
hold overlaps it. A segment that straddles the boundary is kept until it has wholly
expired. Crash safety: the intent (which segments, their Merkle root) is written to the
database and the ledger before any file is deleted, the outcome after; a purge killed
in between is completed by the next run. One purge at a time (an flock that dies with
its process). A clock that went backwards is refused: a purge must never run "late"
by mistake nor re-date what it destroys.

The ledger grows by two entries per camera and run (intent, outcome), never per segment.
"""

from __future__ import annotations

import fcntl
import os
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custody import merkle
from custody.canonical import canonical_bytes
from custody.db import Cursor
from custody.errors import InvalidState
from custody.ledger import Record
from custody.site import Site

DAY_US = 86_400_000_000


@dataclass(frozen=True)
class Doomed:
    segment_id: int
    camera_id: str
    file: Path
    path: str
    start_us: int
    end_us: int
    size: int
    sha256: str

    def record(self) -> bytes:
        return canonical_bytes(
            {"path": self.path, "size": self.size, "sha256": self.sha256, "start_us": self.start_us}
        )


@dataclass
class CameraPlan:
    camera_id: str
    doomed: list[Doomed] = field(default_factory=list)
    held: int = 0

    @property
    def merkle_root(self) -> str:
        leaves = [merkle.leaf_hash(d.record()) for d in self.doomed]
        return merkle.levels_root(merkle.tree_levels(leaves), len(leaves)).hex()


@dataclass
class PurgeReport:
    run: int | None
    dry_run: bool
    plans: list[CameraPlan]
    destroyed: int = 0
    bytes: int = 0
    failures: list[str] = field(default_factory=list)
    resumed: list[int] = field(default_factory=list)

    @property
    def nothing_to_do(self) -> bool:
        return not any(p.doomed for p in self.plans) and not self.resumed


@contextmanager
def purge_lock(home: Path) -> Iterator[None]:
    """Only one purge at a time; the kernel drops the lock if the holder dies."""
    path = home / "purge.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise InvalidState("another purge is running", hint="wait for it to finish") from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def _utc(us: int) -> str:
    from requisition.timewindow import utc_text

    return utc_text(us)


def _check_clock(cur: Cursor, now: int) -> None:
    last = cur.execute("SELECT MAX(now_utc) FROM purge_run").fetchone()[0]
    if last and last > _utc(now):
        raise InvalidState(
            f"the clock says {_utc(now)}, before the last purge ({last}): refusing to purge",
            hint="check the system clock (NTP) before running the purge again",
        )


def plan(site: Site, now: int) -> list[CameraPlan]:
    """What a purge at `now` would destroy and keep, camera by camera."""
    from requisition.cameras import list_cameras

    plans = []
    with site.db.read() as cur:
        for camera in list_cameras(site):
            offset = camera.clock_offset_ms * 1000
            cutoff = now - camera.retention_days * DAY_US  # reference time
            holds = cur.execute(
                "SELECT start_us, end_us FROM hold WHERE camera_id = ? AND released_at IS NULL",
                [camera.id],
            ).fetchall()
            cur.execute(
                "SELECT id, path, start_us, end_us, size, sha256 FROM segment WHERE camera_id = ? "
                "AND end_us <= ? AND destroyed_at IS NULL AND purge_run IS NULL ORDER BY start_us",
                [camera.id, cutoff + offset],
            )
            result = CameraPlan(camera.id)
            for seg_id, path, start, end, size, sha in cur.fetchall():
                ref_start, ref_end = start - offset, end - offset
                if any(h_start < ref_end and h_end > ref_start for h_start, h_end in holds):
                    result.held += 1
                    continue
                result.doomed.append(
                    Doomed(
                        seg_id,
                        camera.id,
                        Path(camera.store_path) / path,
                        path,
                        start,
                        end,
                        size,
                        sha,
                    )
                )
            plans.append(result)
    return plans


def purge(site: Site, actor: str, now: int, *, dry_run: bool = False) -> PurgeReport:
    """Run (or, with `dry_run`, only plan) the retention purge as of `now`."""
    with purge_lock(site.settings.home):
        with site.db.read() as cur:
            _check_clock(cur, now)
        plans = plan(site, now)
        report = PurgeReport(None, dry_run, plans)
        if dry_run:
            return report
        report.resumed = _resume(site, actor, report)
        doomed = [d for p in plans for d in p.doomed]
        if not doomed:
            return report
        run = _intent(site, actor, now, plans)
        report.run = run
        _destroy(site, actor, run, doomed, report)
        return report


def _intent(site: Site, actor: str, now: int, plans: list[CameraPlan]) -> int:
    started = _utc(now)
    doomed = [d for p in plans for d in p.doomed]
    with site.db.write() as cur:
        cur.execute(
            "INSERT INTO purge_run (started_at, now_utc, actor, state, segments, bytes, failures) "
            "VALUES (?, ?, ?, 'intent', ?, ?, 0)",
            [started, started, actor, len(doomed), sum(d.size for d in doomed)],
        )
        run = int(cur.execute("SELECT MAX(id) FROM purge_run").fetchone()[0])
        for start in range(0, len(doomed), 500):
            ids = [d.segment_id for d in doomed[start : start + 500]]
            cur.execute(
                f"UPDATE segment SET purge_run = ? WHERE id IN ({', '.join('?' * len(ids))})",
                [run, *ids],
            )
        site.ledger.append_in(
            cur,
            actor,
            [
                Record(
                    "footage.destroy.intent",
                    {"camera": p.camera_id, "purge": run},
                    "retention period expired (CSI L252-5)",
                    data={
                        "segments": len(p.doomed),
                        "bytes": sum(d.size for d in p.doomed),
                        "first_utc": _utc(p.doomed[0].start_us),
                        "last_end_utc": _utc(p.doomed[-1].end_us),
                        "merkle_root": p.merkle_root,
                        "held": p.held,
                    },
                )
                for p in plans
                if p.doomed
            ],
        )
    return run


def _destroy(site: Site, actor: str, run: int, doomed: list[Doomed], report: PurgeReport) -> None:
    gone: list[Doomed] = []
    for item in doomed:
        try:
            item.file.unlink(missing_ok=True)
            gone.append(item)
        except OSError as exc:
            report.failures.append(f"{item.path}: {exc.strerror}")
    for directory in {d.file.parent for d in gone}:
        if directory.is_dir():
            from custody.files import fsync_dir

            fsync_dir(directory)
    report.destroyed += len(gone)
    report.bytes += sum(d.size for d in gone)
    _outcome(site, actor, run, gone, report.failures)


def _outcome(site: Site, actor: str, run: int, gone: list[Doomed], failures: list[str]) -> None:
    now = _utc(_now())
    by_camera: dict[str, list[Doomed]] = defaultdict(list)
    for d in gone:
        by_camera[d.camera_id].append(d)
    with site.db.write() as cur:
        for start in range(0, len(gone), 500):
            ids = [d.segment_id for d in gone[start : start + 500]]
            cur.execute(
                f"UPDATE segment SET destroyed_at = ? WHERE id IN ({', '.join('?' * len(ids))})",
                [now, *ids],
            )
        cur.execute(
            "UPDATE purge_run SET state = ?, failures = ? WHERE id = ?",
            ["partial" if failures else "done", len(failures), run],
        )
        site.ledger.append_in(
            cur,
            actor,
            [
                Record(
                    "footage.destroy",
                    {"camera": camera, "purge": run},
                    "retention period expired (CSI L252-5)",
                    data={"segments": len(items), "bytes": sum(d.size for d in items)},
                )
                for camera, items in sorted(by_camera.items())
            ]
            + (
                [
                    Record(
                        "footage.destroy.failed",
                        {"purge": run},
                        "some segments could not be deleted",
                        data={"failures": failures[:100], "count": len(failures)},
                    )
                ]
                if failures
                else []
            ),
        )


def _resume(site: Site, actor: str, report: PurgeReport) -> list[int]:
    """Complete purges that recorded their intent and died before their outcome."""
    with site.db.read() as cur:
        runs = [
            r for (r,) in cur.execute("SELECT id FROM purge_run WHERE state = 'intent'").fetchall()
        ]
    for run in runs:
        with site.db.read() as cur:
            rows = cur.execute(
                "SELECT s.id, s.camera_id, c.store_path, s.path, s.start_us, s.end_us, s.size, "
                "s.sha256 FROM segment s JOIN camera c ON c.id = s.camera_id "
                "WHERE s.purge_run = ? AND s.destroyed_at IS NULL",
                [run],
            ).fetchall()
        doomed = [
            Doomed(i, cam, Path(root) / path, path, s, e, size, sha)
            for i, cam, root, path, s, e, size, sha in rows
        ]
        _destroy(site, actor, run, doomed, report)
    return runs


def _now() -> int:
    from requisition.timewindow import now_us

    return now_us()


def summary(report: PurgeReport) -> dict[str, Any]:
    return {
        "run": report.run,
        "dry_run": report.dry_run,
        "resumed": report.resumed,
        "destroyed": report.destroyed,
        "bytes": report.bytes,
        "failures": report.failures,
        "cameras": [
            {"camera": p.camera_id, "to_destroy": len(p.doomed), "held": p.held}
            for p in report.plans
            if p.doomed or p.held
        ],
    }
