"""`scelle verify`: an investigator's check of an export, with no site and no database.

Every check runs, each raising on failure; the report lists them all, then
`verify_export` raises `IntegrityError` if any failed. Nothing here imports the database
layer: scelle as the CSV hands it over is all an investigator needs (VERIFY.html runs the
same checks, under the same ids, in a browser: templates/verifier.js).

Trust: the key inside the export proves only that the files were not changed after
signing *by whoever holds that key*. It proves they come from the CSV once its
fingerprint matches the one printed on the signed cover sheet (`--key`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody import destruction, merkle, timestamps
from custody.canonical import parse_canonical
from custody.checks import (
    EXPECTED_KEY,
    Report,
    Step,
    checks_json,
    load_key_file,
    read_first,
    run_checks,
)
from custody.errors import InputError, IntegrityError
from custody.i18n import N_, _, ngettext, os_error_text
from custody.keys import der_sha256, public_raw, ssh_fingerprint
from custody.note import verify_checkpoint
from custody.policy import Policy
from custody.proofs import InclusionProof
from custody.signatures import (
    SSH_NAMESPACE,
    minisign_key_id,
    verify_minisign,
    verify_raw,
    verify_sshsig,
)
from custody.witness_check import (
    POLICY_CHECKS,
    WitnessedReport,
    check_witnesses,
    named_cosigners,
    witnesses_json,
)
from custody.witness_check import witness_lines as witness_lines
from exporters.french import hexa
from exporters.gaps import ENGLISH, WITHHELD, GapKind, kind_of
from exporters.manifest import (
    COVER_SUMS,
    MANIFEST,
    MAX_MANIFEST_BYTES,
    OPTIONAL,
    TIMESTAMP,
    TLOG_PROOF,
    TSA_CA,
    check_format,
    fixed,
)
from exporters.verify_text import stated

# Every check of an export, in the order run, by id (custody.checks.Check): `scelle
# verify` and VERIFY.html (exporters/verify_page.py) both take them from here.
EXPORT_CHECKS = {
    "keys": N_("the key files agree"),
    "signature": N_("Ed25519 signature (openssl)"),
    "ssh-signature": N_("SSH signature, namespace {namespace} (ssh-keygen)"),
    "minisign": N_("minisign signature and trusted comment"),
    "sha256sums": N_("SHA256SUMS bound to the manifest"),
    "files": N_("every file's size and SHA-256"),
    "inventory": N_("no file added or missing"),
    "inclusion": N_("ledger entry of this export, inclusion proof"),
    "checkpoint": N_("signed checkpoint the proof leads to"),
    "cover": N_("signed cover sheet and VERIFY.txt"),
}
# Run after them by `scelle verify` (VERIFY.html does not check RFC 3161 tokens yet).
TIMESTAMP_CHECKS = {"timestamp": N_("RFC 3161 timestamp on the manifest, as its ledger entry says")}
# Run after them when a witness policy is given: POLICY_CHECKS (custody/witness_check.py).
# What is read before any check runs; a failure there is reported under its id.
BEFORE = {
    "manifest": N_("manifest.json readable, canonical, of a format this scelle reads"),
    "keys": EXPORT_CHECKS["keys"],
    "expected-key": EXPECTED_KEY,
}


def check_title(ident: str) -> str:
    """A check's title in the user's language (VERIFY.html words it the same way)."""
    message = (
        EXPORT_CHECKS.get(ident)
        or TIMESTAMP_CHECKS.get(ident)
        or POLICY_CHECKS.get(ident)
        or BEFORE[ident]
    )
    return _(message).format(namespace=SSH_NAMESPACE)


class _Export:
    """The files of an export, read once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # Refused before it is read: parsing and re-canonicalising 264 MB of junk took
        # 2.4 minutes and 1.5 GB. A day of ten Frigate cameras (86,400 segments) is ~40 MB.
        size = (root / MANIFEST).lstat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise IntegrityError(
                _(
                    "{manifest} is {size} bytes, far more than an export's manifest "
                    "(at most {most}): not a scelle manifest"
                ).format(manifest=MANIFEST, size=f"{size:,}", most=f"{MAX_MANIFEST_BYTES:,}")
            )
        self.manifest_bytes = self.read(MANIFEST)
        try:
            self.manifest: dict[str, Any] = parse_canonical(self.manifest_bytes)
        except ValueError as exc:
            raise IntegrityError(_("manifest.json is not canonical JSON")) from exc
        check_format(self.manifest)

    @property
    def present(self) -> set[str]:
        """Which of the files an export holds only sometimes (a timestamp, the
        tlog-proof) are here."""
        return {n for n in OPTIONAL if (self.root / n).is_file()}

    def read(self, name: str) -> bytes:
        path = self.root / name
        if path.is_symlink() or not path.is_file():  # a FIFO would hang, a link lead out
            raise IntegrityError(_("{name} is missing or not a plain file").format(name=name))
        try:
            return path.read_bytes()
        except OSError as exc:
            raise IntegrityError(
                _("{name} cannot be read: {reason}").format(name=name, reason=os_error_text(exc))
            ) from exc


