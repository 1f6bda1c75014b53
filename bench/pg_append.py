"""Concurrent appends to one PostgreSQL ledger: eight processes for 30 seconds.

A real PostgreSQL server (fsync on) is started on 127.0.0.1. Eight processes append
scelle ledger entries, one durable transaction each, for the given time; then the log
is checked: seq gapless from 0, one tree (every stored node recomputed and every
checkpoint consistent: `verify_ledger`), and the audit index re-derived entry by entry.
Beside it, in the same run on the same server, two baselines of a plain
`INSERT ... ; COMMIT` loop of the same bytes into a table with no lock, no tree and no
index: eight processes at once (the most this server takes: their commits share fsyncs),
and one process (commits one after another). A linear log's appends are serialised (each
needs the previous one's tree); since v15 (custody/pg_queue.py) those queued meanwhile
share one tree update and one commit. The appends are CPU-bound on a small machine: the
ratio falls when other work takes a core (say how loaded the machine was).

Usage: python bench/pg_append.py [--seconds 30] [--processes 8]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ledger import record
from custody import audit, checkpoints
from custody.config import load_settings
from custody.entry import entry_body, utc_now
from custody.ledger import Ledger
from custody.verify import verify_ledger
from requisition.site import init_site, open_site
from tests.pgserver import PgServer, find_bindir

PASSPHRASE = b"bench passphrase"


def scelle_writer(url: str, home: str, who: str, seconds: float, start: float) -> int:
    site = open_site(load_settings({"home": home, "database_url": url}, environ={}))
    while time.time() < start:
        time.sleep(0.001)
    n, end = 0, start + seconds
    while time.time() < end:
        site.ledger.append(who, record(n))
        n += 1
    site.close()
    return n


def plain_writer(dsn: str, who: str, seconds: float, start: float) -> int:
    import psycopg

    bodies = [entry_body(i, utc_now(), who, record(i)) for i in range(2000)]
    with psycopg.connect(dsn) as conn:
        while time.time() < start:
            time.sleep(0.001)
        n, end = 0, start + seconds
        while time.time() < end:
            conn.execute("INSERT INTO plain (body) VALUES (%s)", [bodies[n % 2000]])
            conn.commit()
            n += 1
    return n


def run(target: object, args_for: list[tuple[object, ...]]) -> list[int]:
    with multiprocessing.get_context("spawn").Pool(len(args_for)) as pool:
        return pool.starmap(target, args_for)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--processes", type=int, default=8)
    args = parser.parse_args()
    bindir = find_bindir()
    if bindir is None:
        sys.exit("PostgreSQL server binaries are not installed")
    server = PgServer(bindir, durable=True)
    try:
        server.execute("CREATE DATABASE bench", "CREATE DATABASE plain")
        server.execute(
            "CREATE TABLE plain (seq BIGSERIAL PRIMARY KEY, body BYTEA NOT NULL)",
            database="plain",
        )
        url = server.url("bench")
        with tempfile.TemporaryDirectory(prefix="scelle-bench-") as d:
            home = str(Path(d) / "site")
            settings = load_settings({"home": home, "database_url": url}, environ={})
            site, _ = init_site(settings, PASSPHRASE)
            site.close()
            p, seconds = args.processes, args.seconds
            start = time.time() + 5  # every process connected before the clock starts
            who = [f"operator-{i}" for i in range(p)]
            counts = run(scelle_writer, [(url, home, w, seconds, start) for w in who])
            dsn = f"host=127.0.0.1 port={server.port} user=postgres dbname=plain"
            start = time.time() + 5
            plain = run(plain_writer, [(dsn, w, seconds, start) for w in who])
            start = time.time() + 5
            serial = run(plain_writer, [(dsn, who[0], seconds, start)])

            site = open_site(settings)
            n = site.ledger.size()
            seqs = [seq for seq, _ in Ledger(site.db).entries()]
            t = time.perf_counter()
            checkpoints.sign(site.db, settings.checkpoint_file, site.signer(PASSPHRASE))
            report = verify_ledger(site.db, settings)
            audit.recompute(site.db)
            checked = time.perf_counter() - t
            site.close()
        ours, theirs, one = sum(counts) / seconds, sum(plain) / seconds, serial[0] / seconds
        print(f"{p} processes x {seconds:.0f} s on PostgreSQL {bindir.parent.name} (fsync on)")
        print(f"  scelle appends        {sum(counts):>8,} entries  {ours:>7,.0f}/s  {counts}")
        print(f"  plain INSERT, {p} proc  {sum(plain):>8,} rows     {theirs:>7,.0f}/s  {plain}")
        print(f"  plain INSERT, 1 proc  {serial[0]:>8,} rows     {one:>7,.0f}/s")
        print(f"  ratio to {p} plain: {ours / theirs:.2f}; to 1 plain (serial): {ours / one:.2f}")
        verdict = "PASS" if ours >= 0.5 * one else "FAIL"
        print(f"  goal: >= 0.5x the one-process plain loop: {verdict} ({ours / one:.2f})")
        print(f"  seq gapless 0..{n - 1}: {seqs == list(range(n))}")
        print(
            f"  verify: {report.entries:,} entries, one tree, {report.checkpoints} checkpoints "
            f"consistent; audit index re-derived entry by entry ({checked:.1f} s)"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
