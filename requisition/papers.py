"""What signs the legal papers of a site: its Ed25519 key (detached `.sig` files, for
stock tools) and its document-signing certificate (inside each PDF, for PDF readers).
A site made before the certificate existed gets it here, recorded in its ledger."""

from __future__ import annotations

from custody.document_key import certificate_fingerprint, ensure_document_signer
from custody.pdfsign import sign_pdf
from custody.site import Site
from exporters.documents import PaperSigner


def paper_signer(site: Site, passphrase: bytes) -> PaperSigner:
    """Both signers, unlocked with the site's passphrase."""
    settings = site.settings
    signer = site.signer(passphrase)
    document = ensure_document_signer(site, passphrase, settings.csv_name)

    def pdf(data: bytes) -> bytes:
        return sign_pdf(
            data,
            document,
            reason="Document établi et signé par le centre de supervision",
            location=settings.csv_commune or settings.csv_name,
            name=settings.csv_name,
        )

    return PaperSigner(signer, pdf, certificate_fingerprint(document.certificate))
