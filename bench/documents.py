"""Document time: each legal paper, HTML and signed PDF/A, beside WeasyPrint's floor.

Goal: every paper in under a second, the handover PV included (it is made while the
officer waits). The baseline, measured in the same run, is WeasyPrint rendering a
one-line page as PDF/A: the fixed cost of any PDF. The PAdES signature is timed apart
(it is added to each signed paper). WeasyPrint's import (~1 s) is paid once per process.

Usage: python bench/documents.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custody.pdfsign import PDF_VARIANT
from custody.timewindow import day_start
from exporters.documents import render
from exporters.export_facts import cover
from exporters.handover_pv import Handed, handover_pv
from exporters.seal_label import label
from requisition.demo import OPERATOR, run_demo
from requisition.papers import paper_signer
from requisition.people import described
from requisition.recordings_register import recordings_register


def timed(runs: int, make: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        make()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def forty_cameras() -> dict[str, object]:
    """A night's purge of 40 cameras, as the certificate's template receives it."""
    at = {"reference": "29/11/2026 à 03:00:00 (UTC+01:00)"}
    at |= {"recorder": "29/11/2026 à 03:00:01 (UTC+01:00)"}
    return {
        "centre": {"name": "Centre de supervision urbain", "authorisation": "AP", "commune": ""},
        "run_at": "30/11/2026 à 03:00:00 (UTC+01:00)",
        "actor": {"name": "Paul MARTIN", "role": "superviseur", "designation": "arrêté 118"},
        "destroyed": [
            {
                "camera": f"C-{i:03d}",
                "retention": 30,
                "from": at,
                "to": at,
                "offset": "1,500",
                "files": "1 440",
                "size": "2,1 Go",
                "merkle_root": "ab" * 32,
            }
            for i in range(40)
        ],
        "held": [],
        "ledger_entries": "1-40",
        "ssh_fingerprint": "SHA256:x",
        "issued_day": "30/11/2026",
    }


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
        papers = paper_signer(site, result.passphrase_file.read_bytes().strip())
        pdf, cert = papers.pdf, papers.certificate
        export = result.export.path
        day = date.fromisoformat(result.day)
        zone = settings.timezone
        handed = Handed(
            1,
            "2026-11-30T13:00:00Z",
            OPERATOR,
            described(site, [OPERATOR]),
            "Claire Martin",
            "lieutenant de police",
            "Commissariat de Villeurbanne",
            "usb",
            1,
            ["2026-0042"],
        )
        floor = timed(
            args.runs,
            lambda: weasyprint.HTML(string="<p>x</p>").write_pdf(pdf_variant=PDF_VARIANT),
        )
        unsigned = weasyprint.HTML(string="<p>x</p>").write_pdf(pdf_variant=PDF_VARIANT)
        assert pdf is not None
        signing = timed(args.runs, lambda: pdf(unsigned))
        rows = {
            "PV de remise (4 pages), signed": timed(
                args.runs, lambda: handover_pv(export, settings, handed, cert, pdf)
            ),
            "cover sheet (4 pages), signed": timed(
                args.runs, lambda: cover(export, settings, cert, pdf)
            ),
            "seal label, signed": timed(
                args.runs,
                lambda: label(export, settings, ["2026-0042"], "usb", 1, None, pdf),
            ),
            "register (2 cameras), signed": timed(
                args.runs,
                lambda: recordings_register(
                    site,
                    day,
                    day,
                    day_start(day, zone),
                    day_start(date.fromordinal(day.toordinal() + 1), zone),
                    pdf,
                ),
            ),
            "destruction certificate (40 cameras), signed": timed(
                args.runs, lambda: render("destruction", forty_cameras(), pdf)
            ),
        }
        site.close()
    print(f"median of {args.runs} renders (HTML + PDF/A + PAdES), goal < 1 s each:")
    print(f"  {'one-line PDF/A page (WeasyPrint floor)':<40} {floor:6.3f} s")
    print(f"  {'PAdES signature of that page alone':<40} {signing:6.3f} s")
    for name, seconds in rows.items():
        verdict = "ok" if seconds < 1 else "OVER 1 s"
        print(f"  {name:<40} {seconds:6.3f} s   ({seconds / floor:4.1f} x the floor)  {verdict}")


if __name__ == "__main__":
    main()
