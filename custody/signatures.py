"""Detached signatures that investigators check with stock tools, all by the site key.

- raw Ed25519 over the file: `openssl pkeyutl -verify -rawin`;
- SSHSIG (the `ssh-keygen -Y sign` format; Ed25519 is deterministic, so this encoder's
  output is byte-identical to ssh-keygen's): `ssh-keygen -Y verify`;
- minisign (Ed25519 over BLAKE2b-512 of the file, plus a signed trusted comment):
  `minisign -V`. Both encoders are a few lines of framing around one signature; a
  dependency for each would add more code than it saves.

Verification raises `SignatureError`; it never returns False.
"""

from __future__ import annotations

import base64
import hashlib
import struct

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.errors import SignatureError
from custody.i18n import N_, _
from custody.keys import Signer, public_raw

SSH_NAMESPACE = "scelle-export"
_SSH_MAGIC = b"SSHSIG"
_SSH_KEYTYPE = b"ssh-ed25519"


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _read_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise SignatureError(_("SSH signature is truncated"))
    (size,) = struct.unpack_from(">I", blob, offset)
    end = offset + 4 + size
    if end > len(blob):
        raise SignatureError(_("SSH signature is truncated"))
    return blob[offset + 4 : end], end


def ssh_public_blob(key: Ed25519PublicKey) -> bytes:
    return _string(_SSH_KEYTYPE) + _string(public_raw(key))


def _ssh_signed_data(namespace: str, message: bytes) -> bytes:
    digest = hashlib.sha512(message).digest()
    return (
        _SSH_MAGIC
        + _string(namespace.encode())
        + _string(b"")
        + _string(b"sha512")
        + _string(digest)
    )


def sign_sshsig(signer: Signer, message: bytes, namespace: str = SSH_NAMESPACE) -> str:
    """An armored SSHSIG signature of `message`, as `ssh-keygen -Y sign -n namespace`."""
    signature = signer.sign(_ssh_signed_data(namespace, message))
    blob = (
        _SSH_MAGIC
        + struct.pack(">I", 1)
        + _string(ssh_public_blob(signer.public_key))
        + _string(namespace.encode())
        + _string(b"")
        + _string(b"sha512")
        + _string(_string(_SSH_KEYTYPE) + _string(signature))
    )
    text = base64.b64encode(blob).decode()
    lines = [text[i : i + 70] for i in range(0, len(text), 70)]
    return "-----BEGIN SSH SIGNATURE-----\n" + "\n".join(lines) + "\n-----END SSH SIGNATURE-----\n"


def verify_sshsig(
    key: Ed25519PublicKey, message: bytes, armored: str, namespace: str = SSH_NAMESPACE
) -> None:
    body = armored.strip().splitlines()
    if (
        len(body) < 3
        or body[0] != "-----BEGIN SSH SIGNATURE-----"
        or body[-1] != ("-----END SSH SIGNATURE-----")
    ):
        raise SignatureError(_("not an armored SSH signature"))
    try:
        blob = base64.b64decode("".join(body[1:-1]), validate=True)
    except ValueError as exc:
        raise SignatureError(_("SSH signature is not base64")) from exc
    if not blob.startswith(_SSH_MAGIC) or blob[6:10] != struct.pack(">I", 1):
        raise SignatureError(_("not an SSHSIG version 1 signature"))
    pub, at = _read_string(blob, 10)
    ns, at = _read_string(blob, at)
    _reserved, at = _read_string(blob, at)
    hash_alg, at = _read_string(blob, at)
    sig_blob, at = _read_string(blob, at)
    if pub != ssh_public_blob(key):
        raise SignatureError(_("SSH signature is by another key"))
    if ns.decode(errors="replace") != namespace or hash_alg != b"sha512":
        raise SignatureError(
            _("SSH signature is not for namespace {namespace} with sha512").format(
                namespace=namespace
            )
        )
    keytype, at2 = _read_string(sig_blob, 0)
    signature, _end = _read_string(sig_blob, at2)
    if keytype != _SSH_KEYTYPE:
        raise SignatureError(_("SSH signature is not Ed25519"))
    _verify(
        key,
        signature,
        _ssh_signed_data(namespace, message),
        N_("SSH signature does not verify"),
    )


def allowed_signers(key: Ed25519PublicKey, identity: str) -> str:
    """An `allowed_signers` line for `ssh-keygen -Y verify -I identity`."""
    blob = base64.b64encode(ssh_public_blob(key)).decode()
    return f'{identity} namespaces="{SSH_NAMESPACE}" ssh-ed25519 {blob}\n'


def minisign_key_id(key: Ed25519PublicKey) -> bytes:
    """minisign's 8-byte key id; ours is derived from the key, so it never changes."""
    return hashlib.sha256(b"scelle minisign key id\n" + public_raw(key)).digest()[:8]


def minisign_public_key(key: Ed25519PublicKey) -> str:
    kid = minisign_key_id(key)
    blob = base64.b64encode(b"Ed" + kid + public_raw(key)).decode()
    return f"untrusted comment: minisign public key {kid[::-1].hex().upper()}\n{blob}\n"


def sign_minisign(signer: Signer, message: bytes, trusted_comment: str) -> str:
    """A minisign signature (pre-hashed mode, `ED`) with a signed trusted comment."""
    if "\n" in trusted_comment:
        raise SignatureError(_("a trusted comment is one line"))
    kid = minisign_key_id(signer.public_key)
    signature = signer.sign(hashlib.blake2b(message, digest_size=64).digest())
    global_sig = signer.sign(signature + trusted_comment.encode())
    return (
        "untrusted comment: signature from scelle\n"
        f"{base64.b64encode(b'ED' + kid + signature).decode()}\n"
        f"trusted comment: {trusted_comment}\n"
        f"{base64.b64encode(global_sig).decode()}\n"
    )


def verify_minisign(key: Ed25519PublicKey, message: bytes, text: str) -> str:
    """Check a minisign signature and its trusted comment; returns the trusted comment."""
    lines = text.splitlines()
    if len(lines) < 4 or not lines[2].startswith("trusted comment: "):
        raise SignatureError(_("not a minisign signature"))
    try:
        blob = base64.b64decode(lines[1], validate=True)
        global_sig = base64.b64decode(lines[3], validate=True)
    except ValueError as exc:
        raise SignatureError(_("minisign signature is not base64")) from exc
    if len(blob) != 74 or blob[:2] != b"ED":
        raise SignatureError(_("minisign signature is not a pre-hashed Ed25519 signature"))
    if blob[2:10] != minisign_key_id(key):
        raise SignatureError(_("minisign signature is by another key"))
    signature = blob[10:]
    _verify(
        key,
        signature,
        hashlib.blake2b(message, digest_size=64).digest(),
        N_("minisign signature does not verify"),
    )
    comment = lines[2][len("trusted comment: ") :]
    _verify(
        key,
        global_sig,
        signature + comment.encode(),
        N_("minisign trusted comment does not verify"),
    )
    return comment


def sign_raw(signer: Signer, message: bytes) -> bytes:
    """Raw Ed25519 (64 bytes) over the message itself, for `openssl pkeyutl -rawin`."""
    return signer.sign(message)


def verify_raw(key: Ed25519PublicKey, message: bytes, signature: bytes) -> None:
    _verify(key, signature, message, N_("Ed25519 signature does not verify"))


def _verify(key: Ed25519PublicKey, signature: bytes, data: bytes, failure: str) -> None:
    """SignatureError(`failure`, an N_() text) unless `signature` verifies."""
    try:
        key.verify(signature, data)
    except InvalidSignature as exc:
        raise SignatureError(_(failure)) from exc
