"""What proves a destruction: the record of each destroyed segment (a Merkle leaf), the
root over a camera's records, the intent and outcome ledger entries of a purge run, and
the signed certificate (its format, its files, written whole or not at all).

One home for the certificate's format, shared by the writer (the purge, in the workflow)
and the reader (`scelle verify`). Deciding what to destroy is the workflow's
(requisition/purge.py); nothing here reads a table.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from custody import merkle
from custody.canonical import canonical_bytes
from custody.entry import Record
from custody.errors import IntegrityError
from custody.files import fsync_dir, full_disk_means, write_atomic
from custody.i18n import N_, _
from custody.keys import Signer, der_sha256, public_pem, ssh_fingerprint
from custody.signatures import sign_raw

FORMAT = "scelle-destruction/1"
REASON = N_("retention period expired (CSI L252-5)")  # the ledger's reason, translated
JSON, KEY = "certificate.json", "keys/signer.pub.pem"
DOCUMENTS = ("documents/destruction.html", "documents/destruction.pdf")
FILES = frozenset({JSON, f"{JSON}.sig", KEY, *DOCUMENTS, *(f"{d}.sig" for d in DOCUMENTS)})
# With a TSA configured: its RFC 3161 token on certificate.json and its CA, both or neither.
TIMESTAMP, TSA_CA = f"{JSON}.tsr", "keys/tsa-ca.pem"


def leaf(path: str, size: int, sha256: str, start_us: int) -> bytes:
    """The Merkle leaf of a destroyed segment: `path\\nsize\\nsha256\\nstart_us` (a fixed
    line format: a million of them are hashed in a purge)."""
    return f"{path}\n{size}\n{sha256}\n{start_us}".encode()


def root(leaves: Iterable[bytes]) -> str:
    """The hex Merkle root (RFC 9162) over destroyed segments' leaves, in time order."""
    builder = RootBuilder()
    for item in leaves:
        builder.add(item)
    return builder.hex()


class RootBuilder:
    """The same root, leaf by leaf, in memory of the tree's right edge only: a night's
    million leaves are streamed from the index, never held."""

    def __init__(self) -> None:
        self._edge = merkle.CompactRange()

    def add(self, leaf_bytes: bytes) -> None:
        self._edge.push(merkle.leaf_hash(leaf_bytes))

    def hex(self) -> str:
        return self._edge.root().hex()


def intent(camera: str, run: int, data: Mapping[str, Any]) -> Record:
    """Recorded before any file is deleted: which segments (count, bytes, first, last,
    Merkle root) and how many held."""
    return Record("footage.destroy.intent", {"camera": camera, "purge": run}, _(REASON), data=data)


def outcome(camera: str, run: int, data: Mapping[str, Any]) -> Record:
    """Recorded after: what was destroyed (its Merkle root), already absent, held since."""
    return Record("footage.destroy", {"camera": camera, "purge": run}, _(REASON), data=data)


def failed(run: int, failures: Sequence[str], count: int) -> Record:
    return Record(
        "footage.destroy.failed",
        {"purge": run},
        _("some segments could not be destroyed: left in place"),
        data={"failures": list(failures)[:100], "count": count},
    )


def body(
    *,
    site: Mapping[str, str],
    run: int,
    as_of_utc: str,
    completed_utc: str,
    actor: str,
    cameras: Sequence[Mapping[str, Any]],
    failures: Sequence[str],
    failure_count: int,
    ledger_entries: Iterable[int],
    signer: Signer,
) -> bytes:
    """The certificate's canonical JSON."""
    return canonical_bytes(
        {
            "format": FORMAT,
            "site": dict(site),
            "purge": run,
            "as_of_utc": as_of_utc,
            "completed_utc": completed_utc,
            "actor": actor,
            "cameras": [dict(c) for c in cameras],
            "failures": list(failures),
            "failure_count": failure_count,
            "ledger_entries": sorted(ledger_entries),
            "signer": {
                "ssh_fingerprint": ssh_fingerprint(signer.public_key),
                "der_sha256": der_sha256(signer.public_key),
            },
        }
    )


def check_format(certificate: Mapping[str, Any]) -> None:
    """IntegrityError unless the certificate is of a version this scelle reads."""
    if certificate.get("format") != FORMAT:
        raise IntegrityError(
            _(
                "certificate.json is of format {found!r}, not {expected!r} that this scelle reads"
            ).format(found=certificate.get("format"), expected=FORMAT)
        )


def write(
    final: Path,
    certificate: bytes,
    signer: Signer,
    documents: Callable[[Path], Iterable[Path]],
    run: int,
    timestamp: tuple[bytes, bytes] | None = None,
) -> None:
    """Write the certificate, its signature, the key, the signed documents (made by
    `documents(directory)`) and `timestamp` (an RFC 3161 token on the certificate and its
    TSA's CA, in PEM) beside `final`, then rename the whole into place. A full disk is one
    DiskFullError and nothing half-written is left."""
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    try:
        with full_disk_means(
            _(
                "no room in {folder} for the destruction certificate of purge {run}: the "
                "destruction is recorded in the ledger, and nothing half-written was kept"
            ).format(folder=final.parent, run=run),
            hint=_("free space there; the next 'scelle purge' makes the certificate"),
        ):
            write_atomic(tmp / JSON, certificate)
            write_atomic(tmp / f"{JSON}.sig", sign_raw(signer, certificate))
            write_atomic(tmp / KEY, public_pem(signer.public_key).encode())
            if timestamp is not None:
                write_atomic(tmp / TIMESTAMP, timestamp[0])
                write_atomic(tmp / TSA_CA, timestamp[1])
            for path in documents(tmp / "documents"):
                signature = sign_raw(signer, path.read_bytes())
                write_atomic(path.with_name(path.name + ".sig"), signature)
            for directory in (tmp, tmp / "keys", tmp / "documents"):
                fsync_dir(directory)
            if final.exists():  # an earlier attempt renamed it, then died before recording it
                shutil.rmtree(final)
            os.rename(tmp, final)
            fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
