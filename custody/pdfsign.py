"""The legal PDFs' own signature: PAdES inside the PDF, with the site's document key.

A judge opens the PDF in Adobe Reader (or any common reader) and must be told "not
modified since signed": `sign_pdf` adds a PAdES B-B signature (ECDSA P-256, SHA-256) by
incremental update, keeping a PDF/A file PDF/A; `verify_signed_pdf` is scelle's own,
stricter check. The key is custody/document_key.py's. The detached Ed25519 signatures of
scelle are unchanged; this one is for the reader on the judge's desk.

pyHanko (about 0.3 s to import) is imported inside the functions that use it, so that
`scelle --help` does not pay for it.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from custody.document_key import (
    DOCUMENT_SIGNING,
    DocumentSigner,
    OpenedSite,
    certificate_fingerprint,
    certificate_pem,
    create_document_key,
    document_key_record,
    ensure_document_signer,
    load_document_certificate,
    load_document_signer,
)
from custody.errors import SignatureError
from custody.i18n import _

PDF_VARIANT = "pdf/a-2b"
"""What WeasyPrint is asked to write (`write_pdf(pdf_variant=PDF_VARIANT)`). PDF/A-2 is
built on PDF 1.7 (ISO 32000-1), where PAdES signatures and ECDSA belong, and it states
what a signature in an archival file must be (ISO 19005-2, 6.4.3); PDF/A-1 predates both.
Level b (visual appearance) is what WeasyPrint's output can promise; PDF/A-3 would only
add arbitrary attachments, which some archives refuse."""

FIELD_NAME = "scelle"

# One place to import from: the key's functions live in custody/document_key.py.
__all__ = [
    "PDF_VARIANT",
    "DocumentSigner",
    "OpenedSite",
    "SignedPdf",
    "certificate_fingerprint",
    "certificate_pem",
    "create_document_key",
    "document_key_record",
    "ensure_document_signer",
    "load_document_certificate",
    "load_document_signer",
    "sign_pdf",
    "verify_signed_pdf",
]


@dataclass(frozen=True)
class SignedPdf:
    """What a verified PDF signature says, for display."""

    signer_subject: str
    fingerprint: str
    signed_at: datetime.datetime | None  # the signer's claim (/M): no timestamp authority


def _quiet_pyhanko() -> None:
    """pyHanko logs a traceback (as a warning) for every signature it rejects; with no
    handler of its own that reaches the user's terminal through logging's last resort.
    A NullHandler keeps it off stderr and still lets an application's logging see it."""
    for name in ("pyhanko", "pyhanko_certvalidator"):
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())


def _pyhanko_signer(signer: DocumentSigner) -> Any:
    """pyHanko's Signer over our key: the key stays a `cryptography` object, never
    exported to pyHanko as bytes."""
    from asn1crypto import algos
    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign.signers.pdf_cms import Signer

    cert = asn1_x509.Certificate.load(signer.certificate.public_bytes(serialization.Encoding.DER))

    class _Signer(Signer):
        async def async_sign_raw(
            self, data: bytes, digest_algorithm: str, dry_run: bool = False
        ) -> bytes:
            if digest_algorithm != "sha256":
                raise ValueError(f"unexpected digest {digest_algorithm}")
            return signer.sign_sha256(data)

    return _Signer(
        signing_cert=cert,
        signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
        embed_roots=False,  # it is its own root: once is enough (PDF/A-2 asks for the signer's)
    )


def sign_pdf(pdf: bytes, signer: DocumentSigner, *, reason: str, location: str, name: str) -> bytes:
    """`pdf` with a PAdES B-B signature (SHA-256, ECDSA P-256) appended as an incremental
    update, invisible, covering the whole file. No timestamp server, no revocation data:
    nothing leaves the machine.

    Two adjustments keep a PDF/A file PDF/A. pyHanko would declare ISO/TS 32002 for a
    P-256 key, which raises the file to PDF 2.0 (PDF/A-2 is PDF 1.7): only PAdES's own
    extension is declared. And it writes "pyHanko" as the XMP producer but appends it to
    the info dictionary's: the info producer is set to the same value first, so that
    the two agree."""
    from io import BytesIO

    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.metadata.model import VENDOR
    from pyhanko.sign import fields, signers
    from pyhanko.sign.signers import constants

    class _Pades17(signers.PdfSigner):
        def register_extensions(self, pdf_out: Any, *, md_algorithm: str) -> None:
            pdf_out.ensure_output_version(version=(1, 7))
            pdf_out.register_extension(constants.ESIC_EXTENSION_1)

    meta = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason,
        location=location,
        name=name,
    )
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    info_ref = writer.trailer.raw_get("/Info") if "/Info" in writer.trailer else None
    if info_ref is not None:
        info_ref.get_object()["/Producer"] = generic.TextStringObject(VENDOR)
        writer.mark_update(info_ref)
    out = _Pades17(meta, _pyhanko_signer(signer)).sign_pdf(writer)
    return bytes(out.getvalue())


