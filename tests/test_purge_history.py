"""Certified destructions leave the footage index for per-period records, and what reads
them says the same: the register day by day, a requisition's status, on both backends.

The index is written as scans and purges leave it (segment rows in hourly ingest batches,
runs with and without certificates, rows held back live inside destroyed batches), with
what makes periods hard: segments across midnight, gaps, overlaps, a clock offset, the
night the clocks go back. Every day's register is read before and after compaction.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from custody.timewindow import Window, stored_utc, to_us
from exporters.index import NewSegment, record_ingest, scan
from exporters.render import scan_lines
from requisition import purge as purge_module
from requisition.cameras import get_camera
from requisition.purge_history import Compaction, compact
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
    if not isinstance(conn, sqlite3.Connection):
        sql = sql.replace("?", "%s")
    return conn.execute(sql, params or [])


def _index(
    env: SiteEnv, camera_id: str, offset_us: int, rng: random.Random
) -> list[tuple[int, str, str, str]]:
    """Index a camera as a scan does (hourly ingest batches, their ledger entries): one-
    minute-ish segments over the days; and which of them runs 1, 2 or 3 destroyed (by
    time; holds keep stretches live inside destroyed batches)."""
    start, end = midnight(FIRST) - 2 * HOUR, midnight(FIRST + timedelta(days=DAYS)) + 2 * HOUR
    segments = []
    t = start
    while t < end:
        length = rng.choice([60, 60, 60, 45, 90]) * 1_000_000
        if rng.random() < 0.03:
            t += rng.randrange(5, 600) * 1_000_000  # a gap
        elif rng.random() < 0.03:
            t -= rng.randrange(1, 20) * 1_000_000  # an overlap
        path = f"{camera_id}/{len(segments)}.mp4"
        sha = hashlib.sha256(path.encode()).hexdigest()
        segments.append(NewSegment(path, t + offset_us, t + offset_us + length, 1000, sha))
        t += length
    site = env.site
    camera = get_camera(site, camera_id)
    with site.db.write() as cur:
        record_ingest(site, cur, camera, segments, ADMIN)
    span = end - start
    holds = [start + offset_us + rng.randrange(span) for _ in range(3)]
    marks = []
    for i, seg in enumerate(segments):
        where = (seg.start_us - offset_us - start) / span
        run = 1 if where < 0.35 else 2 if where < 0.7 else LATE if where < 0.85 else None
        if any(h <= seg.start_us < h + HOUR // 2 for h in holds) or rng.random() < 0.002:
            run = None  # kept by a hold: live inside destroyed batches
        if run is not None:
            at = stored_utc(midnight(date(2026, 11, 1)) + i * 7_000_000)
            marks.append((run, at, camera_id, seg.path))
    return marks


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
    rng = random.Random(19)
    marks = _index(site_env, "C-012", -1_200_000, rng) + _index(site_env, "C-013", 0, rng)
    made = History(site_env, raw_connection(site_env))
    _runs(made.conn)
    sql = "UPDATE segment SET purge_run = ?, destroyed_at = ? WHERE camera_id = ? AND path = ?"
    if isinstance(made.conn, sqlite3.Connection):
        made.conn.executemany(sql, marks)
    else:
        made.conn.cursor().executemany(sql.replace("?", "%s"), marks)
    yield made
    made.conn.close()


def test_the_register_and_status_read_the_same_after_compaction(history: History) -> None:
    conn = history.conn
    before = _reads(history.env, ["C-012", "C-013"])
    rows = _sql(conn, "SELECT COUNT(*) FROM segment").fetchone()[0]
    compaction = compact(history.env.site)
    assert compaction.refused == []
    moved = compaction.moved
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
    assert compact(history.env.site).moved == 0  # nothing more to move


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
    batch, run, camera, n, size, lo, hi, first_at, last_at = _sql(
        owner,
        "SELECT s.batch_id, MIN(s.purge_run), MIN(s.camera_id), COUNT(*), SUM(s.size), "
        "MIN(s.start_us), MAX(s.end_us), MIN(s.destroyed_at), MAX(s.destroyed_at) "
        "FROM segment s WHERE s.purge_run = 1 GROUP BY "
        "s.batch_id HAVING COUNT(*) = (SELECT COUNT(*) FROM segment l WHERE l.batch_id = "
        "s.batch_id AND l.purge_run = 1 AND l.destroyed_at IS NOT NULL) AND COUNT(*) > 1 LIMIT 1",
    ).fetchone()
    period = {
        "purge_run": run,
        "camera_id": camera,
        "start_us": lo,
        "end_us": hi,
        "segments": n,
        "bytes": int(size),
        "destroyed_at": first_at,
        "last_destroyed_at": last_at,
        "cut_us": hi,
        "tail_segments": 0,
        "tail_start_us": None,
        "tail_destroyed_at": None,
    }
    operator = raw_connection(history.env, OPERATOR)
    try:
        for attack in (
            "DELETE FROM segment WHERE batch_id = %s",
            # a row born destroyed by run 1: counted in its certificate, then compacted
            "INSERT INTO segment (camera_id, path, start_us, end_us, size, sha256, batch_id, "
            "purge_run, destroyed_at) SELECT camera_id, path || '.x', start_us, end_us, size, "
            "sha256, batch_id, 1, '2020-01-01T00:00:00.000000Z' FROM segment "
            "WHERE batch_id = %s LIMIT 1",
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
    for bad in ({"tail_segments": n + 1}, {"destroyed_at": "2000-01-01T00:00:00.000000Z"}):
        with pytest.raises(psycopg.errors.RaiseException, match="could make"):
            owner.execute(
                "SELECT scelle_purge_compact(%s, %s::jsonb)",
                [[batch], json.dumps([{**period, **bad}])],
            )
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
    monkeypatch.setattr(purge_module, "compact", lambda _site: Compaction())  # as scelle before v14
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
        if not isinstance(conn, sqlite3.Connection):
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


def test_a_planted_row_keeps_its_batch_out_of_the_periods(history: History) -> None:
    """A row added to a destroyed batch around scelle (here as the database's owner) is
    not laundered into a period: the batch's rows no longer rebuild its ingest entry's
    Merkle root, so the batch stays in the index and is reported."""
    conn = history.conn
    (batch,) = _sql(
        conn,
        "SELECT batch_id FROM segment GROUP BY batch_id HAVING MIN(purge_run) = 1 "
        "AND MAX(purge_run) = 1 AND COUNT(destroyed_at) = COUNT(*) ORDER BY batch_id LIMIT 1",
    ).fetchone()
    _sql(
        conn,
        "INSERT INTO segment (camera_id, path, start_us, end_us, size, sha256, batch_id, "
        "purge_run, destroyed_at) SELECT camera_id, path || '.planted', start_us, end_us, size, "
        "sha256, batch_id, purge_run, destroyed_at FROM segment WHERE batch_id = ? LIMIT 1",
        [batch],
    )
    compaction = compact(history.env.site)
    assert compaction.refused == [batch]
    assert compaction.moved > 0
    left = _sql(conn, "SELECT COUNT(*) FROM segment WHERE batch_id = ?", [batch]).fetchone()[0]
    assert left > 1


def test_a_destroyed_file_copied_back_is_not_indexed_again(
    store: Footage,  # noqa: F811 - the fixture from tests/test_purge.py
    tmp_path: Path,
) -> None:
    """Once compacted, no row says a path was destroyed: a file put back there (a backup
    restored, a recorder re-syncing, a plant) is refused by its time, and reported."""
    env = store.env
    victim = env.settings.home / "footage" / store.segment(2)
    backup = tmp_path / "copy.mp4"
    shutil.copy(victim, backup)
    code, report, _ = purge(env)
    assert code == 0 and report["history_compacted"] == 5 and not victim.exists()
    shutil.copy(backup, victim)
    an_hour_ago = datetime.now().timestamp() - 3600
    os.utime(victim, (an_hour_ago, an_hour_ago))  # settled
    os.utime(victim.parent, (an_hour_ago + 1, an_hour_ago + 1))  # its directory changed
    site = env.site
    scanned = scan(site, [get_camera(site, "C-012")], ADMIN)
    assert scanned.destroyed == [store.segment(2)] and scanned.segments == 0
    assert "recorded at a time a certified purge destroyed" in "\n".join(scan_lines(scanned))
    conn = raw_connection(env)
    try:
        rows = _sql(conn, "SELECT COUNT(*) FROM segment WHERE path = ?", [store.segment(2)])
        assert rows.fetchone()[0] == 0
    finally:
        conn.close()
