"""Certified destructions leave the footage index for per-period records, and what reads
them says the same: the register day by day, a requisition's status, on both backends.

The index is written as scans and purges leave it (segment rows in hourly ingest batches,
runs with and without certificates, rows held back live inside destroyed batches), with
what makes periods hard: segments across midnight, gaps, overlaps, a clock offset, the
night the clocks go back. Every day's register is read before and after compaction.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from custody.timewindow import Window, stored_utc, to_us
from requisition import purge as purge_module
from requisition.cameras import get_camera
from requisition.purge_history import compact
from requisition.recordings_register import _camera
from requisition.requisitions import _status
from tests.conftest import ADMIN, SiteEnv, raw_connection, run_cli
from tests.test_cameras import ADD
from tests.test_purge import Footage, purge, store  # noqa: F401 - the fixture

ZONE = ZoneInfo("Europe/Paris")
FIRST = date(2026, 10, 23)  # the clocks go back on the night of the 24th to the 25th
DAYS = 5
HOUR = 3_600_000_000
CERTIFIED, LATE = 1, 3  # runs 1 and 2 have certificates; run 3 has none yet


def midnight(day: date) -> int:
    return to_us(datetime.combine(day, time(), tzinfo=ZONE))


def _sql(conn: Any, sql: str, params: list[Any] | None = None) -> Any:
    if not isinstance(conn, __import__("sqlite3").Connection):
        sql = sql.replace("?", "%s")
    return conn.execute(sql, params or [])


def _index(conn: Any, camera: str, offset_us: int, rng: random.Random) -> dict[str, int]:
    """Write a camera's index: one-minute-ish segments over the days, each live or
    destroyed by run 1, 2 or 3 (by time, with strays), in hourly ingest batches."""
    start, end = midnight(FIRST) - 2 * HOUR, midnight(FIRST + timedelta(days=DAYS)) + 2 * HOUR
    segments = []
    t = start
    while t < end:
        length = rng.choice([60, 60, 60, 45, 90]) * 1_000_000
        if rng.random() < 0.03:
            t += rng.randrange(5, 600) * 1_000_000  # a gap
        elif rng.random() < 0.03:
            t -= rng.randrange(1, 20) * 1_000_000  # an overlap
        segments.append((t + offset_us, t + offset_us + length))
        t += length
    span = end - start
    holds = [start + offset_us + rng.randrange(span) for _ in range(3)]
    counts = {"live": 0, "destroyed": 0}
    batches: dict[int, int] = {}
    for i, (s, e) in enumerate(segments):
        where = (s - offset_us - start) / span
        run = 1 if where < 0.35 else 2 if where < 0.7 else LATE if where < 0.85 else None
        if any(h <= s < h + HOUR // 2 for h in holds) or rng.random() < 0.002:
            run = None  # kept by a hold: live inside destroyed batches
        hour = s // HOUR * HOUR
        if hour not in batches:
            batches[hour] = int(
                _sql(
                    conn,
                    "INSERT INTO ingest_batch (camera_id, hour_us, segments, bytes, "
                    "merkle_root, ledger_seq) VALUES (?, ?, 0, 0, '', 0) RETURNING id",
                    [camera, hour],
                ).fetchone()[0]
            )
        at = None if run is None else stored_utc(midnight(date(2026, 11, 1)) + i * 7_000_000)
        _sql(
            conn,
            "INSERT INTO segment (camera_id, path, start_us, end_us, size, sha256, batch_id, "
            "purge_run, destroyed_at) VALUES (?, ?, ?, ?, ?, '', ?, ?, ?)",
            [camera, f"{camera}/{i}.mp4", s, e, 1000 + i, batches[hour], run, at],
        )
        counts["live" if run is None else "destroyed"] += 1
    return counts


def _runs(conn: Any) -> None:
    for run in (1, 2, LATE):
        _sql(
            conn,
            "INSERT INTO purge_run (id, started_at, now_utc, actor, state, segments, bytes, "
            "failures, certificate) VALUES (?, ?, ?, 'cron', 'done', 0, 0, 0, ?)",
            [
                run,
                "2026-11-01T03:00:00.000000Z",
                "2026-11-01T03:00:00.000000Z",
                None if run == LATE else f"/certificates/purge-{run:06d}",
            ],
        )


def _reads(env: SiteEnv, cameras: list[str]) -> dict[str, Any]:
    """Every day's register and every two days', and the runs a requisition's status
    names for windows across the days."""
    site = env.site
    out: dict[str, Any] = {}
    for camera_id in cameras:
        camera = get_camera(site, camera_id)
        for k in range(-1, DAYS + 1):
            day = FIRST + timedelta(days=k)
            for width in (1, 2):
                out[f"{camera_id} {day} +{width}"] = _camera(
                    site, camera, midnight(day), midnight(day + timedelta(days=width))
                )
        rng = random.Random(camera_id)
        for _ in range(40):
            lo = midnight(FIRST) + rng.randrange(DAYS * 24 * 60) * 60_000_000
            window = Window(lo, lo + rng.randrange(1, 300) * 60_000_000)
            status = _status(site, camera, window, to_us(datetime(2027, 1, 1, tzinfo=ZONE)))
            out[f"{camera_id} status {window}"] = sorted({cert for _at, cert in status.destroyed})
    return out


@dataclass(frozen=True)
class History:
    env: SiteEnv
    conn: Any  # the database's owner, as scans and purges write


@pytest.fixture
def history(site_env: SiteEnv) -> Iterator[History]:
    for camera, offset in (("C-012", -1_200_000), ("C-013", 0)):
        args = [*ADD[:2], camera, *ADD[3:], "--clock-offset-ms", str(offset // 1000)]
        assert run_cli(args, env=site_env.env_as(ADMIN)).exit_code == 0
    made = History(site_env, raw_connection(site_env))
    _runs(made.conn)
    rng = random.Random(19)
    _index(made.conn, "C-012", -1_200_000, rng)
    _index(made.conn, "C-013", 0, rng)
    yield made
    made.conn.close()


def test_the_register_and_status_read_the_same_after_compaction(history: History) -> None:
    conn = history.conn
    before = _reads(history.env, ["C-012", "C-013"])
    rows = _sql(conn, "SELECT COUNT(*) FROM segment").fetchone()[0]
    moved = compact(history.env.site)
    assert moved > 0.5 * rows  # most of the history left the index
    left = _sql(
        conn,
        "SELECT COUNT(*) FROM segment s LEFT JOIN purge_run r ON r.id = s.purge_run "
        "WHERE s.destroyed_at IS NOT NULL AND r.certificate IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM segment l WHERE l.batch_id = s.batch_id "
        "AND (l.destroyed_at IS NULL OR l.purge_run = ?))",
        [LATE],
    ).fetchone()[0]
    assert left == 0  # every wholly destroyed, certified batch moved
    # what stays: live rows, run 3's (uncertified), and rows sharing a batch with them
    kept = _sql(
        conn,
        "SELECT COUNT(*) FROM segment WHERE destroyed_at IS NULL OR purge_run = ?",
        [LATE],
    ).fetchone()[0]
    assert kept > 0 and rows - moved >= kept
    periods = _sql(conn, "SELECT COUNT(*), SUM(segments) FROM destroyed_period").fetchone()
    assert periods[1] == moved and periods[0] < moved / 20
    after = _reads(history.env, ["C-012", "C-013"])
    assert after.keys() == before.keys()
    for key in before:
        assert after[key] == before[key], key
    assert compact(history.env.site) == 0  # nothing more to move


def test_a_straddling_period_counts_only_its_tail(history: History) -> None:
    """The register of a day counts the previous day's segments that run past midnight,
    as rows did: the test above would pass with whole periods if none straddled."""
    conn = history.conn
    compact(history.env.site)
    straddling = _sql(
        conn, "SELECT COUNT(*) FROM destroyed_period WHERE tail_segments > 0"
    ).fetchone()[0]
    assert straddling > 0
    partial = _sql(
        conn, "SELECT COUNT(*) FROM destroyed_period WHERE tail_segments < segments"
    ).fetchone()[0]
    assert partial > 0


@pytest.mark.backends("postgresql")
def test_only_the_purge_compacts_and_only_with_periods_that_sum(history: History) -> None:
    """On PostgreSQL an operator can neither delete segment rows nor write periods, nor
    call the compaction; the purge's function refuses periods that do not sum to the rows
    they replace, and batches with live or uncertified rows."""
    import psycopg

    from tests.conftest import OPERATOR

    owner = history.conn
    batch, run, camera, n, size, lo, hi = _sql(
        owner,
        "SELECT s.batch_id, MIN(s.purge_run), MIN(s.camera_id), COUNT(*), SUM(s.size), "
        "MIN(s.start_us), MAX(s.end_us) FROM segment s WHERE s.purge_run = 1 GROUP BY "
        "s.batch_id HAVING COUNT(*) = (SELECT COUNT(*) FROM segment l WHERE l.batch_id = "
        "s.batch_id AND l.purge_run = 1 AND l.destroyed_at IS NOT NULL) LIMIT 1",
    ).fetchone()
    period = {
        "purge_run": run,
        "camera_id": camera,
        "start_us": lo,
        "end_us": hi,
        "segments": n,
        "bytes": int(size),
        "destroyed_at": "2026-11-01T00:00:00.000000Z",
        "last_destroyed_at": "2026-11-01T00:00:00.000000Z",
        "cut_us": hi,
        "tail_segments": 0,
        "tail_start_us": None,
        "tail_destroyed_at": None,
    }
    operator = raw_connection(history.env, OPERATOR)
    try:
        for attack in (
            "DELETE FROM segment WHERE batch_id = %s",
            "INSERT INTO destroyed_period (purge_run, camera_id, start_us, end_us, segments, "
            "bytes, destroyed_at, last_destroyed_at, cut_us, tail_segments) "
            "VALUES (1, 'C-012', 0, 1, 1, 1, '', '', 1, 0)"
            " -- %s",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                operator.execute(attack, [batch])
        with pytest.raises(psycopg.errors.RaiseException, match="may not run the purge"):
            operator.execute(
                "SELECT scelle_purge_compact(%s, %s::jsonb)", [[batch], json.dumps([period])]
            )
    finally:
        operator.close()
    fewer = {**period, "segments": n - 1}
    with pytest.raises(psycopg.errors.RaiseException, match="do not sum"):
        owner.execute("SELECT scelle_purge_compact(%s, %s::jsonb)", [[batch], json.dumps([fewer])])
    (late,) = _sql(owner, "SELECT batch_id FROM segment WHERE purge_run = 3 LIMIT 1").fetchone()
    with pytest.raises(psycopg.errors.RaiseException, match="live or uncertified"):
        owner.execute("SELECT scelle_purge_compact(%s, %s::jsonb)", [[late], json.dumps([])])
    owner.execute("SELECT scelle_purge_compact(%s, %s::jsonb)", [[batch], json.dumps([period])])
    assert _sql(owner, "SELECT COUNT(*) FROM segment WHERE batch_id = ?", [batch]).fetchone() == (
        0,
    )


def test_paths_are_what_the_index_forgets(history: History) -> None:
    """A period keeps no path, hash or size per segment: what a certificate proved is in
    the certificate and the ledger; the rows the live ones of a batch need stay."""
    conn = history.conn
    compact(history.env.site)
    columns = {d[0] for d in _sql(conn, "SELECT * FROM destroyed_period LIMIT 0").description}
    assert not {"path", "sha256"} & columns
    mixed = _sql(
        conn,
        "SELECT COUNT(*) FROM segment d WHERE d.destroyed_at IS NOT NULL AND d.purge_run = 1 "
        "AND EXISTS (SELECT 1 FROM segment l WHERE l.batch_id = d.batch_id "
        "AND l.destroyed_at IS NULL)",
    ).fetchone()[0]
    assert mixed > 0  # a batch with a live row keeps its destroyed rows, for its vouching


def test_an_upgrade_moves_the_history_a_v13_site_kept(
    store: Footage,  # noqa: F811 - the fixture from tests/test_purge.py
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A site purged by scelle before v14 kept its destroyed rows in the index; `scelle
    db upgrade` moves them into periods, and its register and certificates read the same."""
    monkeypatch.setattr(purge_module, "compact", lambda _site: 0)  # as scelle before v14
    code, report, _ = purge(store.env)
    assert code == 0
    certificates = report["certificates"]
    assert isinstance(certificates, list)
    (cert,) = certificates
    site = store.env.site
    camera = get_camera(site, "C-012")
    first = datetime.fromtimestamp(store.old.start / 1e6, ZONE).date() - timedelta(days=1)
    days = [first + timedelta(days=k) for k in range(5)]

    def register() -> list[dict[str, Any]]:
        return [_camera(site, camera, midnight(d), midnight(d + timedelta(days=1))) for d in days]

    before = register()
    assert any(day["destructions"] for day in before)
    conn = raw_connection(store.env)
    try:  # the database as v13 left it
        _sql(conn, "DROP TABLE destroyed_period")
        if not isinstance(conn, __import__("sqlite3").Connection):
            _sql(conn, "DROP FUNCTION scelle_purge_compact(bigint[], jsonb)")
        _sql(conn, "DELETE FROM schema_version WHERE version = 14")
        monkeypatch.undo()
        upgraded = run_cli(["db", "upgrade"], env=store.env.env_as(ADMIN))
        assert upgraded.exit_code == 0, upgraded.stderr
        assert upgraded.stdout.splitlines() == [
            "applied migrations v14",
            "5 destroyed segment records moved out of the footage index into periods",
        ]
        left = _sql(conn, "SELECT COUNT(*) FROM segment WHERE destroyed_at IS NOT NULL")
        assert left.fetchone()[0] == 0
    finally:
        conn.close()
    assert register() == before
    assert run_cli(["verify", str(cert)]).exit_code == 0


def test_a_certified_purge_compacts_what_it_destroyed(
    store: Footage,  # noqa: F811 - the fixture from tests/test_purge.py
) -> None:
    code, report, _ = purge(store.env)
    assert code == 0 and report["destroyed"] == 5
    assert report["history_compacted"] == 5
    conn = raw_connection(store.env)
    try:
        assert (
            _sql(conn, "SELECT COUNT(*) FROM segment WHERE destroyed_at IS NOT NULL").fetchone()[0]
            == 0
        )
        assert _sql(conn, "SELECT SUM(segments) FROM destroyed_period").fetchone()[0] == 5
    finally:
        conn.close()
