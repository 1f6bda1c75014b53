"""The site's Ed25519 signing key: created, stored encrypted, loaded in one place.

At rest the private key is a PKCS#12 file (PBES2, PBKDF2-SHA256 with 600,000 rounds,
AES-256-CBC), mode 0600, written atomically. PKCS#8 `BestAvailableEncryption` would use
only 2,048 rounds, which a stolen key file does not survive. Callers get a `Signer`,
never raw private key bytes. PKCS#12 and X.509 load when a key file is opened or made
(a third of an everyday command's start-up otherwise, for commands that sign nothing).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custody.errors import (
    InvalidStateError,
    SigningKeyError,
    SigningKeyMissingError,
    WrongPassphraseError,
)
from custody.files import write_atomic
from custody.i18n import _, os_error_text

if TYPE_CHECKING:
    from cryptography import x509

KDF_ROUNDS = 600_000


@dataclass(frozen=True)
class Signer:
    """Signs with the site key; the only holder of the private key in memory."""

    _private: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._private.public_key()

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def public_openssh(key: Ed25519PublicKey, comment: str) -> str:
    """One `authorized_keys`-style line: `ssh-ed25519 AAAA... comment`."""
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{line.decode()} {comment}"


def ssh_fingerprint(key: Ed25519PublicKey) -> str:
    """`SHA256:...` exactly as `ssh-keygen -lf` prints it."""
    digest = serialization.ssh_key_fingerprint(key, hashes.SHA256())
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def der_sha256(key: Ed25519PublicKey) -> str:
    """Hex SHA-256 of the DER public key: `openssl pkey -pubin -outform DER | sha256sum`."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def key_encryption(passphrase: bytes) -> serialization.KeySerializationEncryption:
    """How every key file of a site is encrypted: PKCS#12 with PBES2 (PBKDF2-SHA256,
    KDF_ROUNDS, AES-256-CBC) and a SHA-256 MAC."""
    from cryptography.hazmat.primitives.serialization import pkcs12

    return (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(KDF_ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(passphrase)
    )


def create_key(path: Path, passphrase: bytes, name: str) -> Signer:
    """Generate an Ed25519 key and write it encrypted to `path` (refuses to overwrite)."""
    if not passphrase:
        raise SigningKeyError(
            _("the passphrase is empty"), hint=_("set SCELLE_PASSPHRASE_FILE or type one")
        )
    if path.exists():
        raise InvalidStateError(_("a key already exists at {path}").format(path=path))
    from cryptography.hazmat.primitives.serialization import pkcs12

    private = Ed25519PrivateKey.generate()
    blob = pkcs12.serialize_key_and_certificates(
        name.encode(), private, None, None, key_encryption(passphrase)
    )
    write_atomic(path, blob, mode=0o600)
    return Signer(private)


def open_pkcs12(path: Path, passphrase: bytes) -> tuple[object, x509.Certificate | None]:
    """The private key and certificate of an encrypted key file (the site key, the
    document key); SigningKeyMissingError if absent, WrongPassphraseError if it will not
    open. The caller checks the kind of key."""
    try:
        blob = path.read_bytes()
    except FileNotFoundError as exc:
        raise SigningKeyMissingError(
            _("no signing key at {path}").format(path=path), hint=_("run 'scelle init' first")
        ) from exc
    except OSError as exc:
        raise SigningKeyError(
            _("cannot read signing key {path}: {reason}").format(
                path=path, reason=os_error_text(exc)
            )
        ) from exc
    from cryptography.hazmat.primitives.serialization import pkcs12

    try:
        private, cert, _cas = pkcs12.load_key_and_certificates(blob, passphrase)
    except ValueError as exc:
        raise WrongPassphraseError(
            _("cannot open signing key {path}: wrong passphrase or damaged file").format(path=path),
            hint=_(
                "type the passphrase again (check the keyboard layout and caps lock), or check "
                "what SCELLE_PASSPHRASE_FILE or SCELLE_PASSPHRASE holds; the key is unchanged"
            ),
        ) from exc
    return private, cert


def load_signer(path: Path, passphrase: bytes) -> Signer:
    """Open the key file; SigningKeyMissingError if absent, WrongPassphraseError if it will
    not open."""
    private, _cert = open_pkcs12(path, passphrase)
    if not isinstance(private, Ed25519PrivateKey):
        raise SigningKeyError(_("{path} does not hold an Ed25519 key").format(path=path))
    return Signer(private)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read the site's public key (PEM); SigningKeyMissingError if absent or not Ed25519."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError as exc:
        raise SigningKeyMissingError(_("no public key at {path}").format(path=path)) from exc
    except ValueError as exc:
        raise SigningKeyError(_("{path} is not a PEM public key").format(path=path)) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(_("{path} is not an Ed25519 public key").format(path=path))
    return key
