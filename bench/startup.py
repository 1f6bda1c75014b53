"""Start-up cost: `scelle --help` wall time beside `python -c pass`, and what it imports.

The investigators' commands must feel instant; the database layer (SQLAlchemy and
SQLModel, ~0.45 s to import) must not load for them. Goal: `scelle --help` < 0.25 s with
the French catalog loaded (LANG=fr_FR.UTF-8; the run checks the help really is French),
and in English (LANG=C).

Usage: python bench/startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


def environment(lang: str) -> dict[str, str]:
    """This environment with only LANG choosing the language."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCELLE_", "LC_"))}
    return {**env, "LANG": lang}


def wall(cmd: list[str], runs: int, lang: str = "C") -> float:
    env = environment(lang)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    scelle = shutil.which("scelle")
    if scelle is None:
        sys.exit("scelle is not installed in this environment (pip install .)")
    french = subprocess.run(
        [scelle, "--help"],
        check=True,
        capture_output=True,
        text=True,
        env=environment("fr_FR.UTF-8"),
    ).stdout
    if "Utilisation" not in french:
        sys.exit("the French help did not load: the figure would not measure the catalog")
    base = wall([sys.executable, "-c", "pass"], args.runs)
    help_fr = wall([scelle, "--help"], args.runs, "fr_FR.UTF-8")
    help_en = wall([scelle, "--help"], args.runs, "C")
    probe = (
        "import sys, cli\n"
        "try:\n    cli.app(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('sqlalchemy', 'sqlmodel') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout.splitlines()[-1]
    print(f"median of {args.runs} runs:")
    print(f"  python -c pass                      {base:.3f} s")
    for label, took in (("LANG=fr_FR.UTF-8", help_fr), ("LANG=C", help_en)):
        verdict = "met" if took < 0.25 else "NOT MET"
        print(f"  scelle --help, {label:17s}   {took:.3f} s   (goal < 0.25 s: {verdict})")
    print(f"  difference (French)                 {help_fr - base:.3f} s")
    print(f"  database modules imported by --help: {loaded}")


if __name__ == "__main__":
    main()
