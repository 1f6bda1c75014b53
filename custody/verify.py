"""Full verification of the ledger, as a sceptical auditor would run it.

Recomputes every leaf and every perfect node from the stored entry bytes (treecheck.py),
checks every checkpoint's signature (database, checkpoint file, and files an auditor
kept) and that each one's root is the root of the log's first `size` entries. Raises
on the first defect with a message that names it; returns a report only when all holds.

Order matters for the message: the site key, then the checkpoints' signatures, then
the entries and the stored tree in log order (missing, reordered, altered), then each
checkpoint from the smallest (history rewritten and re-hashed; log truncated or
rolled back).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from custody import merkle, treecheck
from custody.checkpoints import (
    StoredCheckpoint,
    db_checkpoints,
    disavowed,
    file_checkpoints,
    open_checkpoint,
    read_identity,
    station_id,
    usable,
)
from custody.config import Settings
from custody.db import Cursor, Database
from custody.entry import decode_entry
from custody.errors import InputError, IntegrityError
from custody.keys import load_public_key, public_raw
from custody.ledger import current_size
from custody.note import Checkpoint


@dataclass(frozen=True)
class LedgerReport:
    entries: int
    root: bytes
    checkpoints: int  # distinct signed checkpoints verified
    latest_signed: int  # size of the largest checkpoint (0 if none)
    auditor_files: int
    warnings: tuple[str, ...] = ()  # forged database checkpoints, disavowed


def _explain(cur: Cursor, defect: treecheck.Defect, hi: int) -> IntegrityError:
    """Turn a chunk's first defect into the sentence an auditor needs."""
    if defect.kind == "gap":
        expected = defect.index
        cur.execute(
            "SELECT seq FROM ledger_entry WHERE seq >= ? AND seq < ? ORDER BY seq",
            [defect.index, hi],
        )
        for (seq,) in cur.fetchall():
            if seq != expected:
                break
            expected += 1
        after = f"from {expected - 1} to" if expected else "from the start to"
        following = cur.execute(
            "SELECT MIN(seq) FROM ledger_entry WHERE seq > ?", [expected]
        ).fetchone()[0]
        return IntegrityError(f"ledger entry {expected} is missing: seq jumps {after} {following}")
    if defect.kind == "leaf":
        seq = defect.index
        body = cur.execute("SELECT body FROM ledger_entry WHERE seq = ?", [seq]).fetchone()[0]
        try:
            inside = decode_entry(bytes(body))["seq"]
        except IntegrityError:
            inside = seq
        if inside != seq:
            return IntegrityError(
                f"ledger entry {seq} holds the content of entry {inside}: entries reordered"
            )
        return IntegrityError(
            f"ledger entry {seq} was altered: its bytes no longer match the hash recorded "
            "when it was appended"
        )
    return IntegrityError(
        f"tree node (level {defect.level}, index {defect.index}) is missing or does not "
        "match the entries"
    )


def _check_upper(cur: Cursor, tops: list[bytes], size: int) -> list[list[bytes]]:
    """Levels above the chunks, recomputed and compared; nothing stored past the end."""
    base = treecheck.CHUNK_LEVEL
    upper = merkle.tree_levels(tops) if tops else [[]]
    for j in range(1, len(upper)):
        level = base + j
        cur.execute("SELECT hash FROM ledger_node WHERE level = ? ORDER BY idx", [level])
        stored = [bytes(h) for (h,) in cur.fetchall()]
        if stored[: len(upper[j])] != upper[j]:
            idx = treecheck.first_difference(upper[j], stored)
            raise _explain(cur, treecheck.Defect("node", level, idx), size)
    for level in range(size.bit_length() + 1):
        last = cur.execute("SELECT MAX(idx) FROM ledger_node WHERE level = ?", [level]).fetchone()[
            0
        ]
        if last is not None and last >= size >> level:
            raise IntegrityError(
                f"the tree holds nodes past the log's {size} entries (level {level}, index "
                f"{last}): entries removed from the tail"
            )
    if cur.execute(
        "SELECT COUNT(*) FROM ledger_node WHERE level > ?", [size.bit_length()]
    ).fetchone()[0]:
        raise IntegrityError("the tree holds nodes above its root: entries removed from the tail")
    return upper


