"""C2SP signed notes and tlog checkpoints, Ed25519 only.

A checkpoint is the note body `<origin>\\n<size>\\n<base64 root>\\n`; the signature line is
`— <key name> <base64(key id || signature)>` with key id = SHA-256(name || 0x0A || 0x01 ||
public key)[:4]. This is what Go's golang.org/x/mod/sumdb/note and every C2SP witness read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.errors import InputError, IntegrityError, SignatureError
from custody.i18n import _
from custody.keys import Signer, public_raw

ED25519_ALG = b"\x01"
SIG_PREFIX = "\u2014 "  # em dash and a space
_NAME = re.compile(r"[^\s+]+")


def check_key_name(name: str) -> None:
    """Key names and origins: non-empty, no spaces, no plus sign (C2SP signed-note)."""
    if not _NAME.fullmatch(name):
        raise InputError(_("invalid key name {name!r}: no spaces or '+' allowed").format(name=name))


def key_id(name: str, public_key: Ed25519PublicKey, alg: bytes = ED25519_ALG) -> bytes:
    """The 4-byte key id that prefixes every signature of this key (`alg`: the signature
    type, 0x01 for a note signature, 0x04 for a cosignature/v1)."""
    data = name.encode() + b"\n" + alg + public_raw(public_key)
    return hashlib.sha256(data).digest()[:4]


def verifier_key(name: str, public_key: Ed25519PublicKey, alg: bytes = ED25519_ALG) -> str:
    """`<name>+<hex key id>+<base64(alg || key)>`, the note verifier key string."""
    raw = alg + public_raw(public_key)
    return f"{name}+{key_id(name, public_key, alg).hex()}+{base64.b64encode(raw).decode()}"


def parse_verifier_key(vkey: str, alg: bytes = ED25519_ALG) -> tuple[str, Ed25519PublicKey]:
    """Read a verifier key string of signature type `alg` back; raises InputError if
    malformed or inconsistent."""
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise InputError(_("verifier key must be <name>+<key id>+<base64 key>"))
    name, hex_id, b64 = parts
    check_key_name(name)
    try:
        raw = base64.b64decode(b64, validate=True)
    except binascii.Error as exc:
        raise InputError(_("verifier key: key is not base64")) from exc
    if len(raw) != 33 or raw[:1] != alg:
        raise InputError(_("verifier key: not an Ed25519 key"))
    key = Ed25519PublicKey.from_public_bytes(raw[1:])
    if key_id(name, key, alg).hex() != hex_id.lower():
        raise InputError(_("verifier key: key id does not match name and key"))
    return name, key


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint body: which log, how many entries, which root."""

    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


@dataclass(frozen=True)
class SignedNote:
    text: str  # the whole note as written: body, blank line, signature lines
    body: str
    signatures: tuple[tuple[str, bytes, bytes], ...]  # (name, key id, signature)


def sign_checkpoint(checkpoint: Checkpoint, name: str, signer: Signer) -> str:
    """Sign a checkpoint body; returns the note text."""
    check_key_name(name)
    check_key_name(checkpoint.origin)
    body = checkpoint.body()
    sig = key_id(name, signer.public_key) + signer.sign(body.encode())
    return f"{body}\n{SIG_PREFIX}{name} {base64.b64encode(sig).decode()}\n"


def parse_note(text: str) -> SignedNote:
    """Split a signed note into body and signatures; raises IntegrityError if malformed."""
    body, sep, rest = text.partition("\n\n")
    if not sep or not body:
        raise IntegrityError(_("not a signed note: no blank line after the body"))
    if not rest.endswith("\n"):
        raise IntegrityError(_("not a signed note: does not end with a newline"))
    sigs = []
    for line in rest[:-1].split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise IntegrityError(
                _("not a signed note: bad signature line {line!r}").format(line=line[:40])
            )
        name, _space, b64 = line[len(SIG_PREFIX) :].partition(" ")
        try:
            blob = base64.b64decode(b64, validate=True)
        except binascii.Error as exc:
            raise IntegrityError(_("not a signed note: signature is not base64")) from exc
        if not _NAME.fullmatch(name) or len(blob) < 5:
            raise IntegrityError(_("not a signed note: malformed signature line"))
        sigs.append((name, blob[:4], blob[4:]))
    return SignedNote(text=text, body=body + "\n", signatures=tuple(sigs))


def verify_checkpoint(text: str, name: str, public_key: Ed25519PublicKey) -> Checkpoint:
    """Verify the note's signature by (name, key) and parse its checkpoint body.

    Raises SignatureError if no signature by that key verifies, IntegrityError if the
    note or its body is malformed. The origin is returned, never trusted: callers
    compare it with the log they expect.
    """
    note = parse_note(text)
    kid = key_id(name, public_key)
    for sig_name, sig_id, sig in note.signatures:
        if sig_name == name and sig_id == kid:
            try:
                public_key.verify(sig, note.body.encode())
            except InvalidSignature as exc:
                raise SignatureError(_("checkpoint signature does not verify")) from exc
            return parse_checkpoint(note.body)
    raise SignatureError(
        _("checkpoint is not signed by key {key}").format(key=f"{name}+{kid.hex()}")
    )


def parse_checkpoint(body: str) -> Checkpoint:
    """Parse `<origin>\\n<size>\\n<root>\\n[extensions]`; raises IntegrityError."""
    lines = body.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise IntegrityError(_("checkpoint body must have origin, size and root lines"))
    origin, size_text, root_b64 = lines[0], lines[1], lines[2]
    if not origin or not re.fullmatch(r"0|[1-9][0-9]{0,18}", size_text):
        raise IntegrityError(_("checkpoint body: bad origin or size line"))
    try:
        root = base64.b64decode(root_b64, validate=True)
    except binascii.Error as exc:
        raise IntegrityError(_("checkpoint body: root is not base64")) from exc
    if len(root) != 32:
        raise IntegrityError(_("checkpoint body: root is not 32 bytes"))
    return Checkpoint(origin=origin, size=int(size_text), root=root)


def split_notes(text: str) -> list[tuple[int, str]]:
    """Split a file of concatenated notes (each followed by a blank line) into notes.

    Returns (first line number, note text) pairs; raises IntegrityError naming the line
    where the file stops being a sequence of notes.
    """
    notes: list[tuple[int, str]] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    i = 0
    while i < len(lines):
        start = i
        while i < len(lines) and lines[i] != "":
            i += 1
        i += 1  # the blank line between body and signatures
        sig_start = i
        while i < len(lines) and lines[i].startswith(SIG_PREFIX):
            i += 1
        if i == sig_start or start == sig_start - 1:
            raise IntegrityError(_("line {line}: not a signed note").format(line=start + 1))
        notes.append((start + 1, "\n".join(lines[start:i]) + "\n"))
        if i < len(lines):
            if lines[i] != "":
                raise IntegrityError(
                    _("line {line}: expected a blank line between notes").format(line=i + 1)
                )
            i += 1
    return notes
