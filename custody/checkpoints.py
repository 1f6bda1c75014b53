"""Signed checkpoints of the ledger, kept in the database and in a write-once file.

The file lives outside the database (configurable: another disk, a WORM mount) and is
only ever appended to. Restoring an older database file, or truncating and rebuilding
the log, leaves the file holding a checkpoint the database cannot match, and
`scelle ledger verify` says so. Before signing, the site checks that the new
checkpoint is consistent with the last one it signed: it never signs a fork.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody import merkle
from custody.db import Cursor, Database
from custody.errors import IntegrityError, KeyProblem
from custody.files import append_durable
from custody.keys import Signer, public_raw
from custody.ledger import current_size, decode_entry, fetch_nodes, utc_now
from custody.note import Checkpoint, sign_checkpoint, split_notes, verify_checkpoint


@dataclass(frozen=True)
class Identity:
    """Who signs this log, as recorded in its first entry (not as configured today)."""

    key_name: str
    origin: str
    public_key: Ed25519PublicKey


def identity_from_genesis(body: bytes) -> Identity:
    entry = decode_entry(body)
    data: Any = entry.get("data")
    if entry.get("action") != "site.init" or not isinstance(data, dict):
        raise IntegrityError("ledger entry 0 is not the site's initialisation")
    try:
        raw = base64.b64decode(data["public_key"], validate=True)
        return Identity(data["key_name"], data["origin"], Ed25519PublicKey.from_public_bytes(raw))
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError("ledger entry 0 does not record the site key") from exc


def read_identity(cur: Cursor) -> Identity:
    row = cur.execute("SELECT body FROM ledger_entry WHERE seq = 0").fetchone()
    if row is None:
        raise IntegrityError("ledger entry 0 (the site's initialisation) is missing")
    return identity_from_genesis(bytes(row[0]))


@dataclass(frozen=True)
class StoredCheckpoint:
    where: str  # "database checkpoint 3", "checkpoints.txt line 12": for messages
    note: str


def file_checkpoints(path: Path, label: str | None = None) -> list[StoredCheckpoint]:
    """Every note in a checkpoint file; IntegrityError naming the line if corrupt."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"checkpoint file {path} is unreadable: {exc}") from exc
    try:
        notes = split_notes(text)
    except IntegrityError as exc:
        raise IntegrityError(f"checkpoint file {path} is corrupt: {exc.message}") from exc
    return [StoredCheckpoint(f"{label or path.name} line {line}", n) for line, n in notes]


def db_checkpoints(cur: Cursor) -> list[StoredCheckpoint]:
    cur.execute("SELECT id, note FROM ledger_checkpoint ORDER BY id")
    return [StoredCheckpoint(f"database checkpoint {i}", note) for i, note in cur.fetchall()]


def open_checkpoint(stored: StoredCheckpoint, identity: Identity) -> Checkpoint:
    """Verify a stored note against the site's identity; IntegrityError naming it."""
    try:
        cp = verify_checkpoint(stored.note, identity.key_name, identity.public_key)
    except IntegrityError as exc:
        raise type(exc)(f"{stored.where}: {exc.message}") from exc
    if cp.origin != identity.origin:
        raise IntegrityError(f"{stored.where}: checkpoint of another log ({cp.origin!r})")
    return cp


def sign(db: Database, checkpoint_file: Path, signer: Signer) -> tuple[Checkpoint, str]:
    """Sign the current tree head, after checking it extends every earlier checkpoint."""
    with db.write() as cur:
        identity = read_identity(cur)
        if public_raw(signer.public_key) != public_raw(identity.public_key):
            raise KeyProblem("this key is not the one recorded in ledger entry 0")
        size = current_size(cur)

        def get(keys: Any) -> dict[merkle.NodeKey, bytes]:
            return fetch_nodes(cur, keys)

        earlier = db_checkpoints(cur) + file_checkpoints(checkpoint_file)
        if earlier:
            last = max((open_checkpoint(s, identity) for s in earlier), key=lambda c: c.size)
            if last.size > size or merkle.root_at(last.size, get) != last.root:
                raise IntegrityError(
                    f"refusing to sign: the log no longer extends the checkpoint of size "
                    f"{last.size} (truncated, rolled back or rewritten)",
                    hint="run 'scelle ledger verify'",
                )
        checkpoint = Checkpoint(identity.origin, size, merkle.root_at(size, get))
        note = sign_checkpoint(checkpoint, identity.key_name, signer)
        if any(s.note == note for s in earlier):  # Ed25519 is deterministic: same head
            return checkpoint, note
        append_durable(checkpoint_file, (note + "\n").encode())
        cur.execute(
            "INSERT INTO ledger_checkpoint (tree_size, root, note, signed_at) VALUES (?, ?, ?, ?)",
            [size, checkpoint.root, note, utc_now()],
        )
    return checkpoint, note
