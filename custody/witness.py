"""A C2SP tlog-witness, small enough to audit: what a third party (the prefecture, the
ethics committee, a neighbouring commune) runs so that a CSV cannot show one history to
one auditor and another to the next, nor roll its ledger back.

The witness knows the logs it follows (their checkpoint keys, `logs` in its directory),
keeps the latest checkpoint it cosigned for each (`witness.db`, SQLite, synchronous
writes), and cosigns a new checkpoint only if it is consistent with that one:

    POST /add-checkpoint        old <size>\\n  <proof lines>  \\n  <signed checkpoint>
    200  cosignature lines      404 unknown log      403 no trusted signature
    400  malformed, old > size  409 old size is not ours (body: our size, text/x.tlog.size),
                                    or same size, other root
    422  consistency proof does not verify

The check of the old size and the update are one IMMEDIATE transaction: two requests
cannot both pass the check, and a witness killed at any instant restarts with the last
size it cosigned (the row is committed before the answer is sent). Nothing of a scelle
site is needed: no database of the CSV's, no footage.
"""

from __future__ import annotations

import base64
import binascii
import re
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody import merkle
from custody.cosignature import cosign
from custody.errors import IntegrityError, ProofError
from custody.keys import Signer
from custody.note import Checkpoint, key_id, parse_checkpoint, parse_note

MAX_BODY = 64 * 1024
MAX_PROOF = 63
SIZE_TYPE = "text/x.tlog.size"
SCHEMA = """
CREATE TABLE IF NOT EXISTS log_state (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    checkpoint TEXT NOT NULL,
    updated_at INTEGER NOT NULL
)
"""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


def _refuse(status: int, why: str) -> Answer:
    return Answer(status, (why + "\n").encode())


class WitnessState:
    """The latest cosigned checkpoint of each log, durable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as db:
            db.execute(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    def latest(self, origin: str) -> tuple[int, bytes] | None:
        db = self._connect()
        try:
            row = db.execute(
                "SELECT size, root FROM log_state WHERE origin = ?", [origin]
            ).fetchone()
        finally:
            db.close()
        return None if row is None else (int(row[0]), bytes(row[1]))


@dataclass(frozen=True)
class Witness:
    name: str
    signer: Signer
    logs: Mapping[str, Sequence[tuple[str, Ed25519PublicKey]]]  # origin -> checkpoint keys
    state: WitnessState

    def add_checkpoint(self, request: bytes, now: int | None = None) -> Answer:
        parsed = _parse_request(request)
        if isinstance(parsed, Answer):
            return parsed
        old, proof, text = parsed
        try:
            note = parse_note(text)
            checkpoint = parse_checkpoint(note.body)
        except IntegrityError as exc:
            return _refuse(400, f"not a checkpoint: {exc.message}")
        keys = self.logs.get(checkpoint.origin)
        if keys is None:
            return _refuse(404, "unknown log")
        if not _signed(note.body, note.signatures, keys):
            return _refuse(403, "no signature by a key this witness trusts for the log")
        if old > checkpoint.size:
            return _refuse(400, "old size is larger than the checkpoint's")
        if (old == 0 or old == checkpoint.size) and proof:
            return _refuse(400, "a proof from size 0 or to the same size must be empty")
        db = self.state._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            answer = self._check_and_store(db, old, proof, checkpoint, text, now)
            db.execute("COMMIT" if answer.status == 200 else "ROLLBACK")
        except BaseException:
            db.execute("ROLLBACK") if db.in_transaction else None
            raise
        finally:
            db.close()
        if answer.status != 200:
            return answer
        stamp = int(time.time()) if now is None else now
        return Answer(200, cosign(note.body, self.name, self.signer, stamp).encode())

    def _check_and_store(
        self,
        db: sqlite3.Connection,
        old: int,
        proof: list[bytes],
        checkpoint: Checkpoint,
        text: str,
        now: int | None,
    ) -> Answer:
        row = db.execute(
            "SELECT size, root FROM log_state WHERE origin = ?", [checkpoint.origin]
        ).fetchone()
        size, root = (0, b"") if row is None else (int(row[0]), bytes(row[1]))
        if old != size:
            return Answer(409, f"{size}\n".encode(), SIZE_TYPE)
        if old == checkpoint.size and row is not None and root != checkpoint.root:
            return _refuse(409, "same size, another root: the log forked")
        if 0 < old < checkpoint.size:
            try:
                merkle.verify_consistency(old, checkpoint.size, root, checkpoint.root, proof)
            except ProofError:
                return _refuse(422, "the consistency proof does not verify")
        db.execute(
            "INSERT INTO log_state (origin, size, root, checkpoint, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (origin) DO UPDATE SET size = excluded.size, "
            "root = excluded.root, checkpoint = excluded.checkpoint, "
            "updated_at = excluded.updated_at",
            [
                checkpoint.origin,
                checkpoint.size,
                checkpoint.root,
                text,
                int(time.time()) if now is None else now,
            ],
        )
        return Answer(200, b"")


def _parse_request(request: bytes) -> tuple[int, list[bytes], str] | Answer:
    """`old N`, proof lines, a blank line, the checkpoint; or the 400 answer."""
    if len(request) > MAX_BODY:
        return _refuse(400, "request too large")
    try:
        text = request.decode("utf-8")
    except UnicodeDecodeError:
        return _refuse(400, "not UTF-8")
    head, sep, note = text.partition("\n\n")
    lines = head.split("\n")
    if not sep or not lines[0].startswith("old "):
        return _refuse(400, "expected 'old <size>', proof lines, a blank line, a checkpoint")
    size_text = lines[0][4:]
    if not re.fullmatch(r"0|[1-9][0-9]{0,18}", size_text):
        return _refuse(400, "old size is not a decimal with no leading zero")
    if len(lines) - 1 > MAX_PROOF:
        return _refuse(400, "more than 63 proof lines")
    proof = []
    for line in lines[1:]:
        try:
            value = base64.b64decode(line, validate=True)
        except binascii.Error:
            return _refuse(400, "a proof line is not base64")
        if len(value) != 32:
            return _refuse(400, "a proof line is not a 32-byte hash")
        proof.append(value)
    return int(size_text), proof, note


def _signed(
    body: str,
    signatures: tuple[tuple[str, bytes, bytes], ...],
    keys: Sequence[tuple[str, Ed25519PublicKey]],
) -> bool:
    """A signature by one of the log's keys verifies (lines of other keys are ignored)."""
    for name, key in keys:
        kid = key_id(name, key)
        for sig_name, sig_id, sig in signatures:
            if (sig_name, sig_id) == (name, kid):
                try:
                    key.verify(sig, body.encode())
                    return True
                except InvalidSignature:
                    continue
    return False