def _unsigned_bytes_as_written(pdf: bytes, signature: Any, der: bytes) -> bool:
    """Whether the bytes outside the signed range are exactly those sign_pdf writes: the
    CMS object rebuilt from its signed part (the SignerInfo) and fixed values (the site's
    certificate alone, SHA-256, no content), in upper-case hex, then zero padding. Those
    bytes hold the signature, so it cannot cover them, and readers accept them altered
    (a digest algorithm listed differently, a changed certificate copy, a letter's case):
    scelle's own check accepts no changed byte at all."""
    from asn1crypto import algos, cms
    from asn1crypto import x509 as asn1_x509

    start, length, end, _rest = (int(n) for n in signature.byte_range)
    cert = asn1_x509.Certificate.load(der)
    signed = signature.signer_info  # only its signed attributes and signature are taken
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {"issuer": cert.issuer, "serial_number": cert.serial_number}
                    )
                }
            ),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
            "signed_attrs": signed["signed_attrs"],
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
            "signature": signed["signature"],
        }
    )
    expected = cms.ContentInfo(
        {
            "content_type": "signed_data",
            "content": cms.SignedData(
                {
                    "version": "v1",
                    "digest_algorithms": [signer_info["digest_algorithm"]],
                    "encap_content_info": {"content_type": "data"},
                    "certificates": [cert],
                    "signer_infos": [signer_info],
                }
            ),
        }
    ).dump()
    raw: bytes = signature.pkcs7_content
    padded = expected + bytes(len(raw) - len(expected))
    return raw == padded and pdf[start + length : end] == b"<" + raw.hex().upper().encode() + b">"


def verify_signed_pdf(pdf: bytes, trusted: x509.Certificate) -> SignedPdf:
    """Check that `pdf` carries one signature, intact, by `trusted`, covering the whole
    file; SignatureError otherwise (no signature, an altered byte, anything added after
    signing, another signer). pyHanko's validator, trusting only `trusted`, with no
    network access. It never returns a failure: it raises."""
    from io import BytesIO

    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.settings import KeyUsageConstraints
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.errors import InvalidCertificateError

    _quiet_pyhanko()
    der = trusted.public_bytes(serialization.Encoding.DER)
    anchor = asn1_x509.Certificate.load(der)
    # pyHanko enforces key usage only on certificates below a trust anchor; ours is its
    # own anchor, so the usages a signing certificate must have are checked here.
    usage = KeyUsageConstraints(
        key_usage={"non_repudiation"}, extd_key_usage={DOCUMENT_SIGNING.dotted_string}
    )
    try:
        usage.validate(anchor)
    except InvalidCertificateError as exc:
        raise SignatureError(
            _("the trusted certificate is not one for signing documents: {reason}").format(
                reason=exc
            )
        ) from exc
    try:
        signatures = PdfFileReader(BytesIO(pdf), strict=True).embedded_signatures
        if not signatures:
            raise SignatureError(_("the PDF is not signed"))
        if len(signatures) > 1:
            raise SignatureError(_("the PDF carries more than one signature"))
        context = ValidationContext(
            trust_roots=[anchor], allow_fetching=False, revocation_mode="soft-fail"
        )
        status = validate_pdf_signature(signatures[0], context, key_usage_settings=usage)
        signer_der = status.signing_cert.dump()
        as_written = _unsigned_bytes_as_written(pdf, signatures[0], der)
    except SignatureError:
        raise
    # Hostile bytes fail pyHanko's parser in countless ways, each a "no": flipping 5,000
    # bytes of a signed label raised, besides PdfError and ValueError, KeyError, zlib.error,
    # NotImplementedError, AttributeError, AssertionError and decimal.InvalidOperation.
    except Exception as exc:
        raise SignatureError(
            _("the PDF signature cannot be read: {reason}").format(reason=exc)
        ) from exc
    if not (status.intact and status.valid):
        raise SignatureError(_("the PDF signature does not verify: the signed bytes were altered"))
    if signer_der != der:
        raise SignatureError(
            _("the PDF is signed by another certificate ({found}), not {expected}").format(
                found=certificate_fingerprint(x509.load_der_x509_certificate(signer_der)),
                expected=certificate_fingerprint(trusted),
            )
        )
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE or status.docmdp_ok is False:
        raise SignatureError(_("the PDF was changed after it was signed"))
    if not as_written:
        raise SignatureError(_("the PDF's signature area was altered after signing"))
    if not status.trusted:
        raise SignatureError(_("the PDF signer's certificate is not valid now"))
    return SignedPdf(
        signer_subject=trusted.subject.rfc4514_string(),
        fingerprint=certificate_fingerprint(trusted),
        signed_at=status.signer_reported_dt,
    )
