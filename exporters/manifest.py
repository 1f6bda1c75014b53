"""The export package's format: its name, version and file names, in one place shared by
the writer (exporters/package.py) and every reader (`scelle verify`, the cover sheet,
the seal label, the extraction's recovery, the purge of exports kept after handover).

```
<ID>/manifest.json          RFC 8785; every content file with role, size, SHA-256
<ID>/SHA256SUMS             coreutils format (its hash is in the manifest)
<ID>/manifest.json.sig      raw Ed25519   (openssl pkeyutl -verify -rawin)
<ID>/manifest.json.sshsig   SSHSIG        (ssh-keygen -Y verify -n scelle-export)
<ID>/manifest.json.minisig  minisign      (minisign -V)
<ID>/keys/                  signer.pub.pem, allowed_signers, minisign.pub
<ID>/ledger/                entry.json (exact bytes), inclusion.json, checkpoint.txt
<ID>/master/ <ID>/working/  the footage
<ID>/attached/              another system's own export (exporters/attached.py), role
                            "attached"
<ID>/documents/             cover.html, cover.pdf, each with its .sig
<ID>/VERIFY.txt             how to check it, in French and English (and its .sig)
<ID>/VERIFY.html            the verifier page (exporters/verify_page.py), listed in the
                            manifest's files with role "verifier"
```
Nothing here touches a database: `scelle verify` imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from custody.errors import IntegrityError
from custody.i18n import _

FORMAT = "scelle-export/1"
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
SIGNATURES = (f"{MANIFEST}.sig", f"{MANIFEST}.sshsig", f"{MANIFEST}.minisig")
KEYS = ("keys/signer.pub.pem", "keys/allowed_signers", "keys/minisign.pub")
LEDGER = ("ledger/entry.json", "ledger/inclusion.json", "ledger/checkpoint.txt")
VERIFY = "VERIFY.txt"
COVER = ("documents/cover.html", "documents/cover.pdf")
# The TSA's RFC 3161 token on the manifest and the CA certifying the TSA, when the site has
# one (custody/timestamps.py); the export's ledger entry says whether they must be there.
TIMESTAMP = f"{MANIFEST}.tsr"
TSA_CA = "keys/tsa-ca.pem"
# The entry's inclusion proof with the (cosigned) checkpoint, in C2SP tlog-proof form:
# written by exports since issue 18, and when present it must say what inclusion.json and
# checkpoint.txt say.
TLOG_PROOF = "ledger/entry.tlog-proof"
OPTIONAL = frozenset({TIMESTAMP, TSA_CA, TLOG_PROOF})
"""Files an export holds only sometimes; the checks say when they must be there."""
# The bordereau's own sums, binding its files to this export's manifest (`../manifest.json`):
# a signed cover copied from another export of the site fails them. Written by exports
# whose manifest names its agents (the manifest, signed, says whether it must be there).
COVER_SUMS = "documents/SHA256SUMS"


def fixed(manifest: Mapping[str, Any]) -> frozenset[str]:
    """The files every export holds beside its footage."""
    if "agents" in manifest:
        return FIXED | {COVER_SUMS, f"{COVER_SUMS}.sig"}
    return FIXED


FIXED = frozenset(
    {
        MANIFEST,
        *SIGNATURES,
        SUMS,
        VERIFY,
        f"{VERIFY}.sig",
        *KEYS,
        *LEDGER,
        *COVER,
        *(f"{name}.sig" for name in COVER),
    }
)
"""Every file of a package besides the footage the manifest lists."""

MAX_MANIFEST_BYTES = 64 * 1024 * 1024
"""A real manifest takes about 430 bytes per segment: a day of ten Frigate cameras is
about 40 MB. Anything larger is refused before it is read."""

# Requisition fields the manifest states (what was asked and decided); what happens to
# the export afterwards (path, handover, medium, seal) is not part of what is signed.
REQUISITION_FIELDS = (
    "id",
    "legal_basis",
    "prosecutor_authorisation",
    "pv_number",
    "officer_name",
    "officer_unit",
    "received_via",
    "received_at",
    "deadline",
    "reason",
    "state",
    "registered_by",
    "registered_at",
    "decided_by",
    "decided_at",
    "decision_reason",
)


def check_format(manifest: Mapping[str, Any]) -> None:
    """IntegrityError unless the manifest is of a version this scelle reads."""
    found = manifest.get("format")
    if found != FORMAT:
        raise IntegrityError(
            _(
                "manifest.json is of format {found!r}, not {expected!r} that this scelle reads"
            ).format(found=found, expected=FORMAT),
            hint=_("a newer scelle may read it") if isinstance(found, str) else None,
        )
