"""The site's document key: ECDSA P-256 in a self-signed certificate, for signing PDFs.

A judge's PDF reader (Adobe Reader and the like) does not check Ed25519 in a PDF, so the
legal PDFs are signed with a second site key, inside an X.509 certificate: CN = the
site's name, O = the centre's name. It is stored like the site key (custody/keys.py:
PKCS#12, PBES2, PBKDF2-SHA256 with KDF_ROUNDS, AES-256-CBC, mode 0600) beside it; the
certificate is also written in PEM, readable without the passphrase, and recorded in
the ledger (`site.document-key`). custody/pdfsign.py signs and verifies with it.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from custody.config import Settings
from custody.entry import Record
from custody.errors import (
    InvalidStateError,
    SigningKeyError,
    SigningKeyMissingError,
)
from custody.files import fsync_dir, write_atomic
from custody.i18n import _, os_error_text
from custody.keys import key_encryption, open_pkcs12

if TYPE_CHECKING:
    from custody.ledger import Ledger

ALGORITHM = "ECDSA P-256"
CERTIFICATE_YEARS = 10
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")  # RFC 9336 id-kp-documentSigning
_BACKDATE = datetime.timedelta(hours=1)  # a reader whose clock lags still sees it valid


@dataclass(frozen=True)
class DocumentSigner:
    """The document key and its certificate; signs, never hands out the key's bytes."""

    _private: ec.EllipticCurvePrivateKey = field(repr=False)
    certificate: x509.Certificate

    def sign_sha256(self, data: bytes) -> bytes:
        """ECDSA P-256 over SHA-256 of `data`, DER-encoded, as CMS carries it."""
        return self._private.sign(data, ec.ECDSA(hashes.SHA256()))

    @property
    def fingerprint(self) -> str:
        return certificate_fingerprint(self.certificate)


def certificate_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate as readers and `openssl x509 -fingerprint -sha256`
    show it: upper-case hex pairs joined by colons."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def certificate_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _subject(site_name: str, centre_name: str) -> x509.Name:
    names = [x509.NameAttribute(NameOID.COMMON_NAME, site_name)]
    if centre_name.strip():
        names.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, centre_name.strip()))
    return x509.Name(names)


def _new_certificate(
    private: ec.EllipticCurvePrivateKey, site_name: str, centre_name: str
) -> x509.Certificate:
    """Self-signed, end-entity. Key usage: digitalSignature and nonRepudiation (the latter
    is what pyHanko's validator asks of a signer by default, and what Adobe shows as
    "Sign document"). Extended key usage: documentSigning (RFC 9336) for validators that
    know it, and emailProtection, which Adobe Reader has long accepted for signing."""
    name = _subject(site_name, centre_name)
    public = private.public_key()
    now = datetime.datetime.now(datetime.UTC)
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=365 * CERTIFICATE_YEARS + 2))  # leap days
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(private, hashes.SHA256())
    )


def _p12(signer: DocumentSigner, name: str, passphrase: bytes) -> bytes:
    """The key and its certificate, encrypted as custody/keys.py encrypts the site key."""
    return pkcs12.serialize_key_and_certificates(
        name.encode(), signer._private, signer.certificate, None, key_encryption(passphrase)
    )


def _generate(settings: Settings, passphrase: bytes, centre_name: str) -> DocumentSigner:
    if not passphrase:
        raise SigningKeyError(
            _("the passphrase is empty"), hint=_("set SCELLE_PASSPHRASE_FILE or type one")
        )
    path = settings.document_key_file
    if path.exists():
        raise InvalidStateError(_("a key already exists at {path}").format(path=path))
    private = ec.generate_private_key(ec.SECP256R1())
    return DocumentSigner(private, _new_certificate(private, settings.site_name, centre_name))


