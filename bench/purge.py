"""Purge benchmark: a night at a 770-camera centre (one day of one-minute segments,
1,108,800 small files), scelle purge against `find -delete` on an identical tree, the
purge's peak memory, and the ledger entries it wrote.

Two identical trees are written (scelle's store layout, one small file per one-minute
segment); the segments of the first are indexed directly in the database (this measures
the purge, not the scan). Every segment is past retention. The purge runs in a child
process (fork) so that its peak resident memory is its own: the growth above what the
child started with, through the deletions and in all (the certificate's PDF, laid out by
WeasyPrint, grows with the cameras). Goals (issue 19): purge time <= 1.5x `find -delete`,
memory bounded (under 200 MB of growth), ledger entries that grow with cameras and runs,
not segments.

Usage: python bench/purge.py [--segments 1108800] [--cameras 770]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custody.config import load_settings
from custody.timewindow import parse_time, to_us
from exporters.index import NewSegment, record_ingest
from exporters.stores.scelle_dir import ScelleDirStore
from requisition.cameras import CameraSpec, add_cameras
from requisition.purge import purge
from requisition.site import init_site, open_site

if TYPE_CHECKING:
    from custody.config import Settings

MINUTE = 60_000_000


def write_tree(root: Path, cameras: int, per_camera: int, start: int) -> list[tuple[str, str, int]]:
    store = ScelleDirStore(root)
    rows = []
    for c in range(cameras):
        cam = f"C-{c:04d}"
        last_dir = None
        for i in range(per_camera):
            begin = start + i * MINUTE
            path = store.segment_path(cam, begin, MINUTE)
            if path.parent != last_dir:
                path.parent.mkdir(parents=True, exist_ok=True)
                last_dir = path.parent
            path.write_bytes(b"segment %d %d\n" % (c, i))
            rows.append((cam, str(path.relative_to(root)), begin))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=1_108_800)
    parser.add_argument("--cameras", type=int, default=770)
    args = parser.parse_args()
    per_camera = args.segments // args.cameras
    with tempfile.TemporaryDirectory(prefix="scelle-bench-", dir=os.environ.get("BENCH_TMP")) as d:
        root = Path(d)
        settings = load_settings({"home": str(root / "site")}, environ={})
        site, _ = init_site(settings, b"bench")
        start = to_us(parse_time("2026-10-01T00:00", "UTC"))
        t = time.perf_counter()
        rows = write_tree(root / "store", args.cameras, per_camera, start)
        write_tree(root / "copy", args.cameras, per_camera, start)
        print(f"two trees of {len(rows):,} files written in {time.perf_counter() - t:.0f} s")
        specs = [
            CameraSpec(
                f"C-{c:04d}",
                "bench",
                "bench",
                "Lyon",
                "AP-0",
                "2030-01-01",
                retention_days="1",
                store_path=str(root / "store"),
            ).to_camera(settings.home)
            for c in range(args.cameras)
        ]
        add_cameras(site, specs, "cron", "benchmark cameras")
        # Indexed as a scan would (hash, one ingest entry per camera and hour), without
        # the scan's cost: the purge checks every row against its ingest entry's root.
        t = time.perf_counter()
        by_camera: dict[str, list[NewSegment]] = {}
        for cam, path, begin in rows:
            data = (root / "store" / path).read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            by_camera.setdefault(cam, []).append(
                NewSegment(path, begin, begin + MINUTE, len(data), digest)
            )
        with site.db.write() as cur:
            for camera in specs:
                record_ingest(site, cur, camera, by_camera[camera.id], "cron")
        print(f"{len(rows):,} segments indexed in {time.perf_counter() - t:.0f} s")
        before = site.ledger.size()
        now = start + (per_camera + 3 * 24 * 60) * MINUTE
        expected = len(rows)
        site.close()  # the child opens its own connection
        del rows, by_camera, site
        gc.collect()
        ours, grown, deleting = _purge_in_child(settings, now, expected)
        site = open_site(settings)
        written = site.ledger.size() - before
        site.close()
        subprocess.run(["sync"], check=True)
        t = time.perf_counter()
        subprocess.run(["find", str(root / "copy"), "-type", "f", "-delete"], check=True)
        baseline = time.perf_counter() - t
        print(f"purge of {expected:,} expired segments on {args.cameras} cameras:")
        print(f"  scelle purge (plan … certificate, compaction)  {ours:7.1f} s")
        print(f"  find -type f -delete on the same tree                     {baseline:7.1f} s")
        print(f"  ratio {ours / baseline:.2f}   (goal <= 1.5)")
        print(
            f"  peak memory growth through the deletions {deleting / 2**20:.0f} MB   "
            "(goal < 200 MB; the plan's own: bench/scale.py)"
        )
        print(
            f"  peak memory growth of the whole purge {grown / 2**20:.0f} MB   "
            f"(with the certificate's PDF of {args.cameras} cameras, laid out by WeasyPrint)"
        )
        print(
            f"  ledger entries written: {written} ({written / args.cameras:.0f} per camera, "
            f"{expected / max(written, 1):,.0f} segments per entry)"
        )


def _rss() -> int:
    """This process's resident memory now, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _purge_in_child(settings: Settings, now: int, expected: int) -> tuple[float, int, int]:
    """Run the purge in a forked child; its wall time, its peak resident memory above
    what it started with (the child's peak, not the benchmark's own lists), and that
    peak once the files are deleted (before the outcome and the certificate)."""
    reader, writer = os.pipe()
    t = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(reader)
            os.write(writer, b"%d " % _rss())  # what the child starts with

            def step(name: str) -> None:
                if name == "deleted":
                    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
                    os.write(writer, b"%d" % peak)

            site = open_site(settings)
            report = purge(site, "cron", now, signer=site.signer(b"bench"), step=step)
            site.close()
            code = 0 if report.destroyed == expected else 2
            if code:
                print(report.failures[:3], file=sys.stderr)
        finally:
            os._exit(code)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        start_rss, deleting = map(int, pipe.read().split())
    _, status = os.waitpid(pid, 0)
    took = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"the purge failed (status {status})")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return took, peak - start_rss, deleting - start_rss


if __name__ == "__main__":
    main()
