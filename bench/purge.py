"""Purge benchmark: 1,000,000 indexed segments (small files), scelle purge against
`find -delete` on an identical tree, and the ledger entries the purge wrote.

Two identical trees are written (scelle's store layout, one small file per one-minute
segment); the segments of the first are indexed directly in the database (this measures
the purge, not the scan). Every segment is past retention. Goal: purge time <= 2x
`find -delete`, and ledger entries that grow with cameras and runs, not with segments.

Usage: python bench/purge.py [--segments 1000000] [--cameras 50]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custody.config import load_settings
from custody.timewindow import parse_time, to_us
from exporters.index import NewSegment, record_ingest
from exporters.stores.scelle_dir import ScelleDirStore
from requisition.cameras import CameraSpec, add_cameras
from requisition.purge import purge
from requisition.site import init_site

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
    parser.add_argument("--segments", type=int, default=1_000_000)
    parser.add_argument("--cameras", type=int, default=50)
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
        t = time.perf_counter()
        report = purge(site, "cron", now, signer=site.signer(b"bench"))
        ours = time.perf_counter() - t
        assert report.destroyed == len(rows), report.failures[:3]
        written = site.ledger.size() - before
        site.close()
        subprocess.run(["sync"], check=True)
        t = time.perf_counter()
        subprocess.run(["find", str(root / "copy"), "-type", "f", "-delete"], check=True)
        baseline = time.perf_counter() - t
        print(f"purge of {len(rows):,} expired segments on {args.cameras} cameras:")
        print(f"  scelle purge (plan, intent, unlink, outcome, certificate)  {ours:7.1f} s")
        print(f"  find -type f -delete on the same tree                     {baseline:7.1f} s")
        print(f"  ratio {ours / baseline:.2f}   (goal <= 2)")
        print(
            f"  ledger entries written: {written} ({written / args.cameras:.0f} per camera, "
            f"{len(rows) / max(written, 1):,.0f} segments per entry)"
        )


if __name__ == "__main__":
    main()
