"""VERIFY.html on a 2 GB export, beside `scelle verify`: time, throughput, memory.

Builds, through the library and the CLI, a real export of at least `--gigabytes`: the
demo site (`run_demo`, whose own small export is measured too), a camera added to it,
footage indexed (`footage scan`), a requisition registered by the operator, approved by
the supervisor, extracted. Then, side by side on both exports:
- `scelle verify --json` in a child process: wall time, and its peak RSS from
  `os.wait4` (exit code 0 or 10);
- the export's VERIFY.html in headless Chromium (selenium), opened from file:// and
  given the folder as an investigator picks it: wall time from the pick to the verdict,
  and the memory of Chromium's processes (chromedriver's descendants), sampled every
  50 ms from /proc: their summed RSS and the largest one (the renderer). The page's
  verdict must be `scelle verify`'s.

Footage: lossless H.264 of a noisy 640x480 picture (4:4:4, about 380 MB a minute), all
written by real ffmpeg in one-minute segments. Bytes are what the page and `scelle
verify` hash; re-encoding the working copies costs by the minute, so dense footage keeps
the build to a few minutes.

The page cache is dropped before each measurement where allowed (root, writable /proc);
otherwise both read warm, from memory, which measures hashing rather than the disk.

Usage: python bench/verify_page.py [--gigabytes 2.0] [--runs 1] [--keep]
"""

from __future__ import annotations

import argparse
import getpass
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.extract import settle
from custody.checks import PAGE
from custody.timewindow import to_us
from exporters.ffmpeg import ffmpeg_exe
from exporters.index import camera_store
from requisition.cameras import CameraSpec
from requisition.demo import OPERATOR, SUPERVISOR, run_demo

CAMERA = "BENCH-1"
ZONE = "Europe/Paris"
MINUTE = 60_000_000
RATE = 10  # frames per second
# Noise makes the picture incompressible; lossless 4:4:4 keeps every bit of it.
SOURCE = f"testsrc2=size=640x480:rate={RATE},noise=alls=12:allf=t"
ENCODE = ["-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv444p"]
SAMPLE_SECONDS = 0.05
DONE = ("ok", "partial", "failed")

# Timestamps taken by the page's own clock: the pick (the input's change event) and the
# verdict (#verdict's data-status leaving waiting/running).
INSTRUMENT = """
const input = document.getElementById("export-folder");
const verdict = document.getElementById("verdict");
window.__bench = {};
input.addEventListener("change", (event) => {
  window.__bench.change = event.timeStamp;
  window.__bench.files = input.files.length;
});
new MutationObserver(() => {
  if (["ok", "partial", "failed"].includes(verdict.dataset.status) && !window.__bench.verdict) {
    window.__bench.verdict = performance.now();
  }
}).observe(verdict, { attributes: true, attributeFilter: ["data-status"] });
"""
POLL = """
const m = performance.memory;
return [document.getElementById("verdict").dataset.status, m ? m.usedJSHeapSize : null];
"""


# ---------------------------------------------------------------- building the exports
def scelle_command() -> list[str]:
    beside = Path(sys.executable).parent / "scelle"
    found = str(beside) if beside.exists() else shutil.which("scelle")
    if not found:
        sys.exit("no `scelle` command next to this Python or on PATH: pip install -e .")
    return [found]


