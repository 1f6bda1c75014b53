"""The custody ledger: an append-only Merkle log of RFC 8785 entries.

Each append runs in one serialised transaction: read the current size and the
frontier (at most log2 n stored nodes), insert the entry's exact bytes and the new
perfect nodes. On PostgreSQL (v16) an append of its own is queued instead, and appended
with every other queued one in one transaction and one commit (custody/pg_queue.py).
Nothing here ever reads the whole log; that is verify.py's job.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from custody import audit, merkle, pg_queue, text
from custody.canonical import canonical_bytes
from custody.db import LOCK_WAIT_SECONDS, Cursor, Database
from custody.entry import Appended, Record, entry_body, entry_fields, utc_now
from custody.errors import DatabaseError, InputError, IntegrityError
from custody.i18n import _
from custody.proofs import ConsistencyProof, InclusionProof


def fetch_nodes(cur: Cursor, keys: Sequence[merkle.NodeKey]) -> dict[merkle.NodeKey, bytes]:
    """Stored perfect nodes by (level, idx), in one query."""
    found: dict[merkle.NodeKey, bytes] = {}
    for start in range(0, len(keys), 200):
        chunk = keys[start : start + 200]
        where = " OR ".join(["(level = ? AND idx = ?)"] * len(chunk))
        params = [v for key in chunk for v in key]
        cur.execute(f"SELECT level, idx, hash FROM ledger_node WHERE {where}", params)
        for level, idx, h in cur.fetchall():
            found[(level, idx)] = bytes(h)
    return found


def current_size(cur: Cursor) -> int:
    row = cur.execute("SELECT MAX(seq) FROM ledger_entry").fetchone()
    return 0 if row[0] is None else int(row[0]) + 1


def holds(cur: Cursor, size: int, root: bytes) -> bool:
    """Whether the log's first `size` entries have this root (a checkpoint, a token, an
    agent's answer about this very log, not a restored or another one)."""
    return (
        size <= current_size(cur)
        and merkle.root_at(size, lambda keys: fetch_nodes(cur, keys)) == root
    )


