"""Audit benchmark: auditors' queries over a 1,000,000-entry ledger.

The ledger is filled with a realistic mix (40 agents, 770 cameras, 5,000 requisitions:
ingests, registrations, holds, extractions, exports, refusals). Each query is timed
through the library (warm) and through the CLI (`scelle audit ... --json`, a new
process each time), and printed beside the baseline measured in the same run: a full
scan that reads and parses every entry and filters it in Python, which is what
answering "from the ledger" costs without the index. Every answer is compared with the
scan's: same entries, in the same order.

Usage: python bench/audit.py [--entries 1000000] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custody.audit import AuditFilter, query
from custody.config import load_settings
from custody.entry import Record
from custody.site import Site
from requisition import agents
from requisition.site import init_site

AGENTS = [f"agent-{i:02d}" for i in range(40)]


def records(i: int) -> tuple[str, Record]:
    """Entry i of the synthetic history: (actor, record)."""
    actor = AGENTS[i % 40]
    camera = f"CAM-{i % 770:04d}"
    rid = f"2026-{(i // 200) % 5000:05d}"
    pv = f"PV 2026/{(i // 200) % 5000:06d}"
    window = {
        "camera": camera,
        "from": "2026-11-20T14:00:00+01:00",
        "to": "2026-11-20T14:30:00+01:00",
    }
    kind = i % 10
    if kind < 5:
        return actor, Record(
            "footage.ingest",
            {"camera": camera, "hour": "2026-11-20T13:00:00Z"},
            "segments indexed and hashed at ingest",
        )
    if kind == 5:
        return actor, Record(
            "requisition.register",
            {"requisition": rid},
            "vol",
            pv,
            data={"officer_unit": "BSU Villeurbanne", "windows": [window]},
        )
    if kind == 6:
        return actor, Record(
            "hold.place",
            {"camera": camera, "requisition": rid},
            f"preservation for requisition {rid}",
            pv,
            data=window,
        )
    if kind == 7:
        return actor, Record(
            "footage.extract",
            {"requisition": rid, "cameras": [camera]},
            f"extraction for requisition {rid}",
            pv,
            data={"windows": [window]},
        )
    if kind == 8:
        return actor, Record(
            "requisition.export", {"requisition": rid}, f"export sealed for requisition {rid}"
        )
    if i % 100 == 9:
        return actor, Record(
            "access.refused",
            {"agent": actor, "command": "requisition approve"},
            f"{actor} (operator) may not approve or deny requisitions",
        )
    return actor, Record("ledger.note", "shift handover", "note")


def build(site: Site, n: int) -> float:
    t = time.perf_counter()
    batch: dict[str, list[Record]] = {}
    size = site.ledger.size()
    for i in range(size, n):
        actor, record = records(i)
        # One transaction per batch of one actor's entries keeps the build to minutes;
        # the entries and their index rows are exactly what single appends write.
        batch.setdefault(actor, []).append(record)
        if i % 2000 == 1999 or i == n - 1:
            for who, recs in batch.items():
                site.ledger.append_many(who, recs)
            batch = {}
    return time.perf_counter() - t


def scan(site: Site, keep: Callable[[dict[str, Any]], bool]) -> tuple[list[int], float]:
    """The baseline: every entry read and parsed (plain json.loads, the fastest parse)."""
    t = time.perf_counter()
    seqs = [seq for seq, body in site.ledger.entries() if keep(json.loads(body))]
    return seqs, time.perf_counter() - t


def subject(entry: dict[str, Any], key: str) -> Any:
    s = entry["subject"]
    return s.get(key) if isinstance(s, dict) else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scelle-bench-", dir=os.environ.get("BENCH_TMP")) as d:
        root = Path(d)
        env = {**os.environ, "SCELLE_HOME": str(root / "site"), "LOGNAME": "auditor"}
        server = None
        flags: dict[str, str | None] = {"home": str(root / "site"), "site_name": "bench.test"}
        if args.backend == "postgresql":
            from tests.pgserver import PgServer, find_bindir

            bindir = find_bindir()
            assert bindir is not None, "PostgreSQL server binaries are not installed"
            server = PgServer(bindir, durable=True)
            server.execute("CREATE DATABASE bench")
            flags["database_url"] = server.url("bench")
            env["SCELLE_DATABASE_URL"] = server.url("bench", user="auditor")
        try:
            settings = load_settings(flags, environ={})
            site, _ = init_site(settings, b"bench passphrase")
            if server is not None:
                server.execute("CREATE ROLE auditor LOGIN IN ROLE scelle_app")
            agents.bootstrap(site, site.login, "Bench Admin", "bench")
            agents.add(
                site, site.login, agents.NewAgent("auditor", "Bench Auditor", "auditor", "bench")
            )
            built = build(site, args.entries)
            n = site.ledger.size()
            print(f"{args.backend}: {n:,} ledger entries (with their audit index), {built:.0f} s")
            head = ["query", "rows", "library", "CLI", "full scan", "ratio"]
            print(
                f"{head[0]:<44} {head[1]:>6} {head[2]:>9} {head[3]:>8} {head[4]:>10} {head[5]:>7}"
            )
            cases: list[tuple[str, list[str], AuditFilter, Callable[[dict[str, Any]], bool]]] = [
                (
                    "--requisition 2026-01234",
                    ["--requisition", "2026-01234"],
                    AuditFilter(requisition="2026-01234"),
                    lambda e: subject(e, "requisition") == "2026-01234",
                ),
                (
                    "--procedure 'PV 2026/004321'",
                    ["--procedure", "PV 2026/004321"],
                    AuditFilter(procedure="PV 2026/004321"),
                    lambda e: (
                        e["procedure"] == "PV 2026/004321"
                        or (subject(e, "requisition") == "2026-04321")
                    ),
                ),
                (
                    "--camera CAM-0047 --action footage.extract",
                    ["--camera", "CAM-0047", "--action", "footage.extract"],
                    AuditFilter(camera="CAM-0047", action="footage.extract"),
                    lambda e: (
                        e["action"] == "footage.extract"
                        and "CAM-0047" in (subject(e, "cameras") or [])
                    ),
                ),
                (
                    "--action access.refused",
                    ["--action", "access.refused"],
                    AuditFilter(action="access.refused"),
                    lambda e: e["action"] == "access.refused",
                ),
                (
                    "--agent agent-07 --action footage",
                    ["--agent", "agent-07", "--action", "footage"],
                    AuditFilter(agent="agent-07", action="footage"),
                    lambda e: e["actor"] == "agent-07" and e["action"].startswith("footage."),
                ),
            ]
            for label, cli_args, wanted, keep in cases:
                query(site.db, wanted)  # warm
                t = time.perf_counter()
                rows = query(site.db, wanted)
                library = time.perf_counter() - t
                t = time.perf_counter()
                out = subprocess.run(
                    ["scelle", "audit", *cli_args, "--json"],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                cli = time.perf_counter() - t
                expected, full = scan(site, keep)
                got = [r.row.seq for r in rows]
                same = got == expected == [r["seq"] for r in json.loads(out.stdout)]
                times = f"{library:>8.3f}s {cli:>7.3f}s {full:>9.2f}s {full / library:>6.0f}x"
                print(f"{label:<44} {len(rows):>6} {times}  same rows: {same}")
            site.close()
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