def _opened_checkpoints(
    cur: Cursor, settings: Settings, auditor_files: Sequence[Path], strict: bool
) -> tuple[list[tuple[StoredCheckpoint, Checkpoint]], list[str]]:
    identity = read_identity(cur)
    in_db = db_checkpoints(cur)
    if not settings.checkpoint_file.is_file():
        raise IntegrityError(
            f"the checkpoint file {settings.checkpoint_file} is missing: every site signs one "
            "at init, so it was deleted, moved or the setting points elsewhere"
        )
    in_file = file_checkpoints(settings.checkpoint_file)
    if not in_file:
        raise IntegrityError(f"{settings.checkpoint_file} holds no checkpoint: it was emptied")
    kept: list[StoredCheckpoint] = []
    for path in auditor_files:
        if not path.is_file():
            raise InputError(f"no checkpoint file at {path}")
        found = file_checkpoints(path, label=str(path))
        if not found:
            raise IntegrityError(f"{path}: holds no checkpoint")
        kept += found
    opened, forged = usable(in_db, identity)
    waived = disavowed(cur)
    ignored = []
    for s, why in forged:
        if s.row not in waived:
            raise IntegrityError(
                f"{why} (a forged row, added by {s.signed_by or 'an unknown login'})",
                hint=f"investigate; then an administrator records it: scelle ledger disavow "
                f"{s.row} --reason …",
            )
        ignored.append(f"{s.where} (added by {s.signed_by or 'unknown'}) is forged: disavowed")
    opened += [(s, open_checkpoint(s, identity)) for s in in_file + kept]
    # This station's file must hold every checkpoint recorded for it (on SQLite, every
    # one: a SQLite site has one station, and rows from before v6 name none).
    mine = station_id(settings.checkpoint_file)
    in_file_heads = {(cp.size, cp.root) for s, cp in opened if s in in_file}
    for s, cp in opened:
        required = s.station == mine or (strict and s.station is None)
        if s.row is not None and (cp.size, cp.root) not in in_file_heads and required:
            raise IntegrityError(
                f"{s.where} is missing from {settings.checkpoint_file}: "
                "checkpoint file truncated or replaced"
            )
    return opened, ignored


def verify_ledger(
    db: Database, settings: Settings, auditor_files: Sequence[Path] = ()
) -> LedgerReport:
    """Verify everything; raise IntegrityError (or SigningKeyError) on the first defect."""
    with db.read() as cur:
        identity = read_identity(cur)
        site_key = load_public_key(settings.public_key_file)
        if public_raw(site_key) != public_raw(identity.public_key):
            raise IntegrityError(
                f"the site public key {settings.public_key_file} is not the key recorded in "
                "ledger entry 0: key replaced"
            )
        opened, ignored = _opened_checkpoints(
            cur, settings, auditor_files, strict=db.path is not None
        )
        n = current_size(cur)
        sizes = sorted({cp.size for _, cp in opened if cp.size <= n} | {n})
        wanted = {key for m in sizes for key in merkle.perfect_nodes(0, m)}

        results = treecheck.check_chunks(db, cur, n, wanted)
        found: dict[merkle.NodeKey, bytes] = {}
        for result in results:
            if result.defect is not None:
                raise _explain(cur, result.defect, result.hi)
            found.update(result.nodes)
        base = treecheck.CHUNK_LEVEL
        tops = [found[(base, r.lo >> base)] for r in results if r.hi - r.lo == 1 << base]
        upper = _check_upper(cur, tops, n)
        for j, level_nodes in enumerate(upper):
            found.update({(base + j, i): h for i, h in enumerate(level_nodes)})

        def root(m: int) -> bytes:
            return merkle.fold([found[key] for key in merkle.perfect_nodes(0, m)])

        # Smallest first: a rewrite shows as the first root that differs, a truncation
        # or rollback as a checkpoint larger than the log once all smaller ones match.
        for s, cp in sorted(opened, key=lambda pair: pair[1].size):
            if cp.size > n:
                raise IntegrityError(
                    f"{s.where} was signed for {cp.size} entries but the log has {n}: "
                    "log truncated or an older database restored"
                )
            if root(cp.size) != cp.root:
                raise IntegrityError(
                    f"{s.where}: its root for {cp.size} entries does not match the log: "
                    f"history before entry {cp.size} rewritten"
                )
    strays = [r.index_stray for r in results if r.index_stray is not None]
    if strays:  # last: a rewritten log shows first as the checkpoints it breaks
        raise IntegrityError(
            f"the audit index disagrees with ledger entry {strays[0]}: an auditor's query "
            "could miss it or show it wrongly (index edited)"
        )
    return LedgerReport(
        entries=n,
        root=root(n),
        checkpoints=len({s.note for s, _ in opened}),
        latest_signed=max((cp.size for _, cp in opened), default=0),
        auditor_files=len(auditor_files),
        warnings=tuple(ignored),
    )
