"""Recompute the ledger's tree from its entries, chunk by chunk, on every core.

The log is cut into chunks of 2**CHUNK_LEVEL entries, each a perfect subtree. A chunk
check reads the entry bytes, hashes the leaves, builds the chunk's perfect nodes and
compares them, level by level, with the stored ones; it returns the chunk's top nodes
and any node the caller asked for (to recompute checkpoint roots). It then re-derives
the chunk's audit index rows from the same bytes and compares them with the stored ones:
an index row edited so that an auditor's query misses an entry is caught by every
`ledger verify`, not only by a separate pass. Chunks are independent, so a million
entries verify on two cores in about half the time.

Each worker process has its own connection and checks each chunk in a read transaction
of its own, so the chunks may see later states of the database than the caller's.
They read only what a log of n entries already held when the caller fixed n: entries
and index rows below n, tree nodes over them, registrations before the chunk; all of it
append-only, which appends made meanwhile cannot change. So they check exactly what a
single snapshot would.
"""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from custody import index_check, merkle
from custody.db import Cursor, Database
from custody.merkle import HASH_SIZE

# 8,192 entries (~3 MB of entry bytes): what a chunk builds stays in the processor's
# caches; chunks of 65,536 took a quarter longer, entry for entry.
CHUNK_LEVEL = 13
PARALLEL_FROM = 3  # chunks; fewer run in this process
MMAP_BYTES = 1 << 30  # a worker reads the first GB of a SQLite file mapped in memory


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


def _all_stored(cur: Cursor, level: int, first: int, computed: Sequence[bytes]) -> bool:
    """Whether the nodes stored at `level` from `first` on are exactly `computed`, asked
    of SQLite in one query: each stored hash is compared with its slice of the computed
    ones, passed as one blob (a row per node fetched into Python was a fifth of the
    time). Every index in the range has one row (the primary key) if the count is right.
    False on PostgreSQL, or when anything differs: the caller then compares row by row."""
    if not cur.is_sqlite:
        return False
    count, differing = cur.execute(
        "SELECT COUNT(*), SUM(hash IS NOT substr(?, (idx - ?) * ? + 1, ?)) FROM ledger_node "
        "WHERE level = ? AND idx >= ? AND idx < ?",
        [b"".join(computed), first, HASH_SIZE, HASH_SIZE, level, first, first + len(computed)],
    ).fetchone()
    return bool(count == len(computed) and differing == 0)


def first_difference(a: Sequence[bytes], b: Sequence[bytes]) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


def check_chunk_on(cur: Cursor, lo: int, hi: int, wanted: Iterable[merkle.NodeKey]) -> ChunkResult:
    """Check entries [lo, hi) (lo aligned on the chunk size) against the stored tree.

    Without the cyclic garbage collector: a chunk builds a few hundred thousand objects
    (bytes, hashes, parsed fields, rows) that all live until it ends and form no cycle,
    and the collector's passes over them were a third of the time."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return _check_chunk_on(cur, lo, hi, wanted)
    finally:
        if paused:
            gc.enable()


def _check_chunk_on(cur: Cursor, lo: int, hi: int, wanted: Iterable[merkle.NodeKey]) -> ChunkResult:
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
        if _all_stored(cur, level, first, computed):
            continue
        stored = _stored(cur, level, first, len(computed))
        if stored != computed:
            j = first_difference(computed, stored)
            kind = "leaf" if level == 0 and j < len(stored) else "node"
            return ChunkResult(lo, hi, Defect(kind, level, first + j))
    keys = set(wanted) | set(merkle.perfect_nodes(lo, hi))
    nodes = {(lv, i): levels[lv][i - (lo >> lv)] for lv, i in keys}
    return ChunkResult(lo, hi, None, nodes, index_check.chunk_disagreement(cur, lo, hi, bodies))


_worker_db: Database | None = None  # a worker process's own, for all its chunks


def _open_worker(url: str) -> None:
    global _worker_db
    _worker_db = Database(url)


def _check_chunk(lo: int, hi: int, wanted: tuple[merkle.NodeKey, ...]) -> ChunkResult:
    """A chunk in a worker: in a read transaction of its own, on the worker's connection
    (closed when the worker exits)."""
    assert _worker_db is not None
    with _worker_db.read() as cur:
        if cur.is_sqlite:  # read the file's pages in place (this connection only)
            cur.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        return check_chunk_on(cur, lo, hi, wanted)


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
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_open_worker, initargs=(db.url,)
    ) as pool:
        return list(
            pool.map(
                _check_chunk,
                [lo for lo, _ in bounds],
                [hi for _, hi in bounds],
                [tuple(w) for w in per_chunk],
            )
        )
