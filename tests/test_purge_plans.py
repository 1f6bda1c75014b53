"""The purge's per-chunk statements find their rows by id, on both backends.

A statement that also names the run (`purge_run = ?`) may be planned through the index of
a run's rows instead: every chunk of 500 ids then walks all the rows the run marked, and
a night's purge (1.1 million rows, 2,200 chunks) turns quadratic, as it once did on
SQLite (4.9x `find -delete`). The plans are read from the real database, holding a run
of marked rows, as the purge's own statements would be planned."""

from __future__ import annotations

from typing import Any

from requisition.purge_rows import MARKS
from requisition.purge_sql import PG_PURGE
from tests.conftest import SiteEnv, raw_connection

ROWS = 20_000


def _fill(conn: Any, sqlite: bool) -> None:
    """A camera, an ingest batch, a run and its marked rows, written as the owner."""
    conn.execute(
        "INSERT INTO camera (id, name, location, commune, authorisation_ref, "
        "authorisation_expires, retention_days, timezone, store_kind, store_path, "
        "store_camera, clock_offset_ms, created_at) VALUES ('P-1', 'p', 'l', 'c', 'a', "
        "'2030-01-01', 30, 'Europe/Paris', 'scelle_dir', '/x', 'P-1', 0, 'now')"
    )
    conn.execute(
        "INSERT INTO ingest_batch (id, camera_id, hour_us, segments, bytes, merkle_root, "
        "ledger_seq) VALUES (1, 'P-1', 0, 1, 1, 'r', 0)"
    )
    conn.execute(
        "INSERT INTO purge_run (id, started_at, now_utc, actor, state, segments, bytes, "
        "failures) VALUES (7, 's', 'n', 'a', 'intent', 0, 0, 0)"
    )
    q = "?" if sqlite else "%s"
    rows = [(i, f"P-1/{i}.mp4", i * 60, i * 60 + 60, 7) for i in range(1, ROWS + 1)]
    conn.cursor().executemany(
        "INSERT INTO segment (id, camera_id, path, start_us, end_us, size, sha256, batch_id, "
        f"purge_run) VALUES ({q}, 'P-1', {q}, {q}, {q}, 1, 'h', 1, {q})",
        rows,
    )
    conn.execute("ANALYZE" if not sqlite else "SELECT 1")


def test_the_purge_marks_rows_by_id_not_by_walking_the_run(site_env: SiteEnv) -> None:
    sqlite = site_env.site.db.is_sqlite
    with raw_connection(site_env) as conn:
        _fill(conn, sqlite)
        if sqlite:
            for what, sql in MARKS.items():
                statement = sql.format(ids="?, ?, ?")
                params = list(range(statement.count("?")))
                plan = " ".join(
                    str(r[-1]) for r in conn.execute(f"EXPLAIN QUERY PLAN {statement}", params)
                )
                assert "INTEGER PRIMARY KEY" in plan, (what, plan)
            return
        # PostgreSQL: the function's three UPDATEs as plpgsql runs them once its plan is
        # cached (generic: the run and the ids are parameters).
        (body,) = [f for f in PG_PURGE if "scelle_purge_mark" in f]
        updates = [" ".join(part.split(";")[0].split()) for part in body.split("UPDATE ")[1:]]
        assert len(updates) == 3
        conn.execute("SET plan_cache_mode = force_generic_plan")
        for i, update in enumerate(updates):
            sql = "UPDATE " + update.replace("= run", "= $1").replace("(ids)", "($2)").replace(
                "= at", "= $3"
            )
            conn.execute(f"PREPARE m{i} (bigint, bigint[], text) AS {sql}")
            plan = " ".join(
                r[0] for r in conn.execute(f"EXPLAIN EXECUTE m{i} (7, ARRAY[1, 2, 3], 'x')")
            )
            assert "segment_pkey" in plan, (update, plan)
