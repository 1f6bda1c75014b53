"""Ledger benchmark: durable appends, full verification at 1 M entries, proof size and speed.

Every figure is printed beside a baseline measured in the same run on the same machine:
- appends: one scelle append per transaction (WAL, synchronous=FULL) against a plain
  sqlite3 INSERT+COMMIT loop of the same bytes with the same settings, alternated in rounds;
- verification: `scelle ledger verify`'s library call on a 1 M entry SQLite ledger against
  pure in-memory hashing of the same 1 M leaves and their root;
- proofs: size of an inclusion proof at 1 M entries and its verification time.

Usage: python bench/ledger.py [--entries 1000000] [--appends 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custody import checkpoints, merkle
from custody.config import load_settings
from custody.entry import Record, entry_body, utc_now
from custody.site import Site
from custody.verify import verify_ledger
from requisition.site import init_site

PASSPHRASE = b"bench passphrase"


def record(i: int) -> Record:
    """A realistic ~300-byte entry: an extraction for a procedure."""
    return Record(
        action="footage.extract",
        subject={
            "camera": f"CAM-{i % 770:04d}",
            "window": "2026-11-20T14:00:00Z/2026-11-20T14:30:00Z",
        },
        reason="judicial requisition, art. 60-1 CPP",
        procedure=f"PV 2026/{i:06d}",
        data={"requisition": f"2026-{i % 99999:05d}", "unit": "Commissariat central"},
    )


def new_site(root: Path, name: str) -> Site:
    settings = load_settings({"home": str(root / name), "site_name": "bench.test"}, environ={})
    site, _ = init_site(settings, PASSPHRASE)
    return site


def scelle_appends(site: Site, n: int, start: int) -> float:
    ledger = site.ledger
    t = time.perf_counter()
    for i in range(start, start + n):
        ledger.append("operator", record(i))
    return n / (time.perf_counter() - t)


def plain_appends(path: Path, bodies: list[bytes]) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (seq INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    start = conn.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM t").fetchone()[0]
    t = time.perf_counter()
    for i, body in enumerate(bodies):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t VALUES (?, ?)", (start + i, body))
        conn.execute("COMMIT")
    rate = len(bodies) / (time.perf_counter() - t)
    conn.close()
    return rate


def bench_appends(root: Path, n: int, rounds: int) -> None:
    site = new_site(root, "appends")
    bodies = [entry_body(i, utc_now(), "operator", record(i)) for i in range(n)]
    ours, plain = [], []
    for r in range(rounds):
        plain.append(plain_appends(root / "plain.db", bodies))
        ours.append(scelle_appends(site, n, r * n))
    site.close()
    a, b = statistics.median(ours), statistics.median(plain)
    print(f"durable appends, one transaction each (WAL, synchronous=FULL), {rounds} rounds of {n}:")
    print(f"  scelle ledger append      {a:8.0f} entries/s   (goal >= 2000)")
    print(f"  plain sqlite3 INSERT loop {b:8.0f} rows/s")
    print(f"  ratio                     {a / b:8.2f}            (goal >= 0.5)")


def build_big(root: Path, n: int) -> Site:
    site = new_site(root, "big")
    ledger = site.ledger
    t = time.perf_counter()
    batch = 10_000
    done = ledger.size()
    while done < n:
        k = min(batch, n - done)
        ledger.append_many("operator", [record(i) for i in range(done, done + k)])
        done += k
    checkpoints.sign(site.db, site.settings.checkpoint_file, site.signer(PASSPHRASE))
    print(f"(built a {n:,} entry ledger in {time.perf_counter() - t:.1f} s, batches of {batch})")
    return site


def bench_verify(site: Site, n: int) -> None:
    t = time.perf_counter()
    report = verify_ledger(site.db, site.settings)
    ours = time.perf_counter() - t
    assert report.entries == n
    with site.db.read() as cur:
        bodies = [bytes(b) for (b,) in cur.execute("SELECT body FROM ledger_entry ORDER BY seq")]
    t = time.perf_counter()
    levels = merkle.tree_levels([merkle.leaf_hash(b) for b in bodies])
    merkle.levels_root(levels, len(bodies))
    pure = time.perf_counter() - t
    size = sum(len(b) for b in bodies) / len(bodies)
    print(f"full verification of {n:,} entries (mean {size:.0f} bytes):")
    print(f"  scelle ledger verify (from the database)  {ours:6.2f} s   (goal < 3 s)")
    print(f"  pure hashing of the leaves and root       {pure:6.2f} s")
    print(f"  ratio                                     {ours / pure:6.2f}")


def bench_proof(site: Site, n: int) -> None:
    ledger = site.ledger
    index = n // 3 + 7
    t = time.perf_counter()
    proof = ledger.inclusion(index)
    fetch_ms = (time.perf_counter() - t) * 1000
    reps = 2000
    t = time.perf_counter()
    for _ in range(reps):
        proof.verify()
    verify_ms = (time.perf_counter() - t) / reps * 1000
    cons = ledger.consistency(n // 2)
    cons.verify()
    size = 32 * len(proof.hashes)
    print(f"inclusion proof of entry {index:,} in {n:,}:")
    print(f"  size            {size} bytes ({len(proof.hashes)} hashes)   (goal <= 1024)")
    print(f"  verification    {verify_ms:.3f} ms   (goal < 1 ms)")
    print(f"  built from the database in {fetch_ms:.2f} ms")
    print(f"  consistency proof from {n // 2:,}: {32 * len(cons.hashes)} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scelle-bench-", dir=os.environ.get("BENCH_TMP")) as d:
        root = Path(d)
        bench_appends(root, args.appends, args.rounds)
        site = build_big(root, args.entries)
        try:
            bench_verify(site, args.entries)
            bench_proof(site, args.entries)
        finally:
            site.close()


if __name__ == "__main__":
    main()
