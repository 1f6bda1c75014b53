"""Footage scan at a Frigate centre's pace (issue 19): many small ten-second segments.

A 770-camera Frigate centre writes 77 ten-second segments a second; the scan must keep
up with margin, so its per-file work (listing, stat, index rows, ledger batches) must be
small beside the hash. On `--files` real MP4 segments (one encoded with real ffmpeg, then
written again with a different tag in its metadata, so that every file hashes
differently) in Frigate's layout with its `frigate.db` (or scelle's own layout, `--store
scelle`), spread over `--cameras` cameras, it prints, from one run and alternating which
goes first:

- a plain `hashlib.file_digest` loop over the same files (the yardstick);
- `scan_all` (what `scelle footage scan` calls) on a fresh site: files per second, the
  ratio to the loop (goal >= 0.8) and to the 77 files/s the centre writes;
- `scelle footage scan` itself, once, on a fresh site (process start and checkpoint
  included).

Warm by default: every file is read once before the rounds, so both steps read from the
page cache and the difference is per-file overhead; `--cold` drops the page cache before
each step instead (root only).

Usage: python bench/scan.py [--files 20000] [--cameras 77] [--rounds 3] [--store frigate]
       [--cold] [--no-cli]
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custody.config import load_settings
from custody.site import Site
from custody.timewindow import parse_window
from exporters.ffmpeg import ffmpeg_exe
from exporters.index import camera_store
from exporters.models import Camera
from exporters.stores.frigate import DATABASE
from requisition import agents
from requisition.cameras import CameraSpec, add_cameras, list_cameras, scan_all
from requisition.site import init_site

SECOND = 1_000_000
CENTRE_RATE = 77  # files a second: 770 cameras, one ten-second segment each
TAG = b"scelle-bench-tag-0000000000"  # in the MP4's metadata; rewritten in each copy
PASSPHRASE = "bench"


def encode_segment(out: Path) -> bytes:
    """One ten-second low-resolution H.264 segment, as a recorder's detect stream gives."""
    subprocess.run(
        [
            ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi",
            "-i", "testsrc2=size=640x360:rate=10", "-t", "10", "-c:v", "libx264",
            "-preset", "veryfast", "-b:v", "160k", "-g", "10",
            "-metadata", f"comment={TAG.decode()}", "-y", str(out),
        ],
        check=True,
    )  # fmt: skip
    data = out.read_bytes()
    assert data.count(TAG) == 1, "the tag must appear once in the file"
    return data


def new_site(home: Path, store: Path, kind: str, cameras: int) -> tuple[Site, list[Camera]]:
    settings = load_settings({"home": str(home)}, environ={})
    site, _ = init_site(
        settings,
        PASSPHRASE.encode(),
        then=lambda s: agents.bootstrap(s, getpass.getuser(), "Bench Admin", "AR-0"),
    )  # the login that runs the CLI's scan below may index footage
    specs = [
        CameraSpec(
            f"C-{c:03d}", f"Camera {c}", "Bench", "Lyon", "AP-0", "2030-01-01",
            store_kind=kind, store_path=str(store), store_camera=f"cam{c:03d}",
        ).to_camera(home)
        for c in range(cameras)
    ]  # fmt: skip
    add_cameras(site, specs, "bench", "benchmark cameras")
    return site, list_cameras(site)


