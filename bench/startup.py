"""Start-up cost: `scelle --help` wall time beside `python -c pass`, and what it imports.

The investigators' commands must feel instant; the database layer (SQLAlchemy and
SQLModel, ~0.45 s to import) must not load for them. Goal: `scelle --help` < 0.25 s.

Usage: python bench/startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def wall(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    scelle = shutil.which("scelle")
    if scelle is None:
        sys.exit("scelle is not installed in this environment (pip install .)")
    base = wall([sys.executable, "-c", "pass"], args.runs)
    help_time = wall([scelle, "--help"], args.runs)
    probe = (
        "import sys, cli\n"
        "try:\n    cli.app(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('sqlalchemy', 'sqlmodel') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout.splitlines()[-1]
    print(f"median of {args.runs} runs:")
    print(f"  python -c pass    {base:.3f} s")
    print(f"  scelle --help     {help_time:.3f} s   (goal < 0.25 s)")
    print(f"  difference        {help_time - base:.3f} s")
    print(f"  database modules imported by --help: {loaded}")


if __name__ == "__main__":
    main()
