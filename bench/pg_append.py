"""Concurrent appends to one PostgreSQL ledger: eight processes, in alternated rounds.

A real PostgreSQL server (fsync on) is started on 127.0.0.1. Eight processes append
scelle ledger entries, one durable transaction each, for the given time, each as a
designated operator with a PostgreSQL login of its own (so the server checks the login's
role for every entry, as at a centre); then the log
is checked: seq gapless from 0, one tree (every stored node recomputed and every
checkpoint consistent: `verify_ledger`), and the audit index re-derived entry by entry.
Beside it, in the same run on the same server, two baselines of a plain
`INSERT ... ; COMMIT` loop of the same bytes into a table with no lock, no tree and no
index: eight processes at once (the most this server takes: their commits share fsyncs),
and one process (commits one after another). The three alternate, round after round, so
that a change in this machine's speed during the run (a small shared machine's disk and
CPU vary by half within minutes) weighs on both sides of each ratio; each round's ratio
is printed, and the goal is read on their median. A linear log's appends are serialised
(each needs the previous one's tree); since v16 (custody/pg_queue.py) those queued
meanwhile share one tree update and one commit. The appends are CPU-bound on a small
machine: the ratio falls when other work takes a core (say how loaded the machine was).
An append writes ~2.9 KB of WAL, a plain commit ~0.5 KB: the checkpoint that WAL volume
requests (max_wal_size) falls in a scelle phase, usually the third round's, and costs it
up to a tenth; the last column says which round paid one, and how much CPU that phase
left idle or had stolen by other guests of this machine.

Usage: python bench/pg_append.py [--seconds 20] [--rounds 3] [--processes 8]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ledger import record
from custody import audit, checkpoints
from custody.config import load_settings
from custody.entry import entry_body, utc_now
from custody.ledger import Ledger
from custody.schema import APP_ROLE
from custody.verify import verify_ledger
from requisition import agents
from requisition.site import init_site, open_site
from tests.pgserver import SUPERUSER, PgServer, find_bindir

PASSPHRASE = b"bench passphrase"
OWNER = SUPERUSER  # the server's superuser owns the site's tables


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


def checkpoints_so_far(server: PgServer) -> int:
    """Checkpoints the server has made (timed or requested), to say which phase paid one."""
    import psycopg

    dsn = f"host=127.0.0.1 port={server.port} user={SUPERUSER} dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:  # PostgreSQL 17 moved them to pg_stat_checkpointer
            row = conn.execute("SELECT num_timed + num_requested FROM pg_stat_checkpointer")
        except psycopg.errors.UndefinedTable:
            row = conn.execute("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
        return int(row.fetchone()[0])  # type: ignore[index]


def cpu_times() -> tuple[int, int, int] | None:
    """This machine's CPU time so far (idle with I/O wait, steal, all), in ticks; None
    where /proc/stat is not."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            ticks = [int(x) for x in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return ticks[3] + ticks[4], ticks[7] if len(ticks) > 7 else 0, sum(ticks[:8])


def idle_share(before: tuple[int, int, int] | None, after: tuple[int, int, int] | None) -> str:
    """The CPU left idle and stolen (by other guests) between two readings: appends are
    CPU-bound here, so a phase with idle CPU waited on locks or the disk, and one with
    stolen CPU ran on a slower machine than the rounds beside it."""
    if before is None or after is None or after[2] <= before[2]:
        return "n/a"
    total = after[2] - before[2]
    idle, stolen = (100 * (after[i] - before[i]) / total for i in (0, 1))
    return f"{idle:.0f} % / {stolen:.0f} %"


def read_cpu_at(found: list[tuple[int, int, int] | None], *moments: float) -> None:
    """cpu_times() at each moment (the phase's start and end, not its processes' own)."""
    for moment in moments:
        time.sleep(max(0.0, moment - time.time()))
        found.append(cpu_times())


