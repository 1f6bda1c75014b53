"""RFC 3161 timestamps: when something existed, said by a timestamping authority (TSA)
independent of the CSV's clock (a qualified one, eIDAS, in production).

The site names its TSA (`timestamp_url`) and the certificate of the authority that
certifies it (`timestamp_ca`, PEM). A request carries the SHA-256 of what is stamped
and a nonce; the answer is checked before it is kept (granted, for this hash and this
nonce, signed by a certificate the CA issued for timestamping) and stored as it came
(`<file>.tsr`), beside what it stamps, so that anyone checks it again with
`openssl ts -verify -data <file> -in <file>.tsr -CAfile tsa-ca.pem`.

`rfc3161-client` (Trail of Bits) builds requests and verifies answers; it makes no
network call itself: the POST is here, only to the URL the site configured. It, X.509
and HTTP load only when a token is asked for or checked: every command that records an
entry comes through here, and most sites have no TSA.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from custody.errors import IntegrityError
from custody.i18n import _
from custody.timewindow import utc_text

if TYPE_CHECKING:
    from cryptography import x509

TIMEOUT_SECONDS = 10
MAX_ANSWER = 1 << 20
QUERY_TYPE = "application/timestamp-query"


@dataclass(frozen=True)
class Stamp:
    """A verified token: its bytes, and the time the TSA states."""

    token: bytes  # the DER TimeStampResp, as the TSA sent it
    time: datetime  # genTime, UTC

    @property
    def utc(self) -> str:
        """genTime as every stored instant is written (custody.timewindow.utc_text)."""
        return utc_text(int(self.time.timestamp() * 1_000_000))


def load_ca(pem: bytes) -> x509.Certificate:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise IntegrityError(_("the TSA's CA certificate is not a PEM certificate")) from exc


def request(url: str, data: bytes, ca: x509.Certificate) -> Stamp:
    """Ask the TSA to stamp `data`; the verified token. OSError if it cannot be reached,
    IntegrityError if its answer is not a valid token for this data."""
    import urllib.error
    import urllib.request
    from http.client import HTTPException

    from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url}")
    query = TimestampRequestBuilder(data=data, hash_algorithm=HashAlgorithm.SHA256).build()
    post = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
        url, data=query.as_bytes(), method="POST", headers={"Content-Type": QUERY_TYPE}
    )
    try:
        with urllib.request.urlopen(post, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
            token = answer.read(MAX_ANSWER)
    except urllib.error.HTTPError as refused:
        raise OSError(f"the TSA answered {refused.code}") from refused
    except (HTTPException, ValueError) as garbled:  # not HTTP, or a URL with a bad port
        raise OSError(f"the TSA's answer is not HTTP ({type(garbled).__name__})") from garbled
    return verify(token, data, ca, nonce=query.nonce)


def verify(token: bytes, data: bytes, ca: x509.Certificate, nonce: int | None = None) -> Stamp:
    """The token's time, once it is shown to be the CA-certified TSA's stamp on `data`;
    IntegrityError otherwise."""
    from rfc3161_client import VerificationError, VerifierBuilder, decode_timestamp_response

    try:
        response = decode_timestamp_response(token)
    except ValueError as exc:
        raise IntegrityError(_("the timestamp token cannot be read")) from exc
    builder = VerifierBuilder(roots=[ca])
    if nonce is not None:
        builder = builder.nonce(nonce)
    try:
        builder.build().verify_message(response, data)
    except (VerificationError, ValueError) as exc:  # ValueError: a status out of range
        raise IntegrityError(
            _("the timestamp token does not verify: {reason}").format(reason=exc)
        ) from exc
    return Stamp(token, response.tst_info.gen_time)


@dataclass(frozen=True)
class Stamped:
    """What a site's TSA said of some bytes: a verified token and the CA's PEM (kept
    beside it), or why there is none (`failed`)."""

    tsa: str
    stamp: Stamp | None = None
    ca_pem: bytes = b""
    failed: str | None = None

    def record(self) -> dict[str, str]:
        """As a ledger entry or a certificate records it: time and token hash, or why not."""
        if self.stamp is None:
            return {"tsa": self.tsa, "failed": self.failed or ""}
        return {
            "tsa": self.tsa,
            "time": self.stamp.utc,
            "token_sha256": hashlib.sha256(self.stamp.token).hexdigest(),
        }


def stamp_for(url: str | None, ca_file: Path | None, data: bytes) -> Stamped | None:
    """A token on `data` from the site's TSA; None when the site has none configured (no
    network access then). A TSA out of reach, or answering wrong, is told in `failed`:
    the work it would have stamped goes on."""
    if url is None or ca_file is None:
        return None
    try:
        ca_pem = ca_file.read_bytes()
        return Stamped(url, request(url, data, load_ca(ca_pem)), ca_pem)
    except (OSError, IntegrityError) as exc:
        return Stamped(url, failed=str(getattr(exc, "reason", None) or exc))