def _keys_agree(export: _Export, key: Ed25519PublicKey) -> None:
    line = export.read("keys/allowed_signers").decode().split()
    if len(line) < 4 or line[-2] != "ssh-ed25519":
        raise IntegrityError(_("keys/allowed_signers is malformed"))
    raw = base64.b64decode(line[-1])[-32:]
    mini = export.read("keys/minisign.pub").decode().splitlines()
    mini_blob = base64.b64decode(mini[1]) if len(mini) > 1 else b""
    if raw != public_raw(key) or mini_blob[10:] != public_raw(key):
        raise IntegrityError(_("the three key files in keys/ are not the same key"))
    if mini_blob[2:10] != minisign_key_id(key):
        raise IntegrityError(_("keys/minisign.pub has an unexpected key id"))
    signer = export.manifest.get("signer", {})
    if signer.get("ssh_fingerprint") != ssh_fingerprint(key) or signer.get(
        "der_sha256"
    ) != der_sha256(key):
        raise IntegrityError(_("the manifest names another signing key"))


def _sums(export: _Export) -> None:
    sums = export.read("SHA256SUMS")
    declared = export.manifest.get("sha256sums", {})
    if declared.get("sha256") != hashlib.sha256(sums).hexdigest():
        raise IntegrityError(_("SHA256SUMS does not match the hash in the manifest"))
    expected = "".join(f"{f['sha256']}  {f['path']}\n" for f in export.manifest["files"])
    if sums.decode(errors="replace") != expected:
        raise IntegrityError(_("SHA256SUMS does not list exactly the manifest's files"))


def _contents(export: _Export) -> None:
    bad = []
    for item in export.manifest["files"]:
        path = export.root / item["path"]
        if ".." in Path(item["path"]).parts or Path(item["path"]).is_absolute():
            raise IntegrityError(
                _("manifest lists a path outside the export: {path}").format(path=item["path"])
            )
        if path.is_symlink() or not path.is_file():
            bad.append(_("{path} missing or not a plain file").format(path=item["path"]))
            continue
        size = path.stat().st_size
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        if size != item["size"] or digest != item["sha256"]:
            bad.append(_("{path} altered").format(path=item["path"]))
    if bad:
        raise IntegrityError(
            ngettext(
                "{count} file(s) do not match the manifest: {files}",
                "{count} file(s) do not match the manifest: {files}",
                len(bad),
            ).format(count=len(bad), files=", ".join(bad[:5]))
        )


def _inventory(export: _Export) -> None:
    listed = {f["path"] for f in export.manifest["files"]} | fixed(export.manifest)
    listed |= OPTIONAL & export.present  # the timestamp and checkpoint checks say if they must
    present: set[str] = set()
    for p in export.root.rglob("*"):
        name = str(p.relative_to(export.root))
        if p.is_symlink() or not (p.is_file() or p.is_dir()):
            raise IntegrityError(_("{name} is not a plain file or directory").format(name=name))
        if p.is_dir() and not any(p.iterdir()):
            raise IntegrityError(_("empty directory not in the manifest: {name}").format(name=name))
        if p.is_file():
            present.add(name)
    extra, missing = sorted(present - listed), sorted(listed - present)
    if extra:
        raise IntegrityError(
            _("file(s) not in the manifest: {files}").format(files=", ".join(extra[:5]))
        )
    if missing:
        raise IntegrityError(_("file(s) missing: {files}").format(files=", ".join(missing[:5])))


