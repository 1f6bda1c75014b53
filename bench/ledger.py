"""Ledger benchmark: durable appends, full verification at 1 M entries, proof size and speed.

Every figure is printed beside a baseline measured in the same run on the same machine:
- appends: one scelle append per transaction (WAL, synchronous=FULL) against a plain
  sqlite3 INSERT+COMMIT loop of the same bytes with the same settings, alternated in rounds;
- verification: `scelle ledger verify`'s library call on a 1 M entry SQLite ledger against
  pure in-memory hashing of the same 1 M leaves and their root;
- proofs: size of an inclusion proof at 1 M entries and its verification time;
- witnesses: rounds of appends closed by a signed checkpoint, on a site with a witness
  policy (an in-process C2SP witness on 127.0.0.1) beside the same on a site without one,
  with the witness's request count: one round trip per checkpoint, none per entry.

Usage: python bench/ledger.py [--entries 1000000] [--appends 2000] [--rounds 3]
                              [--only verify] [--keep DIR]

--only verify runs the big ledger's parts alone (verification and proofs); --keep DIR
builds the big ledger in DIR once and reuses it in later runs (the site DIR/big).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custody import checkpoints, merkle
from custody.config import load_settings
from custody.cosigning import cosign, load_policy
from custody.db import Database
from custody.entry import Record, entry_body, utc_now
from custody.note import verifier_key
from custody.site import Site
from custody.verify import verify_ledger
from custody.witness import Answer
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


def _witness(root: Path, site_vkey: str) -> tuple[str, list[int], Callable[[], None]]:
    """A witness serving in a thread: (its policy line, its request counter, stop)."""
    from custody.witness_server import add_log, init_witness, load_witness, make_server

    init_witness(root / "witness", "witness.bench.test/w", PASSPHRASE)
    add_log(root / "witness", site_vkey)
    witness = load_witness(root / "witness", PASSPHRASE)
    count = [0]
    original = witness.add_checkpoint

    def counted(request: bytes, now: int | None = None) -> Answer:
        count[0] += 1
        return original(request, now)

    object.__setattr__(witness, "add_checkpoint", counted)
    server = make_server(witness, "127.0.0.1", 0, log=lambda _line: None)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    vkey = (root / "witness" / "witness.vkey").read_text().strip()
    line = f"witness w {vkey} http://127.0.0.1:{server.server_address[1]}\nquorum w\n"
    return line, count, server.shutdown


def bench_witnessed(root: Path, n: int, rounds: int) -> None:
    plain = new_site(root, "unwitnessed")
    policy = root / "witnesses.txt"
    settings = load_settings(
        {"home": str(root / "witnessed"), "site_name": "bench.test"},
        environ={"SCELLE_WITNESS_POLICY": str(policy)},
    )
    witnessed, _ = init_site(settings, PASSPHRASE)
    line, requests, stop = _witness(
        root, verifier_key("bench.test", witnessed.signer(PASSPHRASE).public_key)
    )
    policy.write_text(line)
    loaded = load_policy(settings)
    assert loaded is not None
    times: dict[str, list[float]] = {"without": [], "with": []}
    for r in range(rounds):
        for label, site in (("without", plain), ("with", witnessed)):
            signer = site.signer(PASSPHRASE)
            t = time.perf_counter()
            for i in range(n):
                site.ledger.append("operator", record(r * n + i))
            _cp, note = checkpoints.sign(site.db, site.settings.checkpoint_file, signer)
            if label == "with":
                done = cosign(site.db, loaded, note)
                assert done.quorum, done.collected
            times[label].append(time.perf_counter() - t)
    stop()
    plain.close()
    witnessed.close()
    a, b = statistics.median(times["with"]), statistics.median(times["without"])
    print(f"appends closed by a checkpoint, {rounds} rounds of {n} entries:")
    print(f"  with a witness            {n / a:8.0f} entries/s   ({a * 1000:.0f} ms a round)")
    print(f"  without                   {n / b:8.0f} entries/s   ({b * 1000:.0f} ms a round)")
    print(f"  cost of the witness       {(a - b) * 1000:8.1f} ms a checkpoint")
    print(
        f"  witness requests          {requests[0]:8d}   "
        f"for {rounds} checkpoints, {rounds * n} entries"
    )


def build_big(root: Path, n: int) -> Site:
    if (root / "big").exists():  # --keep: built by an earlier run
        settings = load_settings({"home": str(root / "big"), "site_name": "bench.test"}, {})
        site = Site(settings, Database(settings.database_url))
        if site.ledger.size() == n:
            print(f"(reusing the {n:,} entry ledger in {root / 'big'})")
            return site
        raise SystemExit(f"{root / 'big'} holds another ledger: remove it or give --entries")
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
    load = os.getloadavg()[0]
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
    verdict = "PASS" if ours < 3 else "FAIL"
    print(f"  scelle ledger verify (from the database)  {ours:6.2f} s   (goal < 3 s: {verdict})")
    print(f"  pure hashing of the leaves and root       {pure:6.2f} s")
    print(f"  ratio                                     {ours / pure:6.2f}")
    print(f"  on {os.cpu_count()} cores; load average before it {load:.2f}")


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
    parser.add_argument("--only", choices=["verify"], help="the big ledger's parts alone")
    parser.add_argument("--keep", type=Path, help="build the big ledger here once, reuse it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scelle-bench-", dir=os.environ.get("BENCH_TMP")) as d:
        root = Path(d)
        if args.only is None:
            bench_appends(root, args.appends, args.rounds)
            bench_witnessed(root, args.appends, args.rounds)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
        site = build_big(args.keep or root, args.entries)
        try:
            bench_verify(site, args.entries)
            bench_proof(site, args.entries)
        finally:
            site.close()


if __name__ == "__main__":
    main()
