"""The footage index at a real centre's volume (issue 19): 770 cameras of one-minute
segments, `--live` segments in the index and `--history-days` of destroyed footage
before them, as certified purges leave it (an ingest batch per camera and hour, a
destroyed period per camera and day: requisition/purge_history.py).

The rows are synthesised straight into the index as a scan records them (segment rows,
one ingest entry per camera and hour with the Merkle root the purge checks), without
files: this measures the index, not the disk. Printed, in the library, each beside its
yardstick in the same run:

- `footage find` of a 10-minute window (median of 50, milliseconds), first touched and
  again;
- the purge's plan of a day's expiry (a dry run) beside a bare SQL fetch of the same
  rows, with the plan's peak Python memory;
- `status` and the camera list;
- the database's size per million live segments.

Run it at 0 and at a year of history to see whether the plan's time grows with history.

Usage: python bench/scale.py [--live 1000000] [--history-days 0] [--cameras 770]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custody.config import load_settings
from custody.site import Site
from custody.timewindow import Window, now_us
from exporters.index import NewSegment, find, footage_summary, record_ingest
from exporters.models import Camera
from exporters.stores.scelle_dir import ScelleDirStore
from requisition.cameras import CameraSpec, add_cameras, list_cameras
from requisition.purge import plan
from requisition.site import init_site
from requisition.status import status

MINUTE = 60_000_000
HOUR = 60 * MINUTE
DAY = 1440 * MINUTE
RETENTION_DAYS = 30


def synthesise(args: argparse.Namespace, root: Path) -> tuple[Site, int, int]:
    """A site whose index holds the rows; (site, first live start, as_of of the plan)."""
    settings = load_settings({"home": str(root / "site")}, environ={})
    site, _ = init_site(settings, b"bench")
    per_camera = args.live // args.cameras
    expire = min(args.expire_minutes, per_camera)
    as_of = now_us() // MINUTE * MINUTE
    first = as_of - RETENTION_DAYS * DAY - expire * MINUTE  # the oldest `expire` minutes go
    store = ScelleDirStore(root / "store")
    cameras = [
        CameraSpec(
            f"C-{c:04d}", "bench", "bench", "Lyon", "AP-0", "2030-01-01",
            retention_days=str(RETENTION_DAYS), store_path=str(root / "store"),
        ).to_camera(settings.home)
        for c in range(args.cameras)
    ]  # fmt: skip
    add_cameras(site, cameras, "cron", "benchmark cameras")
    t = time.perf_counter()
    for camera in cameras:
        segments = []
        for i in range(per_camera):
            begin = first + i * MINUTE
            path = str(store.segment_path(camera.id, begin, MINUTE).relative_to(store.root))
            segments.append(NewSegment(path, begin, begin + MINUTE, 1_000_000, "ab" * 32))
        with site.db.write() as cur:
            record_ingest(site, cur, camera, segments, "cron")
    print(f"{per_camera * args.cameras:,} live segments indexed in {time.perf_counter() - t:.0f} s")
    if args.history_days:
        t = time.perf_counter()
        _history(site, cameras, args.history_days, first)
        destroyed = args.history_days * 1440 * len(cameras)
        print(f"{destroyed:,} destroyed segments of history in {time.perf_counter() - t:.0f} s")
    return site, first, as_of


def _history(site: Site, cameras: list[Camera], days: int, first: int) -> None:
    """Destroyed footage before the live one, as certified purges leave it: per camera,
    one ingest batch per hour (they stay, as the ledger's entries do) and one period per
    day (requisition/purge_history.py); one purge run a day for all cameras."""
    start = first - days * DAY
    with site.db.write() as cur:
        runs = []
        for _day in range(days):
            cur.execute(
                "INSERT INTO purge_run (started_at, now_utc, actor, state, segments, bytes, "
                "failures, certificate) VALUES (?, ?, 'cron', 'done', ?, 0, 0, 'x') RETURNING id",
                ["2025-01-01T00:00:00.000000Z"] * 2 + [24 * 60 * len(cameras)],
            )
            runs.append(cur.fetchone()[0])
        for camera in cameras:
            cur.executemany(
                "INSERT INTO ingest_batch (camera_id, hour_us, segments, bytes, merkle_root, "
                "ledger_seq) VALUES (?, ?, 60, 60000000, ?, 0)",
                [(camera.id, start + h * HOUR, "ab" * 32) for h in range(days * 24)],
            )
            cur.executemany(
                "INSERT INTO destroyed_period (purge_run, camera_id, start_us, end_us, segments, "
                "bytes, destroyed_at, last_destroyed_at, cut_us, tail_segments) "
                "VALUES (?, ?, ?, ?, 1440, 1440000000, '2025-01-01T00:00:00.000000Z', "
                "'2025-01-01T00:00:00.000000Z', ?, 0)",
                [
                    (
                        runs[d],
                        camera.id,
                        start + d * DAY,
                        start + (d + 1) * DAY,
                        start + (d + 1) * DAY,
                    )
                    for d in range(days)
                ],
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live", type=int, default=1_000_000)
    parser.add_argument("--history-days", type=int, default=0)
    parser.add_argument("--cameras", type=int, default=770)
    parser.add_argument("--expire-minutes", type=int, default=1440, help="per camera")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scelle-scale-", dir=os.environ.get("BENCH_TMP")) as d:
        root = Path(d)
        site, first, as_of = synthesise(args, root)
        cameras = list_cameras(site)
        live_minutes = args.live // args.cameras
        rng = random.Random(19)
        windows = []
        for _ in range(50):
            camera = rng.choice(cameras)
            start = first + rng.randrange(max(1, live_minutes - 10)) * MINUTE
            windows.append((camera, Window(start, start + 10 * MINUTE)))
        # Each window twice: first touched (its pages perhaps not in memory: at 33 M the
        # index outgrows what a small machine caches), then again, which is what the
        # index's own work costs (O(log n + answer)) once the disk is out of it.
        passes: list[list[float]] = [[], []]
        for times in passes:
            for camera, window in windows:
                t = time.perf_counter()
                found = find(site, camera, window, check=False)
                times.append(time.perf_counter() - t)
                assert len(found.segments) >= min(10, live_minutes), len(found.segments)
        print(f"index: {args.live:,} live, {args.history_days} days of destroyed history, "
              f"{args.cameras} cameras")  # fmt: skip
        first_touch, again = (statistics.median(times) * 1000 for times in passes)
        print(f"  footage find, 10 minutes     {first_touch:8.1f} ms median, first touch; "
              f"{again:.1f} ms again (goal < 50)")  # fmt: skip

        planned, fetched = [], []
        for _ in range(3):  # alternated, so that neither runs on a warmer cache
            t = time.perf_counter()
            with site.db.read() as cur:
                bare = 0
                for camera in cameras:
                    cur.execute(
                        "SELECT id, start_us, end_us, size FROM segment "  # what the plan reads
                        "WHERE camera_id = ? AND end_us <= ? AND destroyed_at IS NULL "
                        "AND purge_run IS NULL",
                        [camera.id, as_of - RETENTION_DAYS * DAY],
                    )
                    bare += len(cur.fetchall())
            fetched.append(time.perf_counter() - t)
            t = time.perf_counter()
            plans = plan(site, as_of)
            planned.append(time.perf_counter() - t)
            del plans
        tracemalloc.start()  # a last plan, for its memory: tracing slows it down
        plans = plan(site, as_of)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        doomed = sum(p.count for p in plans)
        assert bare == doomed, (bare, doomed)
        planned_s, fetched_s = statistics.median(planned), statistics.median(fetched)
        print(f"  purge plan, {doomed:,} expiring  {planned_s:8.2f} s, peak {peak / 2**20:.0f} MB "
              "(goal < 200 MB; median of 3)")  # fmt: skip
        print(f"  bare SQL fetch of the same     {fetched_s:8.2f} s")
        print(f"  ratio                          {planned_s / fetched_s:8.2f}   (goal <= 2)")
        t = time.perf_counter()
        status(site)
        shown = time.perf_counter() - t
        t = time.perf_counter()
        list_cameras(site)
        listed = time.perf_counter() - t
        t = time.perf_counter()
        footage_summary(site, cameras[0])
        summed = time.perf_counter() - t
        print(f"  status                         {shown:8.2f} s   (goal < 1)")
        print(f"  camera list                    {listed:8.2f} s   (goal < 1)")
        print(f"  camera show (its live footage) {summed:8.2f} s")
        site.close()
        size = sum(p.stat().st_size for p in (root / "site").glob("scelle.db*"))
        print(f"  database {size / 2**20:,.0f} MB: {size / 2**20 / (args.live / 1e6):,.0f} MB "
              "per million live segments")  # fmt: skip


if __name__ == "__main__":
    main()