def _proof_file(export: _Export) -> InclusionProof:
    not_json = _("ledger/ files are malformed: {file} is not a JSON object").format(
        file="ledger/inclusion.json"
    )
    try:
        doc = json.loads(export.read("ledger/inclusion.json").decode("utf-8"))  # as the page
    except ValueError as exc:  # not UTF-8, or not JSON
        raise IntegrityError(not_json) from exc
    if not isinstance(doc, dict):
        raise IntegrityError(not_json)
    try:
        proof = InclusionProof.from_json(doc)
    except InputError as exc:
        raise IntegrityError(
            _("ledger/ files are malformed: {reason}").format(reason=exc.message)
        ) from exc
    return proof


def _inclusion(export: _Export) -> None:
    """This export's ledger entry, recording this manifest, and its proof up to a root."""
    body = export.read("ledger/entry.json")
    try:
        entry = parse_canonical(body)
    except ValueError as exc:
        raise IntegrityError(
            _("ledger/ files are malformed: {file} is not canonical JSON").format(
                file="ledger/entry.json"
            )
        ) from exc
    proof = _proof_file(export)
    requisition = export.manifest.get("requisition", {}).get("id")
    data = entry.get("data", {})
    if entry.get("action") != "requisition.export" or entry.get("subject") != {
        "requisition": requisition
    }:
        raise IntegrityError(_("ledger/entry.json is not this export's ledger entry"))
    if data.get("manifest_sha256") != hashlib.sha256(export.manifest_bytes).hexdigest():
        raise IntegrityError(_("the ledger entry records another manifest"))
    if entry.get("seq") != proof.index or merkle.leaf_hash(body) != proof.leaf_hash:
        raise IntegrityError(_("the inclusion proof is for another ledger entry"))
    proof.verify()


def _checkpoint(export: _Export, key: Ed25519PublicKey) -> None:
    """The checkpoint is signed by the key, of this site's ledger, and is the root the
    inclusion proof leads to."""
    proof = _proof_file(export)
    site = export.manifest.get("site", {})
    checkpoint = verify_checkpoint(
        export.read("ledger/checkpoint.txt").decode(), site.get("name", ""), key
    )
    if checkpoint.origin != site.get("ledger_origin"):
        raise IntegrityError(_("the checkpoint is of another ledger"))
    if (checkpoint.size, checkpoint.root) != (proof.tree_size, proof.root):
        raise IntegrityError(_("the inclusion proof does not lead to the signed checkpoint"))
    if TLOG_PROOF in export.present:  # the same, in C2SP tlog-proof form: it must agree
        note = export.read("ledger/checkpoint.txt").decode()
        if export.read(TLOG_PROOF) != proof.tlog_proof(note).encode():
            raise IntegrityError(
                _("{file} does not say what the inclusion proof and the checkpoint say").format(
                    file=TLOG_PROOF
                )
            )


def _timestamp(export: _Export, report: ExportReport, ca_pem: bytes | None) -> None:
    """What the export's ledger entry says of a timestamp holds: no token where it
    records none, and where it records one, that token, valid for this manifest, from a
    TSA the CA certifies (`--tsa-ca`, else the export's keys/tsa-ca.pem)."""
    entry = parse_canonical(export.read("ledger/entry.json"))
    said = entry.get("data", {}).get("timestamp") if isinstance(entry, dict) else None
    has_token = TIMESTAMP in export.present
    if not isinstance(said, dict) or "token_sha256" not in said:
        if has_token or TSA_CA in export.present:
            raise IntegrityError(_("a timestamp token the export's ledger entry does not record"))
        report.timestamp = said if isinstance(said, dict) else {}
        return
    if not has_token:
        raise IntegrityError(_("the timestamp token the ledger entry records is missing"))
    token = export.read(TIMESTAMP)
    if hashlib.sha256(token).hexdigest() != said["token_sha256"]:
        raise IntegrityError(_("the timestamp token is not the one the ledger entry records"))
    ca = timestamps.load_ca(ca_pem if ca_pem is not None else export.read(TSA_CA))
    stamp = timestamps.verify(token, export.manifest_bytes, ca)
    report.timestamp = {
        "tsa": said.get("tsa"),
        "time": stamp.utc,
        "ca_given": ca_pem is not None,
    }


def _site_name(export: _Export) -> str | None:
    """The key name the site signs its checkpoints with, as the manifest states it."""
    site = export.manifest.get("site")
    name = site.get("name") if isinstance(site, dict) else None
    return name if isinstance(name, str) else None


