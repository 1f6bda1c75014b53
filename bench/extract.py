"""Extraction benchmark on generated footage of at least 1 GB.

Prints, from one run, each figure beside its baseline measured side by side:
- master copy (`extract_master`: copy, SHA-256 of the same read, compare with the ingest
  hash, fsync) against `cp` + `sync` + `openssl dgst -sha256` of the same segments
  (goal: ratio <= 1.0);
- scan (`footage scan` on a fresh index: list, hash, batch into the ledger) against
  `openssl dgst -sha256` of the same files (goal: throughput >= 0.8 of openssl's);
- scan of each store layout (scelle, Frigate without its database, and path templates:
  a NAS in local time, Shinobi, ZoneMinder's event folders, daily MPEG-TS folders), on
  small real ten-second segments, in files per second beside a plain
  `hashlib.file_digest` loop over the same files (the layouts whose names give no length
  probe each file: that is the difference the figures show).

Footage: a few minutes generated with real ffmpeg, then its segments written again under
later start times until the store holds the size asked (hashing and copying do not care
what the bytes show; generating 1 GB from scratch would take minutes).

Usage: python bench/extract.py [--gigabytes 1.0] [--rounds 5] [--layout-files 2000]
       python bench/extract.py --layouts-only
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custody.config import load_settings
from custody.site import Site
from custody.timewindow import Window, parse_window
from exporters.generate import generate_footage
from exporters.index import camera_store, find, scan
from exporters.master import extract_master
from exporters.models import Camera
from requisition.cameras import CameraSpec, add_cameras, get_camera
from requisition.site import init_site

# (name, store kind, template, names in): every layout family `footage scan` reads.
LAYOUTS = [
    ("scelle", "scelle", "", "utc"),
    ("frigate (names)", "frigate", "", "utc"),
    ("template NAS local .mkv", "template", "{camera}/{YYYY}{MM}{DD}/{hh}{mm}{ss}.mkv", "local"),
    ("template Shinobi .mp4", "template", "{camera}/{YYYY}-{MM}-{DD}T{hh}-{mm}-{ss}.mp4", "utc"),
    (
        "template ZoneMinder",
        "template",
        "{camera}/{YY}/{MM}/{DD}/{hh}/{mm}/{ss}/{*}-video.mp4",
        "local",
    ),
    ("template daily .ts", "template", "{YYYY}-{MM}-{DD}/{camera}_{hh}{mm}{ss}.ts", "utc"),
]


def new_site(
    home: Path, store: Path, kind: str = "scelle", template: str = "", clock: str = "utc"
) -> tuple[Site, Camera]:
    settings = load_settings({"home": str(home)}, environ={})
    site, _ = init_site(settings, b"bench")
    spec = CameraSpec(
        "BENCH-1",
        "Bench",
        "Bench",
        "Lyon",
        "AP-0",
        "2030-01-01",
        store_kind=kind,
        store_path=str(store),
        store_template=template,
        store_time=clock,
    )
    add_cameras(site, [spec.to_camera(home)], "bench", "benchmark camera")
    return site, get_camera(site, "BENCH-1")


def make_footage(root: Path, gigabytes: float) -> tuple[Path, Window]:
    """Generate real footage, then repeat its segments until the store is big enough."""
    store = root / "store"
    site, cam = new_site(root / "gen-site", store)
    first = parse_window("2026-11-20T08:00", "2026-11-20T08:10", cam.timezone, 24)
    generate_footage(site, cam, first, segment_seconds=60)
    layout = camera_store(cam)
    originals = sorted(store.rglob("*.mp4"))
    total = sum(p.stat().st_size for p in originals)
    start = first.end
    minute = 60_000_000
    while total < gigabytes * 1e9:
        for src in originals:
            dest = layout.segment_path(cam.store_camera, start, minute)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            os.utime(dest, (time.time() - 3600,) * 2)
            total += src.stat().st_size
            start += minute
    site.close()
    return store, Window(first.start, start)


def layout_store(root: Path, layout: tuple[str, str, str, str], count: int) -> list[Path]:
    """`count` ten-second segments under the layout's names: one generated with real
    ffmpeg in the layout's container, written again under later starts."""
    _name, kind, template, clock = layout
    store = root / "store"
    site, cam = new_site(root / "gen-site", store, kind, template, clock)
    first = parse_window("2026-11-20T08:00", "2026-11-20T08:00:10", cam.timezone, 24)
    generate_footage(site, cam, first, segment_seconds=10)
    site.close()
    names = camera_store(cam)
    (source,) = [p for p in store.rglob("*") if p.is_file()]
    files = []
    past = time.time() - 3600
    for i in range(count):
        dest = names.segment_path(cam.store_camera, first.start + i * 10_000_000, 10_000_000)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest != source:
            shutil.copyfile(source, dest)
        os.utime(dest, (past, past))
        files.append(dest)
    return files


def hashlib_loop(files: list[Path]) -> float:
    t = time.perf_counter()
    for path in files:
        with path.open("rb") as handle:
            hashlib.file_digest(handle, "sha256")
    return time.perf_counter() - t


