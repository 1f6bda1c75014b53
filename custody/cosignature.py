"""C2SP tlog-cosignature `cosignature/v1` (Ed25519): what a witness signs, and checking it.

A cosignature is a signed-note signature line on a checkpoint:

    — <witness name> base64(key id || u64 timestamp, big-endian || Ed25519 signature)

key id = SHA-256(<name> || 0x0A || 0x04 || 32-byte public key)[:4]; the signed message is

    cosignature/v1
    time <timestamp>
    <the checkpoint body, its final newline included>

A v1 cosignature says: as of that time, this is the largest consistent tree the witness
has seen for the log. Verifiers are configured with (name, key) pairs and ignore every
other line.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.errors import InputError
from custody.i18n import _
from custody.keys import Signer
from custody.note import SIG_PREFIX, key_id, parse_verifier_key, verifier_key

COSIGNATURE_ALG = b"\x04"
MAX_TIMESTAMP = 2**63 - 1


def cosigner_key_id(name: str, key: Ed25519PublicKey) -> bytes:
    return key_id(name, key, COSIGNATURE_ALG)


def cosigner_vkey(name: str, key: Ed25519PublicKey) -> str:
    """`<name>+<hex key id>+<base64(0x04 || key)>`: how a policy names a witness."""
    return verifier_key(name, key, COSIGNATURE_ALG)


def parse_cosigner_vkey(vkey: str) -> tuple[str, Ed25519PublicKey]:
    """A witness's verifier key; InputError if it is not a consistent cosignature/v1 key."""
    return parse_verifier_key(vkey, COSIGNATURE_ALG)


def signed_message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode()


def cosign(body: str, name: str, signer: Signer, timestamp: int) -> str:
    """One cosignature line (newline-terminated) over a checkpoint body."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise InputError(_("cosignature time out of range"))
    blob = (
        cosigner_key_id(name, signer.public_key)
        + struct.pack(">Q", timestamp)
        + signer.sign(signed_message(body, timestamp))
    )
    return f"{SIG_PREFIX}{name} {base64.b64encode(blob).decode()}\n"


@dataclass(frozen=True)
class Cosigned:
    """A witness that vouched for a checkpoint, and when (POSIX seconds, its clock)."""

    name: str
    timestamp: int


def verified_cosignatures(
    body: str,
    signatures: tuple[tuple[str, bytes, bytes], ...],
    witnesses: Mapping[str, Ed25519PublicKey],
) -> list[Cosigned]:
    """The cosignatures among a note's signature lines (name, key id, rest) that verify
    for a known witness; others, and lines of unknown keys, are not counted."""
    found: dict[str, Cosigned] = {}
    for name, kid, rest in signatures:
        key = witnesses.get(name)
        if key is None or kid != cosigner_key_id(name, key) or len(rest) != 8 + 64:
            continue
        (timestamp,) = struct.unpack(">Q", rest[:8])
        if timestamp > MAX_TIMESTAMP:
            continue
        try:
            key.verify(rest[8:], signed_message(body, timestamp))
        except InvalidSignature:
            continue
        if name not in found or timestamp > found[name].timestamp:
            found[name] = Cosigned(name, timestamp)
    return sorted(found.values(), key=lambda c: c.name)
