"""Document rendering time: each document, HTML and PDF, beside WeasyPrint's floor.

Goal: every document renders in under a second. The baseline, measured in the same run,
is WeasyPrint rendering a one-line page: the fixed cost of any PDF. WeasyPrint's import
(~1 s) is paid once per process and shown apart.

Usage: python bench/documents.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custody.timewindow import now_us
from exporters.documents import cover, label, render
from requisition.demo import run_demo
from requisition.recordings_register import recordings_register


def timed(runs: int, make: object) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        make()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    t = time.perf_counter()
    import weasyprint

    print(f"import weasyprint: {time.perf_counter() - t:.2f} s (once per process)")
    with tempfile.TemporaryDirectory(prefix="scelle-bench-") as d:
        result = run_demo(Path(d) / "site", lambda _line: None)
        from custody.config import load_settings
        from requisition.site import open_site

        settings = load_settings({"home": str(result.home)}, environ={})
        site = open_site(settings)
        export = result.export.path
        floor = timed(args.runs, lambda: weasyprint.HTML(string="<p>x</p>").write_pdf())
        rows = {
            "cover sheet (3 pages)": timed(args.runs, lambda: cover(export, settings)),
            "seal label": timed(args.runs, lambda: label(export, settings, "S-1", "usb")),
            "register (2 cameras)": timed(
                args.runs,
                lambda: recordings_register(site, now_us() - 86_400_000_000 * 3, now_us()),
            ),
            "destruction certificate": timed(
                args.runs,
                lambda: render(
                    "destruction",
                    {
                        "csv": {"name": "CSV", "authorisation": "AP"},
                        "run_at": "now",
                        "actor": "cron",
                        "destroyed": [
                            {
                                "camera": f"C-{i:03d}",
                                "from": "a",
                                "to": "b",
                                "segments": 1440,
                                "bytes": 1,
                            }
                            for i in range(40)
                        ],
                        "held": [],
                        "merkle_root": "00" * 32,
                        "ledger_entries": "1-40",
                        "ssh_fingerprint": "SHA256:x",
                    },
                ),
            ),
        }
        site.close()
    print(f"median of {args.runs} renders (HTML + PDF), goal < 1 s each:")
    print(f"  {'one-line page (WeasyPrint floor)':<34} {floor:6.3f} s")
    for name, seconds in rows.items():
        print(f"  {name:<34} {seconds:6.3f} s   ({seconds / floor:4.1f} x the floor)")


if __name__ == "__main__":
    main()