class Ledger:
    """Append to and read from the site's ledger."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # The frontier after our last append: reused while nobody else has appended
        # since (same size), which saves a node look-up per append.
        self._frontier: merkle.CompactRange | None = None
        self._database_appends: bool | None = None  # known at the first append
        self._queued: bool | None = None  # PostgreSQL v16: appends are queued and grouped

    def append(self, actor: str, record: Record) -> Appended:
        """Append one entry in its own durable transaction."""
        return self.append_many(actor, [record])[0]

    def append_many(self, actor: str, records: Sequence[Record]) -> list[Appended]:
        """Append entries in one transaction (a batch is all or nothing)."""
        if not actor.strip():
            raise InputError(_("the acting agent is unknown"))
        for record in records:
            record.check()
        if records and self._queues():
            return queued_append(self.db, actor, records)
        with self.db.write() as cur:
            appended, frontier = append_locked(
                cur, actor, records, self._frontier, in_database=self._in_database(cur)
            )
        self._frontier = frontier  # only once committed
        return appended

    def append_in(self, cur: Cursor, actor: str, records: Sequence[Record]) -> list[Appended]:
        """Append inside the caller's write transaction, so that a change and the entry
        recording it commit together (or not at all)."""
        for record in records:
            record.check()
        self._frontier = None  # the caller commits: our cache cannot know when
        return append_locked(cur, actor, records, in_database=self._in_database(cur))[0]

    def note(self, actor: str, subject: str, reason: str, procedure: str | None = None) -> Appended:
        """`ledger note`: record an event that happened outside scelle (a phone call, a
        seal opened), so that the custody trail has no silent hole. The text rules are
        applied here, not only by the CLI, so that any caller records printable text."""
        text.line(subject, _("the subject"))
        text.prose(reason, _("the reason"))
        if procedure is not None:
            text.line(procedure, _("the procedure number"))
        return self.append(actor, Record("ledger.note", subject, reason, procedure))

    def _queues(self) -> bool:
        if self._queued is None:
            if self.db.is_sqlite:
                self._queued = False
            else:
                with self.db.read() as cur:
                    self._queued = bool(
                        cur.execute(
                            "SELECT to_regprocedure("
                            "'scelle_queued_append(bytea[],bytea[],text)') IS NOT NULL"
                        ).fetchone()[0]
                    )
        return self._queued

    def _in_database(self, cur: Cursor) -> bool:
        if self._database_appends is None:
            self._database_appends = database_appends(cur)
        return self._database_appends

    def size(self) -> int:
        with self.db.read() as cur:
            return current_size(cur)

    def entry(self, seq: int) -> bytes:
        """The exact stored bytes of entry `seq`."""
        if not 0 <= seq < 2**62:
            raise InputError(_("no ledger entry {seq}").format(seq=seq))
        with self.db.read() as cur:
            row = cur.execute("SELECT body FROM ledger_entry WHERE seq = ?", [seq]).fetchone()
            if row is None:
                raise InputError(
                    _("no ledger entry {seq} (the ledger has {size})").format(
                        seq=seq, size=current_size(cur)
                    )
                )
            return bytes(row[0])

    def entries(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Entries seq in [start, stop), in order, streamed."""
        with self.db.read() as cur:
            end = current_size(cur) if stop is None else stop
            cur.execute(
                "SELECT seq, body FROM ledger_entry WHERE seq >= ? AND seq < ? ORDER BY seq",
                [start, end],
            )
            while rows := cur.fetchmany(1000):
                for seq, body in rows:
                    yield int(seq), bytes(body)

    def root(self, size: int | None = None) -> tuple[int, bytes]:
        """(size, root) of the whole log, or of its first `size` entries."""
        with self.db.read() as cur:
            n = self._checked_size(cur, size)
            return n, merkle.root_at(n, lambda keys: fetch_nodes(cur, keys))

    def inclusion(self, index: int, size: int | None = None) -> InclusionProof:
        """Proof that entry `index` is in the tree of `size` entries (default: all)."""
        with self.db.read() as cur:
            n = self._checked_size(cur, size)
            if not 0 <= index < n:
                raise InputError(
                    _("no entry {index} in a tree of {size} entries").format(index=index, size=n)
                )

            def get(keys: Sequence[merkle.NodeKey]) -> dict[merkle.NodeKey, bytes]:
                return fetch_nodes(cur, keys)

            return InclusionProof(
                index=index,
                tree_size=n,
                leaf_hash=get([(0, index)])[(0, index)],
                hashes=tuple(merkle.inclusion_proof(index, n, get)),
                root=merkle.root_at(n, get),
            )

    def consistency(self, old: int, new: int | None = None) -> ConsistencyProof:
        """Proof that the tree of `old` entries is a prefix of the tree of `new`."""
        with self.db.read() as cur:
            n = self._checked_size(cur, new)
            if not 0 < old <= n:
                raise InputError(
                    _("--from must be between 1 and {size}, not {old}").format(size=n, old=old)
                )

            def get(keys: Sequence[merkle.NodeKey]) -> dict[merkle.NodeKey, bytes]:
                return fetch_nodes(cur, keys)

            return ConsistencyProof(
                old_size=old,
                new_size=n,
                old_root=merkle.root_at(old, get),
                new_root=merkle.root_at(n, get),
                hashes=tuple(merkle.consistency_proof(old, n, get)),
            )

    @staticmethod
    def _checked_size(cur: Cursor, size: int | None) -> int:
        n = current_size(cur)
        if size is None:
            return n
        if not 0 < size <= n:
            raise InputError(
                _("tree size must be between 1 and {size}, not {given}").format(size=n, given=size)
            )
        return size


def database_appends(cur: Cursor) -> bool:
    """Whether this database appends through `scelle_append` (PostgreSQL, schema v6+)."""
    if cur.is_sqlite:
        return False
    row = cur.execute("SELECT to_regprocedure('scelle_append(bytea[])') IS NOT NULL").fetchone()
    return bool(row[0])


