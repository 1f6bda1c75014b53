"""What purges destroyed, once certified: per-period records instead of segment rows.

A centre destroys about a day of segments a night (1.1 million at 770 cameras of
one-minute segments), for years. Kept as rows, they would outgrow the live footage index
many times over. Once its run's certificate is written, a destroyed segment is no longer
needed one by one (the certificate's Merkle roots were checked against the rows when it
was made), except to vouch for the rows still live in its ingest batch. So whole batches
whose every row is destroyed by certified runs are compacted: their rows leave `segment`
for `destroyed_period` rows, one per stretch of a run's segments of a camera without a
gap and starting within one day of the site's zone, in one transaction.

A period keeps what the register and a requisition's status read: its start, its latest
end, its count, bytes and earliest destruction time, and for the segments that run past
the next midnight (`cut_us`), their count, first start and destruction time. So a day's
register reads the same from periods as it did from rows: a period starting that day
counts whole; of a period starting the day before, only the segments running past
midnight count, as the rows overlapping the day did. Gaps read the same too: a period
has none inside, and its tail is one stretch across midnight.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from custody.db import Cursor
from custody.site import Site
from custody.timewindow import to_us
from exporters.index import batch_rows_vouched

CHUNK = 200  # ingest batches (camera-hours) per transaction


@dataclass
class Period:
    purge_run: int
    camera_id: str
    start_us: int
    end_us: int
    segments: int
    bytes: int
    destroyed_at: str
    last_destroyed_at: str
    cut_us: int
    tail_segments: int = 0
    tail_start_us: int | None = None
    tail_destroyed_at: str | None = None


class Midnights:
    """The next midnight of the site's zone after a recorder time, in recorder time."""

    def __init__(self, zone: str) -> None:
        self.zone = ZoneInfo(zone)
        self._cache: dict[tuple[int, Any], int] = {}

    def after(self, recorder_us: int, offset_us: int) -> int:
        day = datetime.fromtimestamp((recorder_us - offset_us) / 1e6, self.zone).date()
        key = (offset_us, day)
        if key not in self._cache:
            midnight = datetime.combine(day + timedelta(days=1), time(), tzinfo=self.zone)
            self._cache[key] = to_us(midnight) + offset_us
        return self._cache[key]


def periods(
    rows: Iterable[tuple[str, int, int, int, int, str, int]], midnights: Midnights
) -> list[Period]:
    """Rows (camera, run, start, end, size, destroyed_at, offset_us) ordered by camera,
    run and start, as periods: a new one at a gap (a start after every earlier end, as
    the register finds gaps) or at a midnight."""
    out: list[Period] = []
    p: Period | None = None
    for camera, run, start, end, size, at, offset in rows:
        if (
            p is None
            or (camera, run) != (p.camera_id, p.purge_run)
            or start > p.end_us
            or start >= p.cut_us
        ):
            p = Period(run, camera, start, end, 0, 0, at, at, midnights.after(start, offset))
            out.append(p)
        p.segments += 1
        p.bytes += size
        p.end_us = max(p.end_us, end)
        p.destroyed_at = min(p.destroyed_at, at)
        p.last_destroyed_at = max(p.last_destroyed_at, at)
        if end > p.cut_us:
            p.tail_segments += 1
            p.tail_start_us = start if p.tail_start_us is None else min(p.tail_start_us, start)
            p.tail_destroyed_at = min(p.tail_destroyed_at or at, at)
    return out


@dataclass
class Compaction:
    moved: int = 0  # segment rows now kept as periods
    refused: list[int] = field(default_factory=list)  # batches whose rows fail their entry


def compact(site: Site) -> Compaction:
    """Move the segment rows of every batch that certified runs wholly destroyed into
    periods, run by run (candidates found through the index of a run's rows, so the
    cost follows what awaits compaction, not the live index). A batch whose rows are
    not exactly those its ingest entry vouches for (a row planted or edited) stays, and
    is reported. Call under the purge's lock."""
    midnights = Midnights(site.settings.timezone)
    done = Compaction()
    with site.db.read() as cur:
        waiting = {int(r) for (r,) in cur.execute(
            "SELECT DISTINCT purge_run FROM segment WHERE purge_run IS NOT NULL"
        ).fetchall()}  # fmt: skip
        cur.execute(
            "SELECT id FROM purge_run WHERE certificate IS NOT NULL "
            "AND state IN ('done', 'partial') ORDER BY id"
        )
        runs = [int(r) for (r,) in cur.fetchall() if int(r) in waiting]
    seen: set[int] = set()
    for run in runs:
        with site.db.read() as cur:
            cur.execute(
                "SELECT DISTINCT batch_id FROM segment WHERE purge_run = ? "
                "AND destroyed_at IS NOT NULL",
                [run],
            )
            batches = sorted({int(b) for (b,) in cur.fetchall()} - seen)
        seen.update(batches)
        for at in range(0, len(batches), CHUNK):
            _compact_batches(site, batches[at : at + CHUNK], midnights, done)
    return done