def write_store(root: Path, kind: str, files: int, cameras: int) -> list[Path]:
    """`files` distinct segments, round robin over the cameras as a centre records them,
    from 07:40 UTC (so each camera's files span hour directories); for Frigate, its
    database with each segment's exact times, 250 ms past the named second."""
    store = root / "store"
    data = encode_segment(root / "source.mp4")
    site, cams = new_site(root / "layout-site", store, kind, 1)
    names = camera_store(cams[0])
    site.close()
    first = parse_window("2026-11-20T08:40", "2026-11-20T08:41", "Europe/Paris", 24).start
    past = time.time() - 3600
    paths, rows = [], []
    for i in range(files):
        camera, step = f"cam{i % cameras:03d}", i // cameras
        start = first + step * 10 * SECOND
        dest = names.segment_path(camera, start, 10 * SECOND)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data.replace(TAG, f"{TAG[:-10].decode()}{i:010d}".encode()))
        os.utime(dest, (past, past))
        paths.append(dest)
        exact = (start + 250_000) / SECOND
        rel = dest.relative_to(store)
        rows.append((f"id{i}", camera, f"/media/frigate/{rel}", exact, exact + 10.0, 10.0))
    if kind == "frigate":
        db = sqlite3.connect(store / DATABASE)
        db.execute(
            "CREATE TABLE recordings (id VARCHAR(30) NOT NULL PRIMARY KEY, camera VARCHAR(20) "
            "NOT NULL, path VARCHAR(255) NOT NULL, start_time DATETIME NOT NULL, end_time "
            "DATETIME NOT NULL, duration REAL NOT NULL, motion INTEGER, objects INTEGER)"
        )
        db.execute("CREATE INDEX recordings_camera ON recordings (camera)")
        db.executemany(
            "INSERT INTO recordings (id, camera, path, start_time, end_time, duration) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        db.commit()
        db.close()
    return paths


def hashlib_loop(files: list[Path]) -> tuple[float, float]:
    """Wall and CPU seconds (CPU time is steadier when others load the machine; it does
    not count the waits for fsync)."""
    t, c = time.perf_counter(), time.process_time()
    for path in files:
        with open(path, "rb") as handle:
            hashlib.file_digest(handle, "sha256")
    return time.perf_counter() - t, time.process_time() - c


def settle(cold: bool) -> None:
    """Flush dirty pages (a fresh site's own writes) and, with `cold`, drop the cache."""
    os.sync()
    if cold:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def cli_scan(home: Path) -> float:
    """`scelle footage scan` on a fresh site, timed from outside the process."""
    env = {**os.environ, "SCELLE_HOME": str(home), "SCELLE_PASSPHRASE": PASSPHRASE}
    scelle = Path(sys.executable).parent / "scelle"
    t = time.perf_counter()
    subprocess.run([str(scelle), "footage", "scan"], env=env, check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--cameras", type=int, default=77)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store", choices=["frigate", "scelle"], default="frigate")
    parser.add_argument("--cold", action="store_true", help="drop the page cache (root)")
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI's figure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scelle-bench-", dir=os.environ.get("BENCH_TMP")) as d:
        root = Path(d)
        t = time.perf_counter()
        files = write_store(root, args.store, args.files, args.cameras)
        size = sum(f.stat().st_size for f in files)
        print(
            f"{len(files):,} {args.store} segments of ~{size / len(files) / 1e3:.0f} kB over "
            f"{args.cameras} cameras ({size / 1e9:.2f} GB, written in "
            f"{time.perf_counter() - t:.0f} s); page cache "
            + ("dropped before each step" if args.cold else "warm (all read once first)")
        )
        hashlib_loop(files)  # warm-up, untimed
        scans, loops, scan_cpu, loop_cpu = [], [], [], []
        for r in range(args.rounds):
            site, cameras = new_site(root / f"site-{r}", root / "store", args.store, args.cameras)
            for step in ("scan", "loop") if r % 2 == 0 else ("loop", "scan"):
                settle(args.cold)
                if step == "loop":
                    wall, cpu = hashlib_loop(files)
                    loops.append(wall)
                    loop_cpu.append(cpu)
                    continue
                t, c = time.perf_counter(), time.process_time()
                report, skipped = scan_all(site, cameras, site.login)
                scans.append(time.perf_counter() - t)
                scan_cpu.append(time.process_time() - c)
                assert not skipped and report.segments == len(files), (skipped, report)
            site.close()
            shutil.rmtree(root / f"site-{r}")
        scan_s, loop_s = statistics.median(scans), statistics.median(loops)
        n = len(files)
        print(f"median of {args.rounds} rounds (each round: {[round(s, 2) for s in scans]} s scan,")
        print(f"  {[round(s, 2) for s in loops]} s loop)")
        print(f"  hashlib.file_digest loop  {loop_s:6.2f} s  {n / loop_s:8.0f} files/s")
        print(f"  scelle scan (scan_all)    {scan_s:6.2f} s  {n / scan_s:8.0f} files/s")
        print(f"  ratio scan / loop         {loop_s / scan_s:6.2f}   (goal >= 0.8)")
        print(f"  overhead per file         {(scan_s - loop_s) / n * 1e6:6.0f} µs")
        cpu_scan, cpu_loop = statistics.median(scan_cpu), statistics.median(loop_cpu)
        print(
            f"  CPU time: scan {cpu_scan:.2f} s, loop {cpu_loop:.2f} s, ratio "
            f"{cpu_loop / cpu_scan:.2f} ({(cpu_scan - cpu_loop) / n * 1e6:.0f} µs per file)"
        )
        print(
            f"  vs a 770-camera centre    {n / scan_s / CENTRE_RATE:6.1f}×  its {CENTRE_RATE} "
            "files/s"
        )
        if not args.no_cli:
            site, _cameras = new_site(root / "site-cli", root / "store", args.store, args.cameras)
            site.close()
            settle(args.cold)
            cli_s = cli_scan(root / "site-cli")
            print(
                f"  scelle footage scan (CLI) {cli_s:6.2f} s  {n / cli_s:8.0f} files/s "
                f"(ratio {loop_s / cli_s:.2f}; one run, process start and checkpoint included)"
            )


if __name__ == "__main__":
    main()
