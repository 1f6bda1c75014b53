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
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody import destruction, merkle
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
from exporters.gaps import ENGLISH, WITHHELD, GapKind, kind_of
from exporters.manifest import FIXED, MANIFEST, MAX_MANIFEST_BYTES, check_format
from exporters.verify_text import stated


class _Export:
    """The files of an export, read once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # Refused before it is read: parsing and re-canonicalising 264 MB of junk took
        # 2.4 minutes and 1.5 GB. A day of ten Frigate cameras (86,400 segments) is ~40 MB.
        size = (root / MANIFEST).lstat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise IntegrityError(
                f"{MANIFEST} is {size:,} bytes, far more than an export's manifest "
                f"(at most {MAX_MANIFEST_BYTES:,}): not a scelle manifest"
            )
        self.manifest_bytes = self.read(MANIFEST)
        try:
            self.manifest: dict[str, Any] = parse_canonical(self.manifest_bytes)
        except ValueError as exc:
            raise IntegrityError("manifest.json is not canonical JSON") from exc
        check_format(self.manifest)

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
    """The cover sheet and VERIFY.txt are signed, and both are this export's: the cover
    states this manifest's hash and ledger entry, VERIFY.txt this requisition, key,
    manifest hash and ledger entry (the same key signs every export of the site: a
    signature alone would let one export's papers pass for another's)."""
    for name in ("documents/cover.html", "documents/cover.pdf", "VERIFY.txt"):
        verify_raw(key, export.read(name), export.read(f"{name}.sig"))
    html = export.read("documents/cover.html").decode().replace("<wbr>", "")
    sha = hashlib.sha256(export.manifest_bytes).hexdigest()
    seq = parse_canonical(export.read("ledger/entry.json")).get("seq")
    if sha not in html or f"entrée n° {seq}" not in html:
        raise IntegrityError("the cover sheet states another manifest or ledger entry")
    try:
        says = stated(export.read("VERIFY.txt").decode())
    except ValueError as exc:
        raise IntegrityError(str(exc)) from exc
    requisition = export.manifest.get("requisition", {}).get("id")
    if (says.requisition_id, says.manifest_sha256, says.ledger_seq) != (
        requisition,
        sha,
        str(seq),
    ):
        raise IntegrityError(
            f"VERIFY.txt is another export's: it names requisition {says.requisition_id}, "
            f"manifest {says.manifest_sha256[:16]}…, ledger entry {says.ledger_seq}"
        )
    if says.ssh_fingerprint != ssh_fingerprint(key):
        raise IntegrityError("VERIFY.txt names another signing key")


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
        destruction.check_format(body)
        if body.get("signer", {}).get("ssh_fingerprint") != ssh_fingerprint(key):
            raise IntegrityError("the certificate names another signing key")

    def inventory() -> None:
        present = {str(p.relative_to(directory)) for p in directory.rglob("*") if not p.is_dir()}
        if present != destruction.FILES:
            odd = sorted(present ^ destruction.FILES)
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


@dataclass
class ExportReport(Report):
    """A verified export's report, with what its signed manifest says it lacks: an
    authentic export may still be partial, and its verdict must say so."""

    complete: bool = False
    gaps: list[dict[str, Any]] = field(default_factory=list)  # each with its camera
    withheld: list[dict[str, Any]] = field(default_factory=list)  # segments not delivered


def _completeness(report: ExportReport, manifest: dict[str, Any]) -> None:
    """Read the gaps and withheld segments of a manifest whose signature verified."""
    for item in manifest["items"]:
        camera = item["camera"]["id"]
        for gap in item["coverage"]["gaps"]:
            report.gaps.append(gap | {"camera": camera, "kind": str(kind_of(gap))})
        segments = item["coverage"]["segments"]
        if segments and "state" in segments[0]:
            states = {s["path"]: s["state"] for s in segments if s["state"] != "ok"}
        else:  # a manifest written before segments had a state
            states = {path: str(GapKind.MISSING) for path in item["altered_since_ingest"]}
        report.withheld += [
            {"camera": camera, "path": path, "kind": state}
            for path, state in states.items()
            if GapKind(state) in WITHHELD
        ]
    report.complete = manifest["complete"] is True and not report.gaps and not report.withheld


def _seconds(gap: dict[str, Any]) -> str:
    start, end = (
        datetime.fromisoformat(gap[k].replace("Z", "+00:00")) for k in ("from_utc", "to_utc")
    )
    seconds = (end - start).total_seconds()
    return f"{seconds:g} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def completeness_lines(report: Report) -> list[str]:
    """Each gap (camera, period in local time, kind) and each withheld segment, as the
    cover sheet states them; nothing for a complete export (or a certificate)."""
    if not isinstance(report, ExportReport):
        return []
    lines = []
    for gap in report.gaps:
        segment = f" — {gap['segment']}" if gap.get("segment") else ""
        lines.append(
            f"  GAP       {gap['camera']}  {gap['from']} to {gap['to']} ({_seconds(gap)}): "
            f"{ENGLISH[GapKind(gap['kind'])]}{segment}"
        )
    named = {gap.get("segment") for gap in report.gaps}
    for seg in report.withheld:  # one whose time other footage covers is in no gap
        if seg["path"] not in named:
            lines.append(
                f"  WITHHELD  {seg['camera']}  {seg['path']}: {ENGLISH[GapKind(seg['kind'])]}"
                " (its time is covered by other footage)"
            )
    return lines


def verdict(report: Report) -> str:
    """The last line of `scelle verify`: an authentic but partial export is never
    reported as plainly VERIFIED."""
    against = " against the expected key" if report.key_pinned else ""
    if not isinstance(report, ExportReport) or report.complete:
        return f"VERIFIED{against}"
    return (
        f"PARTIAL export, VERIFIED{against}: {len(report.gaps)} gap(s) in the footage, "
        f"{len(report.withheld)} indexed segment(s) withheld (listed above; the cover sheet "
        "states them too)"
    )


def report_json(report: Report) -> dict[str, Any]:
    """`scelle verify --json`: every check, and for an export its completeness."""
    shown: dict[str, Any] = {
        "directory": str(report.directory),
        "verified": not report.failures,
        "key_pinned": report.key_pinned,
        "fingerprint": report.fingerprint,
        "checks": [{"name": n, "ok": why is None, "failure": why} for n, why in report.checks],
    }
    if isinstance(report, ExportReport) and not report.failures:
        shown |= {"complete": report.complete, "gaps": report.gaps, "withheld": report.withheld}
    return shown


def verify_export(directory: Path, key_fingerprint: str | None = None) -> Report:
    """Check everything; return the report, or raise IntegrityError after listing all.
    A directory holding `certificate.json` is checked as a destruction certificate.
    An export's report also says whether it is complete, and if not, what it lacks."""
    if key_fingerprint is not None and not key_fingerprint.strip():
        raise InputError("--key is empty: give the fingerprint printed on the signed paper")
    if not (directory / MANIFEST).is_file():
        if (directory / "certificate.json").is_file():
            return verify_certificate(directory, key_fingerprint)
        raise InputError(f"{directory} is not a scelle export (no {MANIFEST})")
    report = ExportReport(directory)
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
    run_checks(report, checks, key_fingerprint)
    try:
        _completeness(report, export.manifest)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise IntegrityError(f"the manifest's gaps are malformed ({exc})") from exc
    return report