def run(target: object, args_for: list[tuple[object, ...]]) -> list[int]:
    with multiprocessing.get_context("spawn").Pool(len(args_for)) as pool:
        return pool.starmap(target, args_for)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20, help="each phase of each round")
    parser.add_argument("--rounds", type=int, default=3)
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
        dsn = f"host=127.0.0.1 port={server.port} user=postgres dbname=plain"
        with tempfile.TemporaryDirectory(prefix="scelle-bench-") as d:
            home = str(Path(d) / "site")
            settings = load_settings({"home": home, "database_url": url}, environ={})
            site, _ = init_site(
                settings, PASSPHRASE, then=lambda s: agents.bootstrap(s, OWNER, "Owner", "AR-1")
            )
            p, seconds = args.processes, args.seconds
            # Each process a designated operator with a login of its own, as a centre's
            # agents are: the checks of the login's role run for every append.
            who = [f"operator-{i}" for i in range(p)]
            for login in who:
                server.execute(f'CREATE ROLE "{login}" LOGIN IN ROLE {APP_ROLE}')
                agents.add(site, OWNER, agents.NewAgent(login, login, "operator", "AR-2"))
            site.close()
            rounds = []
            for _ in range(args.rounds):
                start = time.time() + 5  # every process connected before the clock starts
                before = checkpoints_so_far(server)
                cpu: list[tuple[int, int, int] | None] = []
                timer = threading.Thread(target=read_cpu_at, args=(cpu, start, start + seconds))
                timer.start()
                counts = run(
                    scelle_writer,
                    [(server.url("bench", user=w), home, w, seconds, start) for w in who],
                )
                timer.join()
                idle = idle_share(*cpu)
                paid = checkpoints_so_far(server) - before
                start = time.time() + 5
                plain = run(plain_writer, [(dsn, w, seconds, start) for w in who])
                start = time.time() + 5
                serial = run(plain_writer, [(dsn, who[0], seconds, start)])
                rounds.append(
                    (sum(counts) / seconds, sum(plain) / seconds, serial[0] / seconds, paid, idle)
                )

            site = open_site(settings)
            n = site.ledger.size()
            seqs = [seq for seq, _ in Ledger(site.db).entries()]
            t = time.perf_counter()
            checkpoints.sign(site.db, settings.checkpoint_file, site.signer(PASSPHRASE))
            report = verify_ledger(site.db, settings)
            audit.recompute(site.db)
            checked = time.perf_counter() - t
            site.close()
        print(
            f"{p} processes, {args.rounds} rounds of {seconds:.0f} s a phase, on PostgreSQL "
            f"{bindir.parent.name} (fsync on); appends per second:"
        )
        print(
            f"  round  scelle  plain,{p:>2} proc  plain, 1 proc  to {p} plain  to 1 plain"
            "  in scelle's phase: checkpoints, CPU idle / stolen"
        )
        for k, (ours, theirs, one, paid, idle) in enumerate(rounds, start=1):
            print(
                f"  {k:>5}  {ours:>6,.0f}  {theirs:>13,.0f}  {one:>13,.0f}  "
                f"{ours / theirs:>10.2f}  {ours / one:>10.2f}  {paid:>3}, {idle}"
            )
        to_one = sorted(ours / one for ours, _theirs, one, _paid, _idle in rounds)
        median = statistics.median(to_one)
        verdict = "PASS" if median >= 0.5 else "FAIL"
        print(
            f"  goal: >= 0.5x the one-process plain loop: {verdict} (median {median:.2f}, "
            f"rounds {to_one[0]:.2f}-{to_one[-1]:.2f})"
        )
        print(f"  seq gapless 0..{n - 1}: {seqs == list(range(n))}")
        print(
            f"  verify: {report.entries:,} entries, one tree, {report.checkpoints} checkpoints "
            f"consistent; audit index re-derived entry by entry ({checked:.1f} s)"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
