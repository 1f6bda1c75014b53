"""Signed checkpoints of the ledger, kept in the database and in a write-once file.

The file lives outside the database (configurable: another disk, a WORM mount) and is
only ever appended to. Restoring an older database file, or truncating and rebuilding
the log, leaves the file holding a checkpoint the database cannot match, and
`scelle ledger verify` says so. Before signing, the site checks that the new
checkpoint is consistent with the last one it signed: it never signs a fork.

Several workstations share one PostgreSQL database, each with its own checkpoint file:
each database checkpoint records the *station* (host and file) it was also written to,
and a station's file must hold every checkpoint recorded for it, so that a truncated or
replaced file is still caught while the other stations' checkpoints are not asked of it.
"""

from __future__ import annotations

import base64
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody import merkle
from custody.db import Cursor, Database
from custody.entry import Record, decode_entry, utc_now
from custody.errors import InputError, IntegrityError, SigningKeyError
from custody.files import append_durable, full_disk_means
from custody.i18n import _, os_error_text
from custody.keys import Signer, public_raw
from custody.ledger import Ledger, current_size, database_appends, fetch_nodes, holds
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
        raise IntegrityError(_("ledger entry 0 is not the site's initialisation"))
    try:
        raw = base64.b64decode(data["public_key"], validate=True)
        return Identity(data["key_name"], data["origin"], Ed25519PublicKey.from_public_bytes(raw))
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError(_("ledger entry 0 does not record the site key")) from exc


def read_identity(cur: Cursor) -> Identity:
    row = cur.execute("SELECT body FROM ledger_entry WHERE seq = 0").fetchone()
    if row is None:
        raise IntegrityError(_("ledger entry 0 (the site's initialisation) is missing"))
    return identity_from_genesis(bytes(row[0]))


@dataclass(frozen=True)
class StoredCheckpoint:
    where: str  # "database checkpoint 3", "checkpoints.txt line 12": for messages
    note: str
    station: str | None = None  # database rows: the station's file it was written to
    signed_by: str | None = None  # database rows: the login that added it
    row: int | None = None  # database rows: their id


def station_id(checkpoint_file: Path) -> str:
    """This workstation's name for its checkpoint file: host and absolute path."""
    return f"{socket.gethostname()}:{checkpoint_file.absolute()}"


def file_checkpoints(path: Path, label: str | None = None) -> list[StoredCheckpoint]:
    """Every note in a checkpoint file; IntegrityError naming the line if corrupt."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise IntegrityError(
            _("checkpoint file {path} is unreadable: {reason}").format(
                path=path, reason=os_error_text(exc)
            )
        ) from exc
    except UnicodeDecodeError as exc:
        raise IntegrityError(
            _("checkpoint file {path} is unreadable: it is not UTF-8 text").format(path=path)
        ) from exc
    try:
        notes = split_notes(text)
    except IntegrityError as exc:
        raise IntegrityError(
            _("checkpoint file {path} is corrupt: {problem}").format(path=path, problem=exc.message)
        ) from exc
    return [
        StoredCheckpoint(_("{file} line {line}").format(file=label or path.name, line=line), n)
        for line, n in notes
    ]


def db_checkpoints(cur: Cursor) -> list[StoredCheckpoint]:
    cur.execute("SELECT id, note, station, signed_by FROM ledger_checkpoint ORDER BY id")
    return [
        StoredCheckpoint(
            _("database checkpoint {row}").format(row=i), note, station, signed_by, int(i)
        )
        for i, note, station, signed_by in cur.fetchall()
    ]


DISAVOW = "ledger.disavow"


def usable(
    stored: list[StoredCheckpoint], identity: Identity
) -> tuple[list[tuple[StoredCheckpoint, Checkpoint]], list[tuple[StoredCheckpoint, str]]]:
    """Database checkpoints whose signature verifies, and the others with why.

    A row whose signature fails proves nothing: signing and exports set it aside, so that
    one agent's junk row cannot stop the log for the others; `ledger verify` raises the
    alarm about it until an administrator has recorded that it is disavowed."""
    opened, forged = [], []
    for s in stored:
        try:
            opened.append((s, open_checkpoint(s, identity)))
        except IntegrityError as exc:
            forged.append((s, exc.message))
    return opened, forged


def disavowed(cur: Cursor) -> set[int]:
    """Database checkpoint rows an administrator has recorded as proving nothing."""
    cur.execute(
        "SELECT e.body FROM ledger_audit a JOIN ledger_entry e ON e.seq = a.seq WHERE a.action = ?",
        [DISAVOW],
    )
    rows = set()
    for (body,) in cur.fetchall():
        subject = decode_entry(bytes(body)).get("subject")
        if isinstance(subject, dict) and isinstance(subject.get("checkpoint"), int):
            rows.add(int(subject["checkpoint"]))
    return rows


def open_checkpoint(stored: StoredCheckpoint, identity: Identity) -> Checkpoint:
    """Verify a stored note against the site's identity; IntegrityError naming it."""
    try:
        cp = verify_checkpoint(stored.note, identity.key_name, identity.public_key)
    except IntegrityError as exc:
        raise type(exc)(
            _("{where}: {problem}").format(where=stored.where, problem=exc.message)
        ) from exc
    if cp.origin != identity.origin:
        raise IntegrityError(
            _("{where}: checkpoint of another log ({origin!r})").format(
                where=stored.where, origin=cp.origin
            )
        )
    return cp


