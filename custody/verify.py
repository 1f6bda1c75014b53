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
from custody.i18n import _
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
    latest_note: str | None = None  # the largest verified checkpoint, as signed


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
        following = cur.execute(
            "SELECT MIN(seq) FROM ledger_entry WHERE seq > ?", [expected]
        ).fetchone()[0]
        if expected:
            message = _("ledger entry {seq} is missing: seq jumps from {before} to {after}")
        else:
            message = _("ledger entry {seq} is missing: seq jumps from the start to {after}")
        return IntegrityError(message.format(seq=expected, before=expected - 1, after=following))
    if defect.kind == "leaf":
        seq = defect.index
        body = cur.execute("SELECT body FROM ledger_entry WHERE seq = ?", [seq]).fetchone()[0]
        try:
            inside = decode_entry(bytes(body))["seq"]
        except IntegrityError:
            inside = seq
        if inside != seq:
            return IntegrityError(
                _(
                    "ledger entry {seq} holds the content of entry {inside}: entries reordered"
                ).format(seq=seq, inside=inside)
            )
        return IntegrityError(
            _(
                "ledger entry {seq} was altered: its bytes no longer match the hash recorded "
                "when it was appended"
            ).format(seq=seq)
        )
    return IntegrityError(
        _(
            "tree node (level {level}, index {index}) is missing or does not match the entries"
        ).format(level=defect.level, index=defect.index)
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
                _(
                    "the tree holds nodes past the log's {size} entries (level {level}, index "
                    "{index}): entries removed from the tail"
                ).format(size=size, level=level, index=last)
            )
    if cur.execute(
        "SELECT COUNT(*) FROM ledger_node WHERE level > ?", [size.bit_length()]
    ).fetchone()[0]:
        raise IntegrityError(
            _("the tree holds nodes above its root: entries removed from the tail")
        )
    return upper


def _opened_checkpoints(
    cur: Cursor, settings: Settings, auditor_files: Sequence[Path], strict: bool
) -> tuple[list[tuple[StoredCheckpoint, Checkpoint]], list[str]]:
    identity = read_identity(cur)
    in_db = db_checkpoints(cur)
    if not settings.checkpoint_file.is_file():
        raise IntegrityError(
            _(
                "the checkpoint file {path} is missing: every site signs one "
                "at init, so it was deleted, moved or the setting points elsewhere"
            ).format(path=settings.checkpoint_file)
        )
    in_file = file_checkpoints(settings.checkpoint_file)
    if not in_file:
        raise IntegrityError(
            _("{path} holds no checkpoint: it was emptied").format(path=settings.checkpoint_file)
        )
    kept: list[StoredCheckpoint] = []
    for path in auditor_files:
        if not path.is_file():
            raise InputError(_("no checkpoint file at {path}").format(path=path))
        found = file_checkpoints(path, label=str(path))
        if not found:
            raise IntegrityError(_("{path}: holds no checkpoint").format(path=path))
        kept += found
    opened, forged = usable(in_db, identity)
    waived = disavowed(cur)
    ignored = []
    for s, why in forged:
        if s.row not in waived:
            if s.signed_by:
                message = _("{problem} (a forged row, added by {login})")
            else:
                message = _("{problem} (a forged row, added by an unknown login)")
            raise IntegrityError(
                message.format(problem=why, login=s.signed_by),
                hint=_(
                    "investigate; then an administrator records it: scelle ledger disavow "
                    "{row} --reason …"
                ).format(row=s.row),
            )
        if s.signed_by:
            warning = _("{where} (added by {login}) is forged: disavowed")
        else:
            warning = _("{where} (added by unknown) is forged: disavowed")
        ignored.append(warning.format(where=s.where, login=s.signed_by))
    opened += [(s, open_checkpoint(s, identity)) for s in in_file + kept]
    # This station's file must hold every checkpoint recorded for it (on SQLite, every
    # one: a SQLite site has one station, and rows from before v6 name none).
    mine = station_id(settings.checkpoint_file)
    in_file_heads = {(cp.size, cp.root) for s, cp in opened if s in in_file}
    for s, cp in opened:
        required = s.station == mine or (strict and s.station is None)
        if s.row is not None and (cp.size, cp.root) not in in_file_heads and required:
            raise IntegrityError(
                _("{where} is missing from {path}: checkpoint file truncated or replaced").format(
                    where=s.where, path=settings.checkpoint_file
                )
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
                _(
                    "the site public key {path} is not the key recorded in "
                    "ledger entry 0: key replaced"
                ).format(path=settings.public_key_file)
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
                    _(
                        "{where} was signed for {size} entries but the log has {count}: "
                        "log truncated or an older database restored"
                    ).format(where=s.where, size=cp.size, count=n)
                )
            if root(cp.size) != cp.root:
                raise IntegrityError(
                    _(
                        "{where}: its root for {size} entries does not match the log: "
                        "history before entry {size} rewritten"
                    ).format(where=s.where, size=cp.size)
                )
    strays = [r.index_stray for r in results if r.index_stray is not None]
    if strays:  # last: a rewritten log shows first as the checkpoints it breaks
        with db.read() as cur:
            body = cur.execute(
                "SELECT body FROM ledger_entry WHERE seq = ?", [min(strays)]
            ).fetchone()
        try:
            decode_entry(bytes(body[0]) if body else b"")
        except IntegrityError:  # not even an entry: bytes put there, the tree recomputed
            raise IntegrityError(
                _(
                    "ledger entry {seq} is not a scelle ledger entry: bytes written around "
                    "scelle, with the tree recomputed over them"
                ).format(seq=min(strays))
            ) from None
        raise IntegrityError(
            _(
                "the audit index disagrees with ledger entry {seq}: an auditor's query "
                "could miss it or show it wrongly (index edited)"
            ).format(seq=min(strays))
        )
    return LedgerReport(
        entries=n,
        root=root(n),
        checkpoints=len({s.note for s, _ in opened}),
        latest_signed=max((cp.size for _, cp in opened), default=0),
        auditor_files=len(auditor_files),
        warnings=tuple(ignored),
        latest_note=max(opened, key=lambda pair: pair[1].size)[0].note if opened else None,
    )
