"""Full verification of the ledger, as a sceptical auditor would run it.

Recomputes every leaf and every perfect node from the stored entry bytes, checks every
checkpoint's signature (database, checkpoint file, and files an auditor kept) and that
each one's root is the root of the log's first `size` entries. Raises on the first
defect with a message that names it; returns a report only when everything holds.

Order matters for the message: the site key, then entries (missing, reordered,
altered), then checkpoint signatures, then the stored tree, then each checkpoint from
the smallest (history rewritten and re-hashed; log truncated or rolled back).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from custody import merkle
from custody.checkpoints import (
    StoredCheckpoint,
    db_checkpoints,
    file_checkpoints,
    open_checkpoint,
    read_identity,
)
from custody.config import Settings
from custody.db import Cursor, Database
from custody.errors import InputError, IntegrityError
from custody.keys import load_public_key, public_raw
from custody.ledger import decode_entry
from custody.note import Checkpoint


@dataclass(frozen=True)
class LedgerReport:
    entries: int
    root: bytes
    checkpoints: int  # distinct signed checkpoints verified
    latest_signed: int  # size of the largest checkpoint (0 if none)
    auditor_files: int


def _leaf_hashes(cur: Cursor) -> list[bytes]:
    """Stream the entries in order, checking seq is gapless; return their leaf hashes."""
    sha256 = hashlib.sha256
    leaves: list[bytes] = []
    cur.execute("SELECT seq, body FROM ledger_entry ORDER BY seq")
    while rows := cur.fetchmany(20000):
        for seq, body in rows:
            if seq != len(leaves):
                gap = f"{len(leaves) - 1} to {seq}" if leaves else f"start to {seq}"
                raise IntegrityError(
                    f"ledger entry {len(leaves)} is missing: seq jumps from {gap}"
                )
            leaves.append(sha256(b"\x00" + body).digest())
    if not leaves:
        raise IntegrityError("the ledger is empty: entry 0 is missing")
    return leaves


def _stored_level(cur: Cursor, level: int) -> list[bytes]:
    cur.execute("SELECT idx, hash FROM ledger_node WHERE level = ? ORDER BY idx", [level])
    hashes: list[bytes] = []
    for idx, h in cur:
        if idx != len(hashes):
            raise IntegrityError(
                f"tree node (level {level}, index {len(hashes)}) is missing from the store"
            )
        hashes.append(bytes(h))
    return hashes


def _explain_leaf(cur: Cursor, seq: int) -> IntegrityError:
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


def _check_leaves(cur: Cursor, leaves: list[bytes]) -> None:
    stored = _stored_level(cur, 0)
    if stored[: len(leaves)] != leaves:
        for seq, (mine, theirs) in enumerate(zip(leaves, stored, strict=False)):
            if mine != theirs:
                raise _explain_leaf(cur, seq)
        raise IntegrityError(f"tree node (level 0, index {len(stored)}) is missing from the store")
    if len(stored) > len(leaves):
        raise IntegrityError(
            f"the tree holds {len(stored)} leaves but the log {len(leaves)} entries: "
            "entries removed from the tail"
        )


def _check_tree(cur: Cursor, levels: list[list[bytes]]) -> None:
    for level in range(1, len(levels)):
        stored = _stored_level(cur, level)
        if stored != levels[level]:
            for idx, (mine, theirs) in enumerate(zip(levels[level], stored, strict=False)):
                if mine != theirs:
                    raise IntegrityError(
                        f"tree node (level {level}, index {idx}) does not match the entries"
                    )
            raise IntegrityError(
                f"the tree holds {len(stored)} nodes at level {level}, "
                f"the entries make {len(levels[level])}"
            )
    above = cur.execute(
        "SELECT COUNT(*) FROM ledger_node WHERE level >= ?", [len(levels)]
    ).fetchone()[0]
    if above:
        raise IntegrityError("the tree holds nodes above its root: entries removed")


def verify_ledger(
    db: Database, settings: Settings, auditor_files: Sequence[Path] = ()
) -> LedgerReport:
    """Verify everything; raise IntegrityError (or KeyProblem) on the first defect."""
    with db.read() as cur:
        identity = read_identity(cur)
        site_key = load_public_key(settings.public_key_file)
        if public_raw(site_key) != public_raw(identity.public_key):
            raise IntegrityError(
                f"the site public key {settings.public_key_file} is not the key recorded in "
                "ledger entry 0: key replaced"
            )
        leaves = _leaf_hashes(cur)
        _check_leaves(cur, leaves)
        n = len(leaves)

        in_db = db_checkpoints(cur)
        in_file = file_checkpoints(settings.checkpoint_file)
        kept: list[StoredCheckpoint] = []
        for path in auditor_files:
            if not path.is_file():
                raise InputError(f"no checkpoint file at {path}")
            found = file_checkpoints(path, label=str(path))
            if not found:
                raise IntegrityError(f"{path}: holds no checkpoint")
            kept += found
        opened: list[tuple[StoredCheckpoint, Checkpoint]] = [
            (s, open_checkpoint(s, identity)) for s in in_db + in_file + kept
        ]
        file_notes = {s.note for s in in_file}
        for s in in_db:
            if s.note not in file_notes:
                raise IntegrityError(
                    f"{s.where} is missing from {settings.checkpoint_file}: "
                    "checkpoint file truncated or replaced"
                )
        levels = merkle.tree_levels(leaves)
        _check_tree(cur, levels)
        # Smallest first: a rewrite shows as the first root that differs, a truncation
        # or rollback as a checkpoint larger than the log once all smaller ones match.
        for s, cp in sorted(opened, key=lambda pair: pair[1].size):
            if cp.size > n:
                raise IntegrityError(
                    f"{s.where} was signed for {cp.size} entries but the log has {n}: "
                    "log truncated or an older database restored"
                )
            if merkle.levels_root(levels, cp.size) != cp.root:
                raise IntegrityError(
                    f"{s.where}: its root for {cp.size} entries does not match the log: "
                    f"history before entry {cp.size} rewritten"
                )
    return LedgerReport(
        entries=n,
        root=merkle.levels_root(levels, n),
        checkpoints=len({s.note for s, _ in opened}),
        latest_signed=max((cp.size for _, cp in opened), default=0),
        auditor_files=len(auditor_files),
    )
