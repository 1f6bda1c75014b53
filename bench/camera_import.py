"""Camera inventory import: a 100,000-row CSV, all or nothing, one `camera.add` entry each.

A review found such an import unfinished after 12 minutes while other commands failed with
"database is locked". Prints the time to read and check the rows (no database), and to
write them with their ledger entries in one transaction (the writer lock is held only
then). Goal: seconds, on SQLite and on PostgreSQL.

Usage: python bench/camera_import.py [--rows 100000] [--database-url postgresql://...]
(the PostgreSQL database must be empty; its owner runs the import, as `scelle init` would)
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custody.config import load_settings
from exporters.models import CAMERA_COLUMNS
from requisition.cameras import REQUIRED, add_rows, read_csv
from requisition.site import init_site


def write_inventory(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow([*REQUIRED, "retention_days", "clock_offset_ms"])
        for i in range(rows):
            out.writerow(
                [f"C-{i:06d}", f"Camera {i}", f"Rue {i}", "Lyon", f"AP-{i}", "2030-01-01", 30, 0]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scelle-bench-", dir=os.environ.get("BENCH_TMP")) as d:
        root = Path(d)
        settings = load_settings(
            {"home": str(root / "site"), "database_url": args.database_url}, environ={}
        )
        site, _ = init_site(settings, b"bench")
        inventory = root / "cameras.csv"
        write_inventory(inventory, args.rows)
        size = site.ledger.size()
        t0 = time.perf_counter()
        rows = read_csv(inventory, settings.home)
        t1 = time.perf_counter()
        add_rows(site, rows, site.login, f"imported from {inventory.name}")
        t2 = time.perf_counter()
        assert site.ledger.size() == size + args.rows
        # The yardstick: the same rows, already checked, written by a plain executemany
        # into a copy of the table in one transaction (no ledger, no checks).
        columns = CAMERA_COLUMNS
        values = [[r[name] for name in columns] for r in rows]
        with site.db.write() as cur:
            cur.execute("CREATE TABLE plain_camera AS SELECT * FROM camera WHERE 1 = 0")
        t3 = time.perf_counter()
        with site.db.write() as cur:
            cur.executemany(
                f"INSERT INTO plain_camera ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))})",
                values,
            )
        plain = time.perf_counter() - t3
        backend = "SQLite" if site.db.is_sqlite else "PostgreSQL"
        print(
            f"{args.rows:,} cameras on {backend}: read and checked in {t1 - t0:.1f} s, "
            f"written with {args.rows:,} ledger entries in {t2 - t1:.1f} s "
            f"(total {t2 - t0:.1f} s)"
        )
        print(
            f"  plain executemany of the same rows: {plain:.2f} s; "
            f"scelle's write {(t2 - t1) / plain:.1f}x it, the whole import {(t2 - t0) / plain:.1f}x"
        )
        site.close()


if __name__ == "__main__":
    main()