def _cover_sums(export: _Export, key: Ed25519PublicKey, manifest_sha: str) -> None:
    """documents/SHA256SUMS, signed, names this manifest and the cover's two files as
    they are: a signed cover sheet copied from another export of the site fails here."""
    sums = export.read(COVER_SUMS)
    verify_raw(key, sums, export.read(f"{COVER_SUMS}.sig"))
    lines: dict[str, str] = {}
    for line in sums.decode(errors="replace").splitlines():
        digest, sep, name = line.partition("  ")
        if not sep:
            raise IntegrityError(_("{file} is not in sha256sum's format").format(file=COVER_SUMS))
        lines[name] = digest
    wanted = {
        "cover.html": hashlib.sha256(export.read("documents/cover.html")).hexdigest(),
        "cover.pdf": hashlib.sha256(export.read("documents/cover.pdf")).hexdigest(),
        f"../{MANIFEST}": manifest_sha,
    }
    if lines != wanted:
        raise IntegrityError(
            _("the cover sheet's files are not this export's (documents/SHA256SUMS)")
        )


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
    if (sha not in html and hexa(sha) not in html) or f"entrée n° {seq}" not in html:
        raise IntegrityError(_("the cover sheet states another manifest or ledger entry"))
    if "agents" in export.manifest:  # its PDF too is bound to this manifest
        _cover_sums(export, key, sha)
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
            _(
                "VERIFY.txt is another export's: it names requisition {requisition}, "
                "manifest {manifest}…, ledger entry {seq}"
            ).format(
                requisition=says.requisition_id,
                manifest=says.manifest_sha256[:16],
                seq=says.ledger_seq,
            )
        )
    if says.ssh_fingerprint != ssh_fingerprint(key):
        raise IntegrityError(_("VERIFY.txt names another signing key"))


@dataclass
class CertificateReport(Report):
    """A destruction certificate's report: also when it existed, if a TSA stamped it."""

    timestamp: dict[str, Any] | None = None


def verify_certificate(
    directory: Path, key_fingerprint: str | None = None, tsa_ca: bytes | None = None
) -> Report:
    """Check a destruction certificate: signed JSON, signed PDF and HTML, its RFC 3161
    token if it has one, nothing else."""
    report = CertificateReport(directory)
    key = report.key = load_key_file(directory / "keys" / "signer.pub.pem")

    def read(name: str) -> bytes:
        path = directory / name
        if path.is_symlink() or not path.is_file():
            raise IntegrityError(_("{name} is missing or not a plain file").format(name=name))
        return path.read_bytes()

    def signer_named() -> None:
        body = parse_canonical(read("certificate.json"))
        destruction.check_format(body)
        if body.get("signer", {}).get("ssh_fingerprint") != ssh_fingerprint(key):
            raise IntegrityError(_("the certificate names another signing key"))

    stamp_files = {destruction.TIMESTAMP, destruction.TSA_CA}

    def inventory() -> None:
        present = {str(p.relative_to(directory)) for p in directory.rglob("*") if not p.is_dir()}
        expected = destruction.FILES | (stamp_files if stamp_files & present else set())
        if present != expected:
            odd = sorted(present ^ expected)
            raise IntegrityError(
                _("file(s) added or missing: {files}").format(files=", ".join(odd[:5]))
            )

    def documents() -> None:
        for name in ("documents/destruction.pdf", "documents/destruction.html"):
            verify_raw(key, read(name), read(f"{name}.sig"))

    def stamped() -> None:
        if not (directory / destruction.TIMESTAMP).exists():
            report.timestamp = {}  # none: no TSA configured, or out of reach, at the purge
            return
        ca = timestamps.load_ca(tsa_ca if tsa_ca is not None else read(destruction.TSA_CA))
        stamp = timestamps.verify(read(destruction.TIMESTAMP), read("certificate.json"), ca)
        report.timestamp = {
            "time": stamp.utc,
            "ca_given": tsa_ca is not None,
        }

    checks: list[Step] = [
        (
            "signature",
            _("Ed25519 signature of certificate.json (openssl)"),
            lambda: verify_raw(key, read("certificate.json"), read("certificate.json.sig")),
        ),
        ("signer", _("the certificate names this key"), signer_named),
        ("documents", _("signed PDF and HTML"), documents),
        ("inventory", _("no file added or missing"), inventory),
        ("timestamp", _("RFC 3161 timestamp on certificate.json, if it has one"), stamped),
    ]
    return run_checks(report, checks, key_fingerprint)


