"""`scelle verify`: an investigator's check of an export, with no site and no database.

Every check runs, each raising on failure; the report lists them all, then
`verify_export` raises `IntegrityError` if any failed. Nothing here imports the database
layer: `pip install scelle` is all an investigator needs.

Trust: the key inside the export proves only that the files were not changed after
signing *by whoever holds that key*. It proves they come from the CSV once its
fingerprint matches the one printed on the signed cover sheet (`--key`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody import merkle
from custody.canonical import parse_canonical
from custody.checks import Report, load_key_file, run_checks
from custody.errors import InputError, IntegrityError
from custody.keys import der_sha256, public_raw, ssh_fingerprint
from custody.note import verify_checkpoint
from custody.proofs import InclusionProof
from custody.signatures import (
    SSH_NAMESPACE,
    minisign_key_id,
    verify_minisign,
    verify_raw,
    verify_sshsig,
)

MANIFEST = "manifest.json"
FIXED = {
    MANIFEST,
    f"{MANIFEST}.sig",
    f"{MANIFEST}.sshsig",
    f"{MANIFEST}.minisig",
    "SHA256SUMS",
    "VERIFY.txt",
    "VERIFY.txt.sig",
    "keys/signer.pub.pem",
    "keys/allowed_signers",
    "keys/minisign.pub",
    "ledger/entry.json",
    "ledger/inclusion.json",
    "ledger/checkpoint.txt",
    "documents/cover.html",
    "documents/cover.html.sig",
    "documents/cover.pdf",
    "documents/cover.pdf.sig",
}


class _Export:
    """The files of an export, read once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest_bytes = self.read(MANIFEST)
        try:
            self.manifest: dict[str, Any] = parse_canonical(self.manifest_bytes)
        except ValueError as exc:
            raise IntegrityError("manifest.json is not canonical JSON") from exc

    def read(self, name: str) -> bytes:
        path = self.root / name
        if path.is_symlink() or not path.is_file():  # a FIFO would hang, a link lead out
            raise IntegrityError(f"{name} is missing or not a plain file")
        try:
            return path.read_bytes()
        except OSError as exc:
            raise IntegrityError(f"{name} cannot be read: {exc.strerror}") from exc


def _keys_agree(export: _Export, key: Ed25519PublicKey) -> None:
    line = export.read("keys/allowed_signers").decode().split()
    if len(line) < 4 or line[-2] != "ssh-ed25519":
        raise IntegrityError("keys/allowed_signers is malformed")
    raw = base64.b64decode(line[-1])[-32:]
    mini = export.read("keys/minisign.pub").decode().splitlines()
    mini_blob = base64.b64decode(mini[1]) if len(mini) > 1 else b""
    if raw != public_raw(key) or mini_blob[10:] != public_raw(key):
        raise IntegrityError("the three key files in keys/ are not the same key")
    if mini_blob[2:10] != minisign_key_id(key):
        raise IntegrityError("keys/minisign.pub has an unexpected key id")
    signer = export.manifest.get("signer", {})
    if signer.get("ssh_fingerprint") != ssh_fingerprint(key) or signer.get(
        "der_sha256"
    ) != der_sha256(key):
        raise IntegrityError("the manifest names another signing key")


def _sums(export: _Export) -> None:
    sums = export.read("SHA256SUMS")
    declared = export.manifest.get("sha256sums", {})
    if declared.get("sha256") != hashlib.sha256(sums).hexdigest():
        raise IntegrityError("SHA256SUMS does not match the hash in the manifest")
    expected = "".join(f"{f['sha256']}  {f['path']}\n" for f in export.manifest["files"])
    if sums.decode(errors="replace") != expected:
        raise IntegrityError("SHA256SUMS does not list exactly the manifest's files")


def _contents(export: _Export) -> None:
    bad = []
    for item in export.manifest["files"]:
        path = export.root / item["path"]
        if ".." in Path(item["path"]).parts or Path(item["path"]).is_absolute():
            raise IntegrityError(f"manifest lists a path outside the export: {item['path']}")
        if path.is_symlink() or not path.is_file():
            bad.append(f"{item['path']} missing or not a plain file")
            continue
        size = path.stat().st_size
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        if size != item["size"] or digest != item["sha256"]:
            bad.append(f"{item['path']} altered")
    if bad:
        raise IntegrityError(f"{len(bad)} file(s) do not match the manifest: {', '.join(bad[:5])}")


def _inventory(export: _Export) -> None:
    listed = {f["path"] for f in export.manifest["files"]} | FIXED
    present: set[str] = set()
    for p in export.root.rglob("*"):
        name = str(p.relative_to(export.root))
        if p.is_symlink() or not (p.is_file() or p.is_dir()):
            raise IntegrityError(f"{name} is not a plain file or directory")
        if p.is_dir() and not any(p.iterdir()):
            raise IntegrityError(f"empty directory not in the manifest: {name}")
        if p.is_file():
            present.add(name)
    extra, missing = sorted(present - listed), sorted(listed - present)
    if extra:
        raise IntegrityError(f"file(s) not in the manifest: {', '.join(extra[:5])}")
    if missing:
        raise IntegrityError(f"file(s) missing: {', '.join(missing[:5])}")