def _ready(cur: Cursor, batch: int, refused: list[int]) -> bool:
    """Whether every row of the batch is destroyed by a certified run, and the rows are
    those its ingest entry vouches for (checked under the writer lock)."""
    cur.execute(
        "SELECT s.id, s.camera_id, s.destroyed_at, r.certificate, r.state FROM segment s "
        "LEFT JOIN purge_run r ON r.id = s.purge_run WHERE s.batch_id = ?",
        [batch],
    )
    rows = cur.fetchall()
    if not rows or any(
        at is None or cert is None or state not in ("done", "partial")
        for _id, _cam, at, cert, state in rows
    ):
        return False
    if batch_rows_vouched(cur, batch, rows[0][1]) != {int(r[0]) for r in rows}:
        refused.append(batch)
        return False
    return True


def _compact_batches(
    site: Site, candidates: Sequence[int], midnights: Midnights, done: Compaction
) -> None:
    with site.db.write() as cur:
        batches = [b for b in candidates if _ready(cur, b, done.refused)]
        if not batches:
            return
        marks = ", ".join("?" * len(batches))
        cur.execute(
            "SELECT s.camera_id, s.purge_run, s.start_us, s.end_us, s.size, s.destroyed_at, "
            f"c.clock_offset_ms * 1000 FROM segment s JOIN camera c ON c.id = s.camera_id "
            f"WHERE s.batch_id IN ({marks}) ORDER BY s.camera_id, s.purge_run, s.start_us, s.id",
            batches,
        )
        rows = cur.fetchall()
        made = periods(rows, midnights)
        if cur.is_sqlite:
            cur.executemany(
                "INSERT INTO destroyed_period (purge_run, camera_id, start_us, end_us, "
                "segments, bytes, destroyed_at, last_destroyed_at, cut_us, tail_segments, "
                "tail_start_us, tail_destroyed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [tuple(asdict(p).values()) for p in made],
            )
            cur.execute(f"DELETE FROM segment WHERE batch_id IN ({marks})", batches)
        else:
            cur.execute(
                "SELECT scelle_purge_compact(?, ?::jsonb)",
                [batches, json.dumps([asdict(p) for p in made])],
            )
        done.moved += len(rows)


@dataclass(frozen=True)
class Destroyed:
    """Destroyed segments overlapping a period, as a run's rows there would say."""

    purge_run: int
    destroyed_at: str
    segments: int
    start_us: int
    end_us: int


def destroyed_periods(cur: Cursor, camera_id: str, start_us: int, end_us: int) -> list[Destroyed]:
    """What the periods of a camera say of [start_us, end_us) (recorder clock): whole
    periods starting inside it, and the tail past midnight of one starting before it.
    (For a start that is not one of the periods' midnights, as after a camera's clock
    offset changed, a straddling period counts whole.)"""
    cur.execute(
        "SELECT purge_run, start_us, end_us, segments, destroyed_at, cut_us, tail_segments, "
        "tail_start_us, tail_destroyed_at FROM destroyed_period "
        "WHERE camera_id = ? AND start_us < ? AND end_us > ?",
        [camera_id, end_us, start_us],
    )
    out = []
    for run, start, end, n, at, cut, tail, tail_start, tail_at in cur.fetchall():
        if start < start_us and cut == start_us and tail:
            out.append(Destroyed(int(run), tail_at, int(tail), int(tail_start), int(end)))
        else:
            out.append(Destroyed(int(run), at, int(n), int(start), int(end)))
    return out


# Gaps in what a camera recorded over [start, end): a segment starting after every
# earlier one has ended (segments may overlap, so the running maximum of their ends),
# over live rows, destroyed rows not yet compacted, and periods (a straddling one by its
# tail). Parameters: camera, end, start, start, start, camera, end, start.
HOLES = (
    "SELECT before_end, start_us FROM (SELECT start_us, MAX(end_us) OVER (ORDER BY start_us "
    "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before_end FROM ("
    "SELECT start_us, end_us FROM segment WHERE camera_id = ? AND start_us < ? AND end_us > ? "
    "UNION ALL SELECT CASE WHEN start_us < ? AND cut_us = ? AND tail_segments > 0 "
    "THEN tail_start_us ELSE start_us END AS start_us, end_us FROM destroyed_period "
    "WHERE camera_id = ? AND start_us < ? AND end_us > ?) AS u) AS s "
    "WHERE before_end IS NOT NULL AND start_us > before_end ORDER BY start_us"
)