def layout_scans(root: Path, count: int, rounds: int) -> None:
    """Each layout's scan in files per second, beside a hashlib loop over the same files."""
    print(f"scan of each layout: {count} ten-second segments, median of {rounds}:")
    print(f"  {'layout':<26}{'scan files/s':>13}{'hashlib files/s':>17}{'ratio':>8}")
    for n, layout in enumerate(LAYOUTS):
        where = root / f"layout-{n}"
        files = layout_store(where, layout, count)
        scans, loops = [], []
        for r in range(rounds):
            for step in ("scan", "loop") if r % 2 == 0 else ("loop", "scan"):
                settle()
                if step == "loop":
                    loops.append(hashlib_loop(files))
                    continue
                site, cam = new_site(where / f"site-{r}", where / "store", *layout[1:])
                t = time.perf_counter()
                report = scan(site, [cam], "bench", settle_seconds=0)
                scans.append(time.perf_counter() - t)
                site.close()
                assert report.segments == count, (layout[0], report.segments)
        scan_s, loop_s = statistics.median(scans), statistics.median(loops)
        print(
            f"  {layout[0]:<26}{count / scan_s:13.0f}{count / loop_s:17.0f}{loop_s / scan_s:8.2f}"
        )
        shutil.rmtree(where)
    print("  (a 770-camera Frigate centre writes 77 ten-second segments a second)")


def settle() -> bool:
    """Flush dirty pages and, where allowed (root), drop the page cache, so that every
    measured step starts from the same state; True if the cache was dropped."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
    except OSError:
        return False
    return True


def openssl_dgst(files: list[Path]) -> float:
    t = time.perf_counter()
    for i in range(0, len(files), 200):
        chunk = [str(f) for f in files[i : i + 200]]
        subprocess.run(
            ["openssl", "dgst", "-sha256", *chunk], check=True, stdout=subprocess.DEVNULL
        )
    return time.perf_counter() - t


def cp_sync_dgst(files: list[Path], dest: Path) -> float:
    dest.mkdir()
    t = time.perf_counter()
    for i in range(0, len(files), 200):
        subprocess.run(["cp", *[str(f) for f in files[i : i + 200]], str(dest)], check=True)
    subprocess.run(["sync"], check=True)
    copied = sorted(dest.iterdir())
    for i in range(0, len(copied), 200):
        chunk = [str(f) for f in copied[i : i + 200]]
        subprocess.run(
            ["openssl", "dgst", "-sha256", *chunk], check=True, stdout=subprocess.DEVNULL
        )
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--layout-files", type=int, default=2000)
    parser.add_argument("--layouts-only", action="store_true", help="only the layouts' scans")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scelle-bench-", dir=os.environ.get("BENCH_TMP")) as d:
        root = Path(d)
        layout_scans(root, args.layout_files, args.rounds)
        if args.layouts_only:
            return
        t = time.perf_counter()
        store, window = make_footage(root, args.gigabytes)
        files = sorted(store.rglob("*.mp4"))
        size = sum(f.stat().st_size for f in files)
        print(
            f"footage: {len(files)} segments, {size / 1e9:.2f} GB ({time.perf_counter() - t:.0f} s)"
        )

        scans, dgsts, masters, baselines = [], [], [], []
        cold = False
        for r in range(args.rounds):
            cold = settle()
            dgsts.append(openssl_dgst(files))
            site, cam = new_site(root / f"site-{r}", store)
            settle()
            t = time.perf_counter()
            report = scan(site, [cam], "bench", settle_seconds=0)
            scans.append(time.perf_counter() - t)
            assert report.segments == len(files)
            coverage = find(site, cam, window, check=False)
            # Alternate which goes first, so that neither always inherits the other's
            # write-back.
            for step in ("ours", "cp") if r % 2 == 0 else ("cp", "ours"):
                settle()
                if step == "cp":
                    baselines.append(cp_sync_dgst(files, root / f"cp-{r}"))
                    continue
                t = time.perf_counter()
                master = extract_master(coverage.segments, root / f"master-{r}")
                masters.append(time.perf_counter() - t)
                master.check()
            site.close()
            shutil.rmtree(root / f"cp-{r}")
            shutil.rmtree(root / f"master-{r}")
        print(
            "page cache dropped before each step" if cold else "page cache not dropped (not root)"
        )

        scan_s, dgst_s = statistics.median(scans), statistics.median(dgsts)
        master_s, base_s = statistics.median(masters), statistics.median(baselines)
        print(f"scan (fresh index, hash, ledger batches), median of {args.rounds}:")
        print(f"  scelle footage scan       {scan_s:6.2f} s  {size / scan_s / 1e6:7.0f} MB/s")
        print(f"  openssl dgst -sha256      {dgst_s:6.2f} s  {size / dgst_s / 1e6:7.0f} MB/s")
        print(f"  throughput ratio          {dgst_s / scan_s:6.2f}   (goal >= 0.8)")
        print(f"master copy of all {len(files)} segments, median of {args.rounds}:")
        print(
            f"  scelle extract_master     {master_s:6.2f} s  (kernel copy, hash read back, fsync)"
        )
        print(f"  cp + sync + openssl dgst  {base_s:6.2f} s")
        print(f"  time ratio                {master_s / base_s:6.2f}   (goal <= 1.0)")
        print(f"  each round (s): ours {[round(x, 2) for x in masters]}")
        print(f"                  cp   {[round(x, 2) for x in baselines]}")


if __name__ == "__main__":
    main()
