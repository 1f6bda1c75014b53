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

from collections import defaultdict
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custody import merkle
from custody.canonical import canonical_bytes
from custody.db import Cursor
from custody.errors import InvalidState
from custody.files import exclusive, fsync_dir
from custody.keys import Signer
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
        """The Merkle leaf of a destroyed segment: `path\nsize\nsha256\nstart_us` (a
        fixed line format: a million of them are hashed in a purge)."""
        return f"{self.path}\n{self.size}\n{self.sha256}\n{self.start_us}".encode()


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
    certificates: list[Path] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)  # requisitions whose export went

    @property
    def nothing_to_do(self) -> bool:
        return not any(p.doomed for p in self.plans) and not self.resumed and not self.exports


def purge_lock(home: Path) -> AbstractContextManager[None]:
    """Only one purge at a time."""
    return exclusive(home / "purge.lock", "another purge is running")


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


def purge(
    site: Site,
    actor: str,
    now: int,
    *,
    dry_run: bool = False,
    signer: Signer | None = None,
) -> PurgeReport:
    """Run (or, with `dry_run`, only plan) the retention purge as of `now`; with a
    signer, each run leaves a signed destruction certificate."""
    with purge_lock(site.settings.home):
        with site.db.read() as cur:
            _check_clock(cur, now)
        plans = plan(site, now)
        report = PurgeReport(None, dry_run, plans)
        if dry_run:
            return report
        report.resumed = _resume(site, actor, report, signer)
        report.exports = _purge_exports(site, actor, now)
        doomed = [d for p in plans for d in p.doomed]
        if not doomed:
            return report
        run = _intent(site, actor, now, plans)
        report.run = run
        gone, seqs = _destroy(site, actor, run, doomed, report)
        if signer is not None:
            report.certificates.append(
                certificate(site, run, now, actor, gone, plans, seqs, report.failures, signer)
            )
        return report


EXPORT_KEEP_US = 30 * DAY_US  # CSI L252-3: at most one month after transmission


def _purge_exports(site: Site, actor: str, now: int) -> list[str]:
    """Exports kept at the CSV after handover go one month after it, unless a hold of
    their requisition (a procedure that still needs them) is active."""
    import shutil

    limit = _utc(now - EXPORT_KEEP_US)
    with site.db.read() as cur:
        due = cur.execute(
            "SELECT r.id, r.export_path, r.manifest_sha256, r.pv_number FROM requisition r "
            "WHERE r.handed_at IS NOT NULL AND r.handed_at <= ? AND r.export_path IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM hold h WHERE h.requisition_id = r.id "
            "AND h.released_at IS NULL)",
            [limit],
        ).fetchall()
    gone = []
    for rid, path, manifest, pv in due:
        if Path(path).is_dir():
            shutil.rmtree(path)
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
                        data={"path": path, "manifest_sha256": manifest},
                    )
                ],
            )
        gone.append(rid)
    return gone


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


def _destroy(
    site: Site, actor: str, run: int, doomed: list[Doomed], report: PurgeReport
) -> tuple[list[Doomed], list[int]]:
    gone: list[Doomed] = []
    for item in doomed:
        try:
            item.file.unlink(missing_ok=True)
            gone.append(item)
        except OSError as exc:
            report.failures.append(f"{item.path}: {exc.strerror}")
    for directory in {d.file.parent for d in gone}:
        if directory.is_dir():
            fsync_dir(directory)
    report.destroyed += len(gone)
    report.bytes += sum(d.size for d in gone)
    return gone, _outcome(site, actor, run, gone, report.failures)