def create_document_key(settings: Settings, passphrase: bytes, centre_name: str) -> DocumentSigner:
    """Generate the document key and write it (encrypted) and its certificate (PEM) beside
    the site key; refuses to overwrite."""
    signer = _generate(settings, passphrase, centre_name)
    write_atomic(settings.document_cert_file, certificate_pem(signer.certificate).encode())
    write_atomic(
        settings.document_key_file, _p12(signer, settings.site_name, passphrase), mode=0o600
    )
    return signer


def load_document_signer(settings: Settings, passphrase: bytes) -> DocumentSigner:
    """Open the document key; SigningKeyMissingError if absent, WrongPassphraseError if it
    will not open."""
    path = settings.document_key_file
    private, cert = open_pkcs12(path, passphrase)
    if (
        not isinstance(private, ec.EllipticCurvePrivateKey)
        or not isinstance(private.curve, ec.SECP256R1)
        or cert is None
        or cert.public_key() != private.public_key()
    ):
        raise SigningKeyError(
            _("{path} does not hold an ECDSA P-256 key with its certificate").format(path=path)
        )
    return DocumentSigner(private, cert)


def load_document_certificate(settings: Settings) -> x509.Certificate:
    """The site's document certificate (public PEM, no passphrase): what verifiers trust."""
    path = settings.document_cert_file
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError as exc:
        raise SigningKeyMissingError(_("no signing key at {path}").format(path=path)) from exc
    except OSError as exc:
        raise SigningKeyError(
            _("cannot read signing key {path}: {reason}").format(
                path=path, reason=os_error_text(exc)
            )
        ) from exc
    except ValueError as exc:
        raise SigningKeyError(
            _("{path} does not hold an ECDSA P-256 key with its certificate").format(path=path)
        ) from exc


def document_key_record(settings: Settings, signer: DocumentSigner) -> Record:
    """The ledger entry that makes the certificate part of the custody trail: anyone
    holding the ledger can tell which certificate signed the site's PDFs."""
    return Record(
        "site.document-key",
        settings.site_name,
        reason=_("document-signing certificate created"),
        data={
            "certificate_sha256": signer.fingerprint,
            "certificate_pem": certificate_pem(signer.certificate),
            "algorithm": ALGORITHM,
        },
    )


class OpenedSite(Protocol):
    """What ensure_document_signer needs of a custody.site.Site (a Protocol: site.py
    imports this module, and the floors allow no import cycle)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def ledger(self) -> Ledger: ...

    @property
    def login(self) -> str: ...


@contextmanager
def _creating(settings: Settings) -> Iterator[None]:
    """One creator at a time, waiting for the other (flock: the kernel drops it if the
    holder dies): the loser then finds the winner's key instead of making a second one."""
    lock = settings.document_key_file.with_name(settings.document_key_file.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def ensure_document_signer(site: OpenedSite, passphrase: bytes, centre_name: str) -> DocumentSigner:
    """The site's document signer, created (and recorded in the ledger, once) for a site
    made before PDFs were signed. The key file appears only after its ledger entry is
    committed: a key in use is always one the ledger names."""
    settings = site.settings
    try:
        return load_document_signer(settings, passphrase)
    except SigningKeyMissingError:
        pass
    with _creating(settings):
        try:
            return load_document_signer(settings, passphrase)
        except SigningKeyMissingError:
            pass
        signer = _generate(settings, passphrase, centre_name)
        path = settings.document_key_file
        fd, pending = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(_p12(signer, settings.site_name, passphrase))
                handle.flush()
                os.fsync(handle.fileno())
            write_atomic(settings.document_cert_file, certificate_pem(signer.certificate).encode())
            site.ledger.append(site.login, document_key_record(settings, signer))
            os.link(pending, path)  # never replaces: fails if a key appeared all the same
        except BaseException:
            if not path.exists():
                settings.document_cert_file.unlink(missing_ok=True)
            raise
        finally:
            Path(pending).unlink(missing_ok=True)
        fsync_dir(path.parent)
        return signer