def pieces(actor: str, record: Record) -> tuple[bytes, bytes]:
    """An entry's canonical bytes before its seq, and between its seq and its time
    (custody/pg_queue.py): whoever appends it puts them in. The subject is the one field
    between the two; top-level keys are sorted, so the pieces of canonical parts make the
    canonical whole, which is checked here."""
    whole = entry_body(0, pg_queue.PLACEHOLDER_TIME, actor, record)
    subject = canonical_bytes({"subject": record.subject})[1:-1]  # '"subject":…'
    mid = b"," + subject + b',"time":"'
    end = mid + pg_queue.PLACEHOLDER_TIME.encode() + pg_queue.TAIL
    head = whole[: len(whole) - len(end) - 1]
    if not head.endswith(b'"seq":') or whole != head + b"0" + end:
        raise IntegrityError(_("cannot cut a ledger entry around its seq and time"))
    return head, mid


def queued_append(db: Database, actor: str, records: Sequence[Record]) -> list[Appended]:
    """Queue the entries (all or nothing) and return once they are in the ledger, by a
    durable commit: appended by this session at once if the ledger's lock is free, else
    by whoever holds it, with every other queued entry (custody/pg_queue.py), in one
    round trip. Interrupted while it waits, the call takes the entries back if no group
    took them yet (as an interrupted transaction would have written nothing)."""
    cut = [pieces(actor, record) for record in records]
    heads, mids = [h for h, _m in cut], [m for _h, m in cut]
    queued, seq, at, refusal, code = db.call(  # %b: arrays sent binary, half the work
        "CALL scelle_queued_append(%b, %b, ?, NULL, NULL, NULL, NULL, NULL)",
        [heads, mids, f"{LOCK_WAIT_SECONDS}s"],
    )
    if refusal is not None:
        raise db.refusal(str(code), str(refusal))
    if seq is None:  # its result dropped before it was read (a group held past a minute)
        raise DatabaseError(
            _(
                "the ledger entries queued as {queued} were appended or refused, and their "
                "result is lost: 'scelle ledger show' says which"
            ).format(queued=queued)
        )
    appended = []
    for offset, (head, mid) in enumerate(cut):
        body = head + str(int(seq) + offset).encode() + mid + str(at).encode() + pg_queue.TAIL
        appended.append(Appended(int(seq) + offset, body, merkle.leaf_hash(body)))
    return appended


def append_locked(
    cur: Cursor,
    actor: str,
    records: Sequence[Record],
    cached: merkle.CompactRange | None = None,
    *,
    in_database: bool | None = None,
) -> tuple[list[Appended], merkle.CompactRange | None]:
    """Append inside a transaction that already holds the writer lock.

    Returns the entries and the new frontier; `cached` is used only if its size is
    the log's current size. On PostgreSQL the database appends (custody/pg_ledger.py):
    the entries carry the server's time, and the server computes their tree nodes and
    index rows itself; no frontier is kept then.
    """
    if in_database is None:
        in_database = database_appends(cur)
    if in_database:
        size, time = cur.execute("SELECT size, at FROM scelle_ledger_head()").fetchone()
        appended = []
        for offset, record in enumerate(records):
            body = canonical_bytes(entry_fields(int(size) + offset, time, actor, record))
            appended.append(Appended(int(size) + offset, body, merkle.leaf_hash(body)))
        cur.execute("SELECT scelle_append(?)", [[a.body for a in appended]])
        return appended, None
    n = current_size(cur)
    if cached is not None and cached.size == n:
        tree = merkle.CompactRange(n, list(cached.hashes))
    else:
        keys = merkle.frontier_keys(n)
        nodes = fetch_nodes(cur, keys)
        if len(nodes) != len(keys):
            raise IntegrityError(_("the ledger tree is damaged: a frontier node is missing"))
        tree = merkle.CompactRange(n, [nodes[k] for k in keys])
    time = utc_now()
    appended = []
    new_nodes: list[tuple[int, int, bytes]] = []
    fields = []
    for record in records:
        fields.append(entry_fields(tree.size, time, actor, record))
        body = canonical_bytes(fields[-1])
        leaf = merkle.leaf_hash(body)
        appended.append(Appended(tree.size, body, leaf))
        new_nodes += tree.push(leaf)
    cur.insert("ledger_entry (seq, body)", [(a.seq, a.body) for a in appended])
    cur.insert("ledger_node (level, idx, hash)", new_nodes)
    audit.index_entries(cur, fields)
    return appended, tree