def _outcome(
    site: Site, actor: str, run: int, gone: list[Doomed], failures: list[str]
) -> list[int]:
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
        appended = site.ledger.append_in(
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
    return [a.seq for a in appended]


def _resume(site: Site, actor: str, report: PurgeReport, signer: Signer | None) -> list[int]:
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
        gone, seqs = _destroy(site, actor, run, doomed, report)
        if signer is not None:
            with site.db.read() as cur:
                as_of = cur.execute("SELECT now_utc FROM purge_run WHERE id = ?", [run]).fetchone()[
                    0
                ]
            plans = _plans_of(gone)
            report.certificates.append(
                certificate(
                    site, run, _parse_utc(as_of), actor, gone, plans, seqs, report.failures, signer
                )
            )
    return runs


def _plans_of(items: list[Doomed]) -> list[CameraPlan]:
    plans: dict[str, CameraPlan] = {}
    for d in items:
        plans.setdefault(d.camera_id, CameraPlan(d.camera_id)).doomed.append(d)
    return list(plans.values())


def _parse_utc(text: str) -> int:
    from requisition.timewindow import parse_time, to_us

    return to_us(parse_time(text, "UTC"))


def certificate(
    site: Site,
    run: int,
    as_of: int,
    actor: str,
    gone: list[Doomed],
    plans: list[CameraPlan],
    seqs: list[int],
    failures: list[str],
    signer: Signer,
) -> Path:
    """A signed destruction certificate: canonical JSON, its PDF, the public key."""
    from custody.checkpoints import read_identity
    from custody.files import write_atomic
    from custody.keys import der_sha256, public_pem, ssh_fingerprint
    from custody.signatures import sign_raw
    from exporters.documents import fr_time, render

    destroyed = {d.segment_id for d in gone}
    with site.db.read() as cur:
        identity = read_identity(cur)
    cameras: list[dict[str, Any]] = []
    for p in plans:
        items = [d for d in p.doomed if d.segment_id in destroyed]
        if not items:
            continue
        done = CameraPlan(p.camera_id, items)
        cameras.append(
            {
                "camera": p.camera_id,
                "segments": len(items),
                "bytes": sum(d.size for d in items),
                "first_utc": _utc(items[0].start_us),
                "last_end_utc": _utc(items[-1].end_us),
                "merkle_root": done.merkle_root,
                "held_segments": p.held,
            }
        )
    body = canonical_bytes(
        {
            "format": "scelle-destruction/1",
            "site": {"name": identity.key_name, "ledger_origin": identity.origin},
            "purge": run,
            "as_of_utc": _utc(as_of),
            "completed_utc": _utc(_now()),
            "actor": actor,
            "cameras": cameras,
            "failures": failures,
            "ledger_entries": seqs,
            "signer": {
                "ssh_fingerprint": ssh_fingerprint(signer.public_key),
                "der_sha256": der_sha256(signer.public_key),
            },
        }
    )
    root = site.settings.home / "certificates" / f"purge-{run:06d}"
    write_atomic(root / "certificate.json", body)
    write_atomic(root / "certificate.json.sig", sign_raw(signer, body))
    write_atomic(root / "keys" / "signer.pub.pem", public_pem(signer.public_key).encode())
    zone = site.settings.timezone
    document = render(
        "destruction",
        {
            "csv": {
                "name": site.settings.csv_name,
                "authorisation": site.settings.csv_authorisation,
            },
            "run_at": fr_time(_utc(as_of), zone),
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
            ],
            "held": [
                f"{p.camera_id} : {p.held} segment(s) sous main de justice" for p in plans if p.held
            ],
            "merkle_root": "; ".join(f"{c['camera']} {c['merkle_root']}" for c in cameras),
            "ledger_entries": ", ".join(str(s) for s in seqs),
            "ssh_fingerprint": ssh_fingerprint(signer.public_key),
        },
    )
    for path in document.write(root / "documents", "destruction"):
        write_atomic(path.with_name(path.name + ".sig"), sign_raw(signer, path.read_bytes()))
    with site.db.write() as cur:
        cur.execute("UPDATE purge_run SET certificate = ? WHERE id = ?", [str(root), run])
    return root


def _now() -> int:
    from requisition.timewindow import now_us

    return now_us()


def summary(report: PurgeReport) -> dict[str, Any]:
    return {
        "run": report.run,
        "dry_run": report.dry_run,
        "resumed": report.resumed,
        "exports_destroyed": report.exports,
        "destroyed": report.destroyed,
        "bytes": report.bytes,
        "failures": report.failures,
        "certificates": [str(p) for p in report.certificates],
        "cameras": [
            {"camera": p.camera_id, "to_destroy": len(p.doomed), "held": p.held}
            for p in report.plans
            if p.doomed or p.held
        ],
    }