def sign(
    db: Database, checkpoint_file: Path, signer: Signer, extends: Checkpoint | None = None
) -> tuple[Checkpoint, str]:
    """Sign the current tree head, after checking it extends every earlier checkpoint
    (and `extends`, the last one the key agent signed, which it holds in memory: a
    database restored together with its checkpoint file is still caught); record it in
    the database (for this station) and append it to this station's file, the file first
    checked for room and written in full before anything is committed."""
    with db.write() as cur:
        identity = read_identity(cur)
        if public_raw(signer.public_key) != public_raw(identity.public_key):
            raise SigningKeyError(_("this key is not the one recorded in ledger entry 0"))
        size = current_size(cur)

        def get(keys: Any) -> dict[merkle.NodeKey, bytes]:
            return fetch_nodes(cur, keys)

        in_db = db_checkpoints(cur)
        in_file = file_checkpoints(checkpoint_file)
        opened, _forged = usable(in_db, identity)
        opened += [(s, open_checkpoint(s, identity)) for s in in_file]
        heads = [max((cp for _, cp in opened), key=lambda c: c.size)] if opened else []
        for last in heads + ([extends] if extends is not None else []):
            if not holds(cur, last.size, last.root):
                raise IntegrityError(
                    _(
                        "refusing to sign: the log no longer extends the checkpoint of size "
                        "{size} (truncated, rolled back or rewritten)"
                    ).format(size=last.size),
                    hint=_("run 'scelle ledger verify'"),
                )
        checkpoint = Checkpoint(identity.origin, size, merkle.root_at(size, get))
        note = sign_checkpoint(checkpoint, identity.key_name, signer)
        if any(s.note == note for s in in_file):  # Ed25519 is deterministic: same head
            return checkpoint, note
        if not any(s.note == note for s, _ in opened):
            station = station_id(checkpoint_file)
            if not database_appends(cur):
                cur.execute(
                    "INSERT INTO ledger_checkpoint (tree_size, root, note, signed_at, "
                    "signed_by, station) VALUES (?, ?, ?, ?, ?, ?)",
                    [size, checkpoint.root, note, utc_now(), db.login(), station],
                )
            else:
                cur.execute("SELECT scelle_add_checkpoint(?, ?)", [note, station])
        with full_disk_means(
            _(
                "no room to append the checkpoint to {path}: nothing was signed "
                "and the file is as it was"
            ).format(path=checkpoint_file),
            hint=_("free space there, then sign again (scelle ledger checkpoint)"),
        ):
            append_durable(checkpoint_file, (note + "\n").encode())
    return checkpoint, note


def disavow(ledger: Ledger, actor: str, row: int, reason: str) -> StoredCheckpoint:
    """Record in the ledger that database checkpoint `row` is forged and proves nothing
    (after an investigation: `reason`). Refused for a row whose signature verifies."""
    if not reason.strip():
        raise InputError(_("give the reason (--reason): what the investigation found"))
    with ledger.db.read() as cur:
        identity = read_identity(cur)
        found = [s for s in db_checkpoints(cur) if s.row == row]
    if not found:
        raise InputError(_("no database checkpoint {row}").format(row=row))
    _opened, forged = usable(found, identity)
    if not forged:
        raise InputError(
            _("database checkpoint {row} is signed by the site key: it stands").format(row=row)
        )
    stored, why = forged[0]
    ledger.append(
        actor,
        Record(
            DISAVOW,
            {"checkpoint": row},
            reason.strip(),
            data={"signed_by": stored.signed_by, "why": why, "note": stored.note},
        ),
    )
    return stored