@dataclass
class ExportReport(WitnessedReport):
    """A verified export's report, with what its signed manifest says it lacks: an
    authentic export may still be partial, and its verdict must say so; and which
    witnesses vouch for its checkpoint (WitnessedReport)."""

    complete: bool = False
    # The RFC 3161 timestamp: its time and TSA once verified, or why there is none.
    timestamp: dict[str, Any] | None = None
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
    for attachment in manifest.get("attachments", []):  # another system's export
        report.withheld += [
            {
                "camera": attachment["system"],
                "path": f"attached/{attachment['folder']}/{f['path']}",
                "kind": f["state"],
                "attached": True,
            }
            for f in attachment["files"]
            if f["state"] != "ok" and GapKind(f["state"]) in WITHHELD
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
        values = {
            "camera": gap["camera"],
            "start": gap["from"],
            "end": gap["to"],
            "length": _seconds(gap),
            "kind": _(ENGLISH[GapKind(gap["kind"])]),
        }
        if gap.get("segment"):
            line = _("GAP       {camera}  {start} to {end} ({length}): {kind} — {segment}")
            values["segment"] = gap["segment"]
        else:
            line = _("GAP       {camera}  {start} to {end} ({length}): {kind}")
        lines.append("  " + line.format(**values))
    named = {gap.get("segment") for gap in report.gaps}
    for seg in report.withheld:  # one whose time other footage covers is in no gap
        if seg.get("attached"):
            line = _(
                "WITHHELD  {system}  {path}: no longer the bytes taken into custody, not delivered"
            )
            lines.append("  " + line.format(system=seg["camera"], path=seg["path"]))
        elif seg["path"] not in named:
            line = _("WITHHELD  {camera}  {path}: {kind} (its time is covered by other footage)")
            lines.append(
                "  "
                + line.format(
                    camera=seg["camera"], path=seg["path"], kind=_(ENGLISH[GapKind(seg["kind"])])
                )
            )
    return lines


def timestamp_lines(report: Report) -> list[str]:
    """When the export existed, as its TSA states it, or why no TSA stated it."""
    if isinstance(report, CertificateReport) and report.timestamp is not None:
        said = report.timestamp
        if "time" not in said:
            return [_("no timestamp: none was asked for or obtained at the purge")]
        line = _("timestamped: the certificate existed on {time} (RFC 3161)").format(
            time=said["time"]
        )
        return [line + ("" if said["ca_given"] else _("; checked against the CA it carries"))]
    if not isinstance(report, ExportReport) or report.timestamp is None:
        return []
    said = report.timestamp
    if "time" in said:
        line = _("timestamped by {tsa}: the manifest existed on {time} (RFC 3161)").format(
            tsa=said.get("tsa"), time=said["time"]
        )
        if not said.get("ca_given"):
            line += _(
                "; checked against the CA certificate the export itself carries: give --tsa-ca "
                "with the authority's own to make it independent"
            )
        return [line]
    if "failed" in said:
        return [
            _("no timestamp: the TSA {tsa} could not stamp it when it was sealed ({why})").format(
                tsa=said.get("tsa"), why=said["failed"]
            )
        ]
    return [_("no timestamp: no TSA was configured when it was sealed")]


def verdict(report: Report) -> str:
    """The last line of `scelle verify`: an authentic but partial export is never
    reported as plainly VERIFIED."""
    if not isinstance(report, ExportReport) or report.complete:
        return _("VERIFIED against the expected key") if report.key_pinned else _("VERIFIED")
    if report.key_pinned:
        partial = _(
            "PARTIAL export, VERIFIED against the expected key: {gaps} gap(s) in the footage, "
            "{withheld} indexed segment(s) withheld (listed above; the cover sheet states "
            "them too)"
        )
    else:
        partial = _(
            "PARTIAL export, VERIFIED: {gaps} gap(s) in the footage, {withheld} indexed "
            "segment(s) withheld (listed above; the cover sheet states them too)"
        )
    return partial.format(gaps=len(report.gaps), withheld=len(report.withheld))


def status(report: Report) -> str:
    """The verdict as VERIFY.html's `data-status` names it: ok, partial or failed."""
    if report.failures:
        return "failed"
    if isinstance(report, ExportReport) and not report.complete:
        return "partial"
    return "ok"


def report_json(report: Report) -> dict[str, Any]:
    """`scelle verify --json`: every check, and for an export its completeness."""
    shown: dict[str, Any] = {
        "directory": str(report.directory),
        "status": status(report),
    } | checks_json(report)
    if isinstance(report, ExportReport) and not report.failures:
        shown |= {"complete": report.complete, "gaps": report.gaps, "withheld": report.withheld}
    if isinstance(report, ExportReport):
        shown |= witnesses_json(report) | {"timestamp": report.timestamp}
    return shown


def _inside_hint(directory: Path) -> str | None:
    """Where the export is, when `directory` holds exports (the USB key's root, the site's
    exports folder): an investigator often points at the folder above."""
    try:
        inside = sorted(d for d in directory.iterdir() if d.is_dir() and (d / MANIFEST).is_file())[
            :5
        ]
    except OSError:
        return None
    if not inside:
        return None
    if len(inside) == 1:
        return _("the export is the folder inside: scelle verify {folder}").format(folder=inside[0])
    return _("this folder holds exports: verify each one, e.g. scelle verify {folder}").format(
        folder=inside[0]
    )


def verify_export(
    directory: Path,
    key_fingerprint: str | None = None,
    policy: Policy | None = None,
    tsa_ca: bytes | None = None,
) -> Report:
    """Check everything; return the report, or raise IntegrityError after listing all.
    A directory holding `certificate.json` is checked as a destruction certificate.
    An export's report also says whether it is complete, and if not, what it lacks."""
    if key_fingerprint is not None and not key_fingerprint.strip():
        raise InputError(_("--key is empty: give the fingerprint printed on the signed paper"))
    if not directory.is_dir():  # typed by the user: invalid input (3), as before
        raise InputError(
            _("{directory} does not exist or is not a folder").format(directory=directory),
            hint=_("give the export's folder, on the USB key or DVD"),
        )
    if not (directory / MANIFEST).is_file():
        if (directory / "certificate.json").is_file():
            return verify_certificate(directory, key_fingerprint, tsa_ca)
        raise InputError(
            _("{directory} is not a scelle export (no {manifest})").format(
                directory=directory, manifest=MANIFEST
            ),
            hint=_inside_hint(directory),
        )
    report = ExportReport(directory)
    report.key_pinned = key_fingerprint is not None  # no warning if what follows fails
    with read_first(report, "manifest", check_title("manifest")):
        export = _Export(directory)
    with read_first(report, "keys", check_title("keys")):
        report.key = key = load_key_file(directory / "keys" / "signer.pub.pem")
    manifest = export.manifest_bytes
    sha = hashlib.sha256(manifest).hexdigest()

    def minisign() -> None:
        comment = verify_minisign(key, manifest, export.read(f"{MANIFEST}.minisig").decode())
        if sha not in comment:
            raise IntegrityError(_("the minisign trusted comment names another manifest"))

    run = {
        "keys": lambda: _keys_agree(export, key),
        "signature": lambda: verify_raw(key, manifest, export.read(f"{MANIFEST}.sig")),
        "ssh-signature": lambda: verify_sshsig(
            key, manifest, export.read(f"{MANIFEST}.sshsig").decode()
        ),
        "minisign": minisign,
        "sha256sums": lambda: _sums(export),
        "files": lambda: _contents(export),
        "inventory": lambda: _inventory(export),
        "inclusion": lambda: _inclusion(export),
        "checkpoint": lambda: _checkpoint(export, key),
        "cover": lambda: _cover(export, key),
    }
    checks: list[Step] = [(ident, check_title(ident), run[ident]) for ident in EXPORT_CHECKS]
    checks.append(
        ("timestamp", check_title("timestamp"), lambda: _timestamp(export, report, tsa_ca))
    )
    checkpoint = "ledger/checkpoint.txt"
    if policy is not None:
        checks.append(
            (
                "witnesses",
                check_title("witnesses"),
                lambda: check_witnesses(
                    report, policy, export.read(checkpoint).decode(), _site_name(export)
                ),
            )
        )
    else:
        report.cosigners_named = named_cosigners(
            lambda: export.read(checkpoint), _site_name(export)
        )
    run_checks(report, checks, key_fingerprint)
    try:
        _completeness(report, export.manifest)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise IntegrityError(_("the manifest's gaps are malformed")) from exc
    return report
