"""Recompute the ledger's tree from its entries, chunk by chunk, on every core.

The log is cut into chunks of 2**CHUNK_LEVEL entries, each a perfect subtree. A chunk
check reads the entry bytes, hashes the leaves, builds the chunk's perfect nodes and
compares them, level by level, with the stored ones; it returns the chunk's top nodes
and any node the caller asked for (to recompute checkpoint roots). It then re-derives
the chunk's audit index rows from the same bytes and compares them with the stored ones:
an index row edited so that an auditor's query misses an entry is caught by every
`ledger verify`, not only by a separate pass. Chunks are independent, so a million
entries verify on two cores in about half the time. Each chunk opens its own
connection; the rows it reads (seq < n) never change once written.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from custody import audit, merkle
from custody.db import Cursor, Database

CHUNK_LEVEL = 16  # 65,536 entries: ~20 MB of entry bytes per chunk
PARALLEL_FROM = 3  # chunks; fewer run in this process


@dataclass(frozen=True)
class Defect:
    """The first thing in a chunk that does not match: a gap, a leaf or a node."""

    kind: str  # "gap" (index: chunk start), "leaf" (index: seq), "node"
    level: int
    index: int


@dataclass(frozen=True)
class ChunkResult:
    lo: int
    hi: int
    defect: Defect | None
    nodes: dict[merkle.NodeKey, bytes] = field(default_factory=dict)
    index_stray: int | None = None  # the first entry its audit index rows misstate


def _stored(cur: Cursor, level: int, first: int, count: int) -> list[bytes]:
    cur.execute(
        "SELECT hash FROM ledger_node WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx",
        [level, first, first + count],
    )
    return [h for (h,) in cur.fetchall()]  # bytes from sqlite3 and psycopg alike


def first_difference(a: Sequence[bytes], b: Sequence[bytes]) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


def check_chunk_on(cur: Cursor, lo: int, hi: int, wanted: Iterable[merkle.NodeKey]) -> ChunkResult:
    """Check entries [lo, hi) (lo aligned on the chunk size) against the stored tree."""
    sha256 = hashlib.sha256
    cur.execute("SELECT body FROM ledger_entry WHERE seq >= ? AND seq < ? ORDER BY seq", [lo, hi])
    bodies = [body for (body,) in cur.fetchall()]  # bytes from sqlite3 and psycopg alike
    leaves = [sha256(b"\x00" + body).digest() for body in bodies]
    if len(leaves) != hi - lo:
        return ChunkResult(lo, hi, Defect("gap", 0, lo))
    levels = merkle.tree_levels(leaves)
    for level, computed in enumerate(levels):
        if not computed:
            break
        first = lo >> level
        stored = _stored(cur, level, first, len(computed))
        if stored != computed:
            j = first_difference(computed, stored)
            kind = "leaf" if level == 0 and j < len(stored) else "node"
            return ChunkResult(lo, hi, Defect(kind, level, first + j))
    keys = set(wanted) | set(merkle.perfect_nodes(lo, hi))
    nodes = {(lv, i): levels[lv][i - (lo >> lv)] for lv, i in keys}
    return ChunkResult(lo, hi, None, nodes, audit.chunk_disagreement(cur, lo, hi, bodies))


def _check_chunk(url: str, lo: int, hi: int, wanted: tuple[merkle.NodeKey, ...]) -> ChunkResult:
    db = Database(url)
    try:
        with db.read() as cur:
            return check_chunk_on(cur, lo, hi, wanted)
    finally:
        db.dispose()


def check_chunks(
    db: Database, cur: Cursor, size: int, wanted: Iterable[merkle.NodeKey]
) -> list[ChunkResult]:
    """Check every chunk of a log of `size` entries; results in log order.

    `wanted` keys below CHUNK_LEVEL come back in the results' `nodes`.
    """
    step = 1 << CHUNK_LEVEL
    bounds = [(lo, min(lo + step, size)) for lo in range(0, size, step)]
    per_chunk: list[list[merkle.NodeKey]] = [[] for _ in bounds]
    for level, idx in wanted:
        if level < CHUNK_LEVEL:
            per_chunk[(idx << level) >> CHUNK_LEVEL].append((level, idx))
    if len(bounds) < PARALLEL_FROM:
        return [
            check_chunk_on(cur, lo, hi, w) for (lo, hi), w in zip(bounds, per_chunk, strict=True)
        ]
    # fork: workers inherit the imported modules and exit with os._exit, so they never
    # touch (or close) this process's open connection.
    context = multiprocessing.get_context("fork")
    workers = min(len(bounds), os.cpu_count() or 1)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(
            pool.map(
                _check_chunk,
                [db.url] * len(bounds),
                [lo for lo, _ in bounds],
                [hi for _, hi in bounds],
                [tuple(w) for w in per_chunk],
            )
        )