def cli(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [*scelle_command(), *args], env=os.environ | env, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"scelle {' '.join(args[:2])} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def check_space(root: Path, gigabytes: float) -> None:
    """Footage, then its export (master copies as big, working copies a few percent)."""
    need = 2.2 * gigabytes * 1e9 + 0.5e9
    free = shutil.disk_usage(root).free
    if free < need:
        sys.exit(
            f"not enough disk space in {root}: this benchmark needs about {need / 1e9:.1f} GB "
            f"(footage of {gigabytes:g} GB, then its export), {free / 1e9:.1f} GB free. "
            "Ask for less (--gigabytes) or point BENCH_TMP at a bigger disk."
        )


def write_footage(store_root: Path, start_us: int, minutes: int) -> int:
    """`minutes` one-minute segments from `start_us` (recorder = reference clock), written
    by ffmpeg's segment muxer, then named and dated as the recorder would; their bytes."""
    cam = CameraSpec(
        CAMERA, "Bench", "Bench", "Lyon", "AP-0", "2030-01-01", store_path=str(store_root)
    ).to_camera(store_root)
    layout = camera_store(cam)
    total = 0
    with tempfile.TemporaryDirectory(dir=store_root, prefix=".generate-") as tmp:
        keyint = RATE * 60
        subprocess.run(
            [
                ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
                "-f", "lavfi", "-i", SOURCE, "-t", str(minutes * 60), *ENCODE,
                "-g", str(keyint), "-keyint_min", str(keyint), "-sc_threshold", "0",
                "-force_key_frames", "expr:gte(t,n_forced*60)",
                "-f", "segment", "-segment_time", "60", "-reset_timestamps", "1",
                "-segment_format", "mp4", str(Path(tmp) / "seg%06d.mp4"),
            ],
            check=True,
        )  # fmt: skip
        parts = sorted(Path(tmp).glob("seg*.mp4"))
        if len(parts) != minutes:
            sys.exit(f"ffmpeg wrote {len(parts)} segments, not {minutes}")
        for i, part in enumerate(parts):
            start = start_us + i * MINUTE
            dest = layout.segment_path(cam.store_camera, start, MINUTE)
            dest.parent.mkdir(parents=True, exist_ok=True)
            total += part.stat().st_size
            shutil.move(part, dest)
            finished = (start + MINUTE) * 1000  # a recorder last touches it at its end
            os.utime(dest, ns=(finished, finished))
    return total


def build_big_export(
    home: Path, passphrase: Path, root: Path, gigabytes: float
) -> tuple[Path, dict[str, float]]:
    """A camera on the demo site, footage of `gigabytes`, indexed, requisitioned,
    approved by another agent, extracted: the export's path, and each step's seconds."""
    steps: dict[str, float] = {}
    env = {"SCELLE_HOME": str(home), "SCELLE_PASSPHRASE_FILE": str(passphrase)}
    store = root / "store"
    store.mkdir()
    cli(
        [
            "camera", "add", CAMERA, "--name", "Banc d'essai", "--location", "Salle serveur",
            "--commune", "Villeurbanne", "--authorisation-ref", "AP-BENCH",
            "--authorisation-expires", "2030-01-01", "--timezone", ZONE,
            "--store-path", str(store), "--reason", "benchmark camera",
        ],
        env | {"LOGNAME": getpass.getuser()},  # the demo's administrator: whoever runs it
    )  # fmt: skip

    t = time.perf_counter()
    zone = ZoneInfo(ZONE)
    begin = datetime.combine(date.today() - timedelta(days=1), datetime.min.time(), zone)
    begin = begin.replace(hour=10)
    start_us, minutes, size = to_us(begin), 0, 0
    probe = 1  # a first minute says how many bytes a minute holds
    while size < gigabytes * 1e9:
        size += write_footage(store, start_us + minutes * MINUTE, probe)
        minutes += probe
        per_minute = size / minutes
        probe = max(1, math.ceil((gigabytes * 1e9 - size) / per_minute))
    steps["footage (ffmpeg)"] = time.perf_counter() - t
    end = begin + timedelta(minutes=minutes)

    t = time.perf_counter()
    cli(["footage", "scan", "--camera", CAMERA], env | {"LOGNAME": OPERATOR})
    steps["footage scan"] = time.perf_counter() - t

    window = f"{CAMERA}={begin:%d/%m/%Y %Hh%M}/{end:%d/%m/%Y %Hh%M}"
    made = cli(
        [
            "requisition", "register", "--legal-basis", "60-1", "--pv", "PV 2026/BENCH",
            "--officer", "Brigadier Banc", "--unit", "BSU Villeurbanne",
            "--reason", "benchmark of VERIFY.html", "--window", window,
        ],
        env | {"LOGNAME": OPERATOR},
    )  # fmt: skip
    rid = made.split()[1]
    cli(["requisition", "approve", rid], env | {"LOGNAME": SUPERVISOR})
    out = root / "exports"
    t = time.perf_counter()
    cli(["requisition", "extract", rid, "--out", str(out)], env | {"LOGNAME": OPERATOR})
    steps["requisition extract"] = time.perf_counter() - t
    return out / rid, steps


# ---------------------------------------------------------------- scelle verify
def measure_cli(export: Path) -> dict[str, Any]:
    """`scelle verify --json` in a child: wall time, peak RSS (its rusage), verdict."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        child = subprocess.Popen(
            [*scelle_command(), "verify", str(export), "--json"], stdout=out, stderr=err
        )
        _pid, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - t
        code = os.waitstatus_to_exitcode(status)
        child.returncode = code  # reaped here: Popen must not wait for it again
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if code not in (0, 10):
        sys.exit(f"scelle verify {export} exited {code}: {stderr.decode().strip()}")
    shown = json.loads(stdout)
    return {
        "seconds": seconds,
        "rss": usage.ru_maxrss * 1024,  # kilobytes on Linux
        "exit": code,
        "verdict": (shown["status"], shown.get("first_failure")),
    }


# ---------------------------------------------------------------- Chromium's memory
def process_tree(root: int) -> list[int]:
    """The descendants of `root` (not itself), from each process's parent in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            found.append(pid)
            todo.append(pid)
    return found


def rss_of(pid: int) -> int:
    """VmRSS in bytes; 0 once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def kind_of(pid: int) -> str:
    """Chromium's process type (renderer, gpu-process, zygote, utility:StorageService...),
    or browser. A child rewrites its command line as one string: read it as text."""
    try:
        line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, UnicodeDecodeError):
        return "?"
    kind = re.search(r"--type=(\S+)", line)
    if not kind:
        return "browser"
    sub = re.search(r"--utility-sub-type=\S*?(\w+)(?:\s|$)", line)
    return f"{kind[1]}:{sub[1]}" if sub else kind[1]


class Sampler(threading.Thread):
    """Every SAMPLE_SECONDS, the RSS of each process under chromedriver: the peak of
    their sum, of the largest one, and of each kind's largest (browser, renderer...).
    The tree is listed again every second."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.stop = threading.Event()
        self.peak_sum = self.peak_one = self.samples = 0
        self.peak_kind = ""
        self.by_kind: dict[str, int] = {}
        self.processes = 0
        self.sums: list[int] = []  # each sample's sum, in order: growth shows as a slope

    def run(self) -> None:
        kinds: dict[int, str] = {}
        while not self.stop.is_set():
            if self.samples % round(1 / SAMPLE_SECONDS) == 0:
                kinds = {pid: kind_of(pid) for pid in process_tree(self.root)}
                self.processes = max(self.processes, len(kinds))
            rss = {pid: rss_of(pid) for pid in kinds}
            self.samples += 1
            self.sums.append(sum(rss.values()))
            self.peak_sum = max(self.peak_sum, self.sums[-1])
            for pid, size in rss.items():
                kind = kinds[pid]
                self.by_kind[kind] = max(self.by_kind.get(kind, 0), size)
                if size > self.peak_one:
                    self.peak_one, self.peak_kind = size, kind
            self.stop.wait(SAMPLE_SECONDS)


# ---------------------------------------------------------------- the page
def measure_page(export: Path, chromium: str, chromedriver: str, timeout: float) -> dict[str, Any]:
    """A fresh headless Chromium opens the export's VERIFY.html and is given the folder."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--enable-precise-memory-info",  # performance.memory unrounded
    ):
        options.add_argument(argument)
    service = Service(chromedriver)
    driver = webdriver.Chrome(service=service, options=options)
    try:
        version = driver.capabilities.get("browserVersion", "?")
        driver.get((export / PAGE).as_uri())
        driver.execute_script(INSTRUMENT)
        root = service.process.pid
        before = sum(rss_of(pid) for pid in process_tree(root))
        sampler = Sampler(root)
        sampler.start()
        heap_peak = 0
        t = time.perf_counter()
        driver.find_element(By.ID, "export-folder").send_keys(str(export))
        while True:
            status, heap = driver.execute_script(POLL)
            heap_peak = max(heap_peak, heap or 0)
            if status in DONE:
                break
            if time.perf_counter() - t > timeout:
                sys.exit(f"VERIFY.html gave no verdict on {export} within {timeout:.0f} s")
            time.sleep(SAMPLE_SECONDS)
        seconds = time.perf_counter() - t
        sampler.stop.set()
        sampler.join()
        verdict = driver.find_element(By.ID, "verdict")
        marks = driver.execute_script("return window.__bench")
        heap = "return performance.memory ? performance.memory.usedJSHeapSize : null"
        heap_end = driver.execute_script(heap)
        # What the page still holds once garbage is collected: retained, not just late.
        driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
        heap_gc = driver.execute_script(heap)
        after_gc = sum(rss_of(pid) for pid in process_tree(root))
        return {
            "seconds": seconds,
            "in_page": (marks["verdict"] - marks["change"]) / 1000,
            "files_given": marks.get("files"),
            "verdict": (status, verdict.get_attribute("data-first-failure") or None),
            "text": verdict.text,
            "before": before,
            "rss_sum": sampler.peak_sum,
            "rss_one": sampler.peak_one,
            "rss_one_kind": sampler.peak_kind,
            "processes": sampler.processes,
            # Peak of the run's first and last thirds: flat memory has the same peak.
            "first_third": max(sampler.sums[: max(1, len(sampler.sums) // 3)]),
            "last_third": max(sampler.sums[-max(1, len(sampler.sums) // 3) :]),
            "samples": sampler.samples,
            "heap_end": heap_end,
            "heap_gc": heap_gc,
            "after_gc": after_gc,
            "renderer": sampler.by_kind.get("renderer", 0),
            "browser": sampler.by_kind.get("browser", 0),
            "heap_peak": heap_peak or None,
            "version": version,
        }
    finally:
        driver.quit()


# ---------------------------------------------------------------- report
def mb(n: float | None) -> str:
    return "n/a" if n is None else f"{n / 1e6:,.0f} MB"


def median(runs: list[dict[str, Any]], key: str) -> Any:
    values = [r[key] for r in runs]
    if any(v is None for v in values):
        return None
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the sites and exports")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds, per page run")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument(
        "--chromedriver", default=shutil.which("chromedriver") or "/usr/bin/chromedriver"
    )
    args = parser.parse_args()
    for tool in (args.chromium, args.chromedriver):
        if not Path(tool).is_file():
            sys.exit(f"{tool} not found: apt install chromium chromium-driver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        sys.exit("selenium is not installed: pip install selenium")

    started = time.perf_counter()
    base = os.environ.get("BENCH_TMP") or tempfile.gettempdir()
    check_space(Path(base), args.gigabytes)
    root = Path(tempfile.mkdtemp(prefix="scelle-bench-page-", dir=base))
    try:
        t = time.perf_counter()
        demo = run_demo(root / "site", lambda _line: None)
        print(f"demo site and its export: {time.perf_counter() - t:.0f} s")
        big, steps = build_big_export(demo.home, demo.passphrase_file, root, args.gigabytes)
        for step, seconds in steps.items():
            print(f"  {step:<22} {seconds:6.0f} s")
        exports = {"demo export": demo.export.path, f"{args.gigabytes:g} GB export": big}
        sizes = {}
        for name, path in exports.items():
            files = [p for p in path.rglob("*") if p.is_file()]
            sizes[name] = (len(files), sum(p.stat().st_size for p in files))

        results: dict[str, dict[str, list[dict[str, Any]]]] = {
            name: {"cli": [], "page": []} for name in exports
        }
        cold = False
        for r in range(args.runs):
            for name, path in exports.items():
                cold = settle()
                shown = measure_cli(path)
                settle()
                seen = measure_page(path, args.chromium, args.chromedriver, args.timeout)
                if seen["verdict"] != shown["verdict"]:
                    sys.exit(
                        f"VERDICTS DIFFER on the {name} ({path}): the page says "
                        f"{seen['verdict']} ({seen['text']!r}), scelle verify says "
                        f"{shown['verdict']}"
                    )
                if seen["files_given"] != sizes[name][0]:
                    sys.exit(
                        f"the page was given {seen['files_given']} files of the {name}, "
                        f"not {sizes[name][0]}"
                    )
                results[name]["cli"].append(shown)
                results[name]["page"].append(seen)
                print(
                    f"run {r + 1}, {name}: scelle verify {shown['seconds']:.1f} s, "
                    f"page {seen['seconds']:.1f} s, verdict {shown['verdict'][0]} (both)"
                )
        print(
            "page cache dropped before each measurement"
            if cold
            else "page cache not dropped (needs root and a writable /proc): warm reads"
        )

        names = list(exports)
        version = results[names[-1]]["page"][0]["version"]
        rows: list[tuple[str, list[str]]] = []

        def row(label: str, cell: Any) -> None:
            rows.append((label, [cell(name) for name in names]))

        cli_s = {n: median(results[n]["cli"], "seconds") for n in names}
        page_s = {n: median(results[n]["page"], "seconds") for n in names}
        numeric = (
            "in_page", "before", "rss_sum", "rss_one", "renderer", "browser",
            "first_third", "last_third",
            "heap_peak", "heap_end", "heap_gc", "after_gc",
        )  # fmt: skip
        med = {n: {k: median(results[n]["page"], k) for k in numeric} for n in names}
        for n in names:
            med[n]["kind"] = results[n]["page"][0]["rss_one_kind"]
            med[n]["processes"] = max(x["processes"] for x in results[n]["page"])
            med[n]["samples"] = results[n]["page"][0]["samples"]
        row("files", lambda n: f"{sizes[n][0]:,}")
        row("bytes", lambda n: f"{sizes[n][1]:,}")
        row("verdict (page = scelle verify)", lambda n: results[n]["cli"][0]["verdict"][0])
        rows.append(("scelle verify --json", []))
        row("  time", lambda n: f"{cli_s[n]:.2f} s")
        row("  throughput", lambda n: f"{sizes[n][1] / cli_s[n] / 1e6:,.0f} MB/s")
        row("  peak RSS (wait4)", lambda n: mb(median(results[n]["cli"], "rss")))
        rows.append((f"VERIFY.html, headless Chromium {version}", []))
        row("  time, pick to verdict", lambda n: f"{page_s[n]:.2f} s")
        row("  of which in the page", lambda n: f"{med[n]['in_page']:.2f} s")
        row("  throughput", lambda n: f"{sizes[n][1] / page_s[n] / 1e6:,.0f} MB/s")
        row("  RSS before the pick, summed", lambda n: mb(med[n]["before"]))
        row("  peak RSS, summed", lambda n: mb(med[n]["rss_sum"]))
        row("  peak RSS, largest process", lambda n: f"{mb(med[n]['rss_one'])} ({med[n]['kind']})")
        row("  peak RSS, renderer (the page)", lambda n: mb(med[n]["renderer"]))
        row("  peak RSS, browser process", lambda n: mb(med[n]["browser"]))
        row(
            "  peak summed, 1st / last third",
            lambda n: f"{med[n]['first_third'] / 1e6:,.0f} / {mb(med[n]['last_third'])}",
        )
        row("  RSS summed after a forced GC", lambda n: mb(med[n]["after_gc"]))
        row("  JS heap, peak sampled", lambda n: mb(med[n]["heap_peak"]))
        row("  JS heap at the verdict", lambda n: mb(med[n]["heap_end"]))
        row("  JS heap after a forced GC", lambda n: mb(med[n]["heap_gc"]))
        row("  processes, samples", lambda n: f"{med[n]['processes']}, {med[n]['samples']}")
        row("time ratio page / scelle verify", lambda n: f"{page_s[n] / cli_s[n]:.1f}x")
        row(
            "export size / page peak RSS summed",
            lambda n: f"{sizes[n][1] / med[n]['rss_sum']:.2f}",
        )
        row(
            "page peak RSS growth over the pick",
            lambda n: mb(med[n]["rss_sum"] - med[n]["before"]),
        )
        width = max(len(label) for label, _cells in rows) + 2
        cells = max(len(c) for _label, cs in rows for c in cs) + 2
        cells = max(cells, *(len(n) + 2 for n in names))
        print()
        print(
            f"{'median of ' + str(args.runs) + ' run(s)':<{width}}"
            + "".join(f"{n:>{cells}}" for n in names)
        )
        for label, cs in rows:
            print(f"{label:<{width}}" + "".join(f"{c:>{cells}}" for c in cs))
        for n in names:
            print(
                f"each run, {n} (s): scelle verify "
                f"{[round(x['seconds'], 2) for x in results[n]['cli']]}, page "
                f"{[round(x['seconds'], 2) for x in results[n]['page']]}"
            )
        print(f"total: {time.perf_counter() - started:.0f} s")
    finally:
        if args.keep:
            print(f"kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