def _ledger(export: _Export, key: Ed25519PublicKey) -> None:
    body = export.read("ledger/entry.json")
    try:
        entry = parse_canonical(body)
        proof = InclusionProof.from_json(json.loads(export.read("ledger/inclusion.json")))
    except (ValueError, InputError) as exc:
        raise IntegrityError(f"ledger/ files are malformed: {exc}") from exc
    requisition = export.manifest.get("requisition", {}).get("id")
    data = entry.get("data", {})
    if entry.get("action") != "requisition.export" or entry.get("subject") != {
        "requisition": requisition
    }:
        raise IntegrityError("ledger/entry.json is not this export's ledger entry")
    if data.get("manifest_sha256") != hashlib.sha256(export.manifest_bytes).hexdigest():
        raise IntegrityError("the ledger entry records another manifest")
    if entry.get("seq") != proof.index or merkle.leaf_hash(body) != proof.leaf_hash:
        raise IntegrityError("the inclusion proof is for another ledger entry")
    proof.verify()
    site = export.manifest.get("site", {})
    checkpoint = verify_checkpoint(
        export.read("ledger/checkpoint.txt").decode(), site.get("name", ""), key
    )
    if checkpoint.origin != site.get("ledger_origin"):
        raise IntegrityError("the checkpoint is of another ledger")
    if (checkpoint.size, checkpoint.root) != (proof.tree_size, proof.root):
        raise IntegrityError("the inclusion proof does not lead to the signed checkpoint")


def _cover(export: _Export, key: Ed25519PublicKey) -> None:
    """The cover sheet and VERIFY.txt are signed; the cover states this manifest's hash
    and ledger entry."""
    for name in ("documents/cover.html", "documents/cover.pdf", "VERIFY.txt"):
        verify_raw(key, export.read(name), export.read(f"{name}.sig"))
    html = export.read("documents/cover.html").decode().replace("<wbr>", "")
    sha = hashlib.sha256(export.manifest_bytes).hexdigest()
    seq = parse_canonical(export.read("ledger/entry.json")).get("seq")
    if sha not in html or f"entrée n° {seq}" not in html:
        raise IntegrityError("the cover sheet states another manifest or ledger entry")


CERTIFICATE_FILES = {
    "certificate.json",
    "certificate.json.sig",
    "keys/signer.pub.pem",
    "documents/destruction.html",
    "documents/destruction.html.sig",
    "documents/destruction.pdf",
    "documents/destruction.pdf.sig",
}


def verify_certificate(directory: Path, key_fingerprint: str | None = None) -> Report:
    """Check a destruction certificate: signed JSON, signed PDF and HTML, nothing else."""
    report = Report(directory)
    key = report.key = load_key_file(directory / "keys" / "signer.pub.pem")

    def read(name: str) -> bytes:
        path = directory / name
        if path.is_symlink() or not path.is_file():
            raise IntegrityError(f"{name} is missing or not a plain file")
        return path.read_bytes()

    def signer_named() -> None:
        body = parse_canonical(read("certificate.json"))
        if body.get("format") != "scelle-destruction/1":
            raise IntegrityError("certificate.json is not a scelle destruction certificate")
        if body.get("signer", {}).get("ssh_fingerprint") != ssh_fingerprint(key):
            raise IntegrityError("the certificate names another signing key")

    def inventory() -> None:
        present = {str(p.relative_to(directory)) for p in directory.rglob("*") if not p.is_dir()}
        if present != CERTIFICATE_FILES:
            odd = sorted(present ^ CERTIFICATE_FILES)
            raise IntegrityError(f"file(s) added or missing: {', '.join(odd[:5])}")

    def documents() -> None:
        for name in ("documents/destruction.pdf", "documents/destruction.html"):
            verify_raw(key, read(name), read(f"{name}.sig"))

    checks: list[tuple[str, Callable[[], None]]] = [
        (
            "Ed25519 signature of certificate.json (openssl)",
            lambda: verify_raw(key, read("certificate.json"), read("certificate.json.sig")),
        ),
        ("the certificate names this key", signer_named),
        ("signed PDF and HTML", documents),
        ("no file added or missing", inventory),
    ]
    return run_checks(report, checks, key_fingerprint)


def verify_export(directory: Path, key_fingerprint: str | None = None) -> Report:
    """Check everything; return the report, or raise IntegrityError after listing all.
    A directory holding `certificate.json` is checked as a destruction certificate."""
    if key_fingerprint is not None and not key_fingerprint.strip():
        raise InputError("--key is empty: give the fingerprint printed on the signed paper")
    if not (directory / MANIFEST).is_file():
        if (directory / "certificate.json").is_file():
            return verify_certificate(directory, key_fingerprint)
        raise InputError(f"{directory} is not a scelle export (no {MANIFEST})")
    report = Report(directory)
    export = _Export(directory)
    report.key = key = load_key_file(directory / "keys" / "signer.pub.pem")
    manifest = export.manifest_bytes
    sha = hashlib.sha256(manifest).hexdigest()

    def minisign() -> None:
        comment = verify_minisign(key, manifest, export.read(f"{MANIFEST}.minisig").decode())
        if sha not in comment:
            raise IntegrityError("the minisign trusted comment names another manifest")

    checks: list[tuple[str, Callable[[], None]]] = [
        ("the key files agree", lambda: _keys_agree(export, key)),
        (
            "Ed25519 signature (openssl)",
            lambda: verify_raw(key, manifest, export.read(f"{MANIFEST}.sig")),
        ),
        (
            f"SSH signature, namespace {SSH_NAMESPACE} (ssh-keygen)",
            lambda: verify_sshsig(key, manifest, export.read(f"{MANIFEST}.sshsig").decode()),
        ),
        ("minisign signature and trusted comment", minisign),
        ("SHA256SUMS bound to the manifest", lambda: _sums(export)),
        ("every file's size and SHA-256", lambda: _contents(export)),
        ("no file added or missing", lambda: _inventory(export)),
        ("ledger entry, inclusion proof, signed checkpoint", lambda: _ledger(export, key)),
        ("signed cover sheet and VERIFY.txt", lambda: _cover(export, key)),
    ]
    return run_checks(report, checks, key_fingerprint)
