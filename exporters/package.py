"""The export package: footage, a signed manifest, keys, ledger proof, instructions
(the layout and format: exporters/manifest.py).

The package is built in a hidden temporary directory beside its destination and renamed
into place only when complete: a crash or Ctrl-C leaves no `<ID>` directory at all. The
stages are named for what they do: collect (index, find, room, the extraction's ledger
entry), copy (masters verified against ingest, working copies from them), seal (sums,
manifest, signatures, keys), prove (the export's ledger entry, checkpoint, inclusion
proof, VERIFY.txt), document (the cover sheet and its entry), commit (fsync, the
caller records the manifest's hash, rename). The ledger entry of the export carries the
manifest's hash; it is appended, checkpointed and proven before the rename, so that the
package carries its own proof of registration.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custody import checkpoints, timestamps
from custody.canonical import canonical_bytes
from custody.checkpoint_stamps import stamp_checkpoint
from custody.checkpoints import read_identity
from custody.checks import PAGE
from custody.cosigning import cosign, evidence, load_policy
from custody.entry import Appended, Record
from custody.errors import DiskFullError, FfmpegError, InvalidStateError
from custody.files import DISK_FULL, disk_full, fsync_dir, write_atomic
from custody.i18n import _
from custody.keys import Signer, der_sha256, public_pem, ssh_fingerprint
from custody.note import verifier_key
from custody.signatures import (
    allowed_signers,
    minisign_public_key,
    sign_minisign,
    sign_raw,
    sign_sshsig,
)
from custody.site import Site
from custody.timewindow import Window, now_us, utc_text
from exporters.attached import Attachment, deliver
from exporters.documents import PaperSigner
from exporters.export_facts import cover
from exporters.index import Coverage, coverage_json, find, scan, sha256_file
from exporters.manifest import (
    COVER_SUMS,
    FORMAT,
    MANIFEST,
    REQUISITION_FIELDS,
    SUMS,
    TIMESTAMP,
    TLOG_PROOF,
    TSA_CA,
)
from exporters.master import extract_master, verified_coverage
from exporters.models import Camera
from exporters.verify_page import page_bytes
from exporters.verify_text import verify_text
from exporters.working import make_working_copies

RESERVE = 8 << 20
"""Bytes held back on the export's disk until the export's ledger entry is appended:
what is written after it (proof, checkpoint, VERIFY.txt, cover sheet) then always fits,
so that the ledger never records an export that a full disk left unwritten."""


@dataclass(frozen=True)
class Built:
    path: Path
    manifest_sha256: str
    complete: bool
    gaps: int
    altered: int
    ledger_seq: int


def _disk_full(out_dir: Path, requisition_id: str, needed: int | None) -> DiskFullError:
    free = f"{shutil.disk_usage(out_dir).free:,}"
    if needed:
        message = _(
            "not enough space in {out} for the export of {requisition}: it needs more than "
            "{needed} bytes (master copy and reserve; the working copy comes on top), "
            "{free} bytes are free: nothing was kept"
        ).format(out=out_dir, requisition=requisition_id, needed=f"{needed:,}", free=free)
    else:
        message = _(
            "not enough space in {out} for the export of {requisition}: the disk filled up "
            "while it was being built, {free} bytes are free: nothing was kept"
        ).format(out=out_dir, requisition=requisition_id, free=free)
    return DiskFullError(
        message, hint=_("free some space or choose another --out, then extract again")
    )


def _reserve(path: Path, size: int) -> None:
    """Allocate `size` bytes at `path` (really, not a sparse file), or OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)


def _drop_empty_dirs(root: Path) -> None:
    """Remove directories left empty (a camera whose every segment was withheld, a
    window with no span): an export lists files, and verify refuses empty directories."""
    for directory in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if not any(directory.iterdir()):
            directory.rmdir()


def _files(root: Path, directory: str, role: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted((root / directory).rglob("*")):
        if path.is_file():
            digest, size = sha256_file(path)
            found.append(
                {"path": str(path.relative_to(root)), "role": role, "size": size, "sha256": digest}
            )
    return found


def _camera_json(camera: Camera) -> dict[str, Any]:
    return {
        "id": camera.id,
        "name": camera.name,
        "location": camera.location,
        "commune": camera.commune,
        "authorisation_ref": camera.authorisation_ref,
        "authorisation_expires": camera.authorisation_expires,
        "timezone": camera.timezone,
        "clock": {
            "offset_ms": camera.clock_offset_ms,
            "measured_at": camera.clock_measured_at,
            "method": camera.clock_method,
        },
    }


def clean_stale(out_dir: Path, requisition_id: str) -> None:
    """Remove what an interrupted extraction of this requisition left behind."""
    for stale in out_dir.glob(f".{requisition_id}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)


@dataclass(frozen=True)
class Order:
    """What the export is for: the requisition, as the manifest states it."""

    requisition: Mapping[str, Any]  # at least REQUISITION_FIELDS
    # The agents it names (registered_by, decided_by, the extracting agent), by login:
    # name, role, designation, as the register held them when the export was signed.
    agents: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.requisition["id"])

    @property
    def procedure(self) -> str:
        return str(self.requisition["pv_number"])


def build(
    site: Site,
    order: Order,
    pairs: Sequence[tuple[Camera, Window]],
    out_dir: Path,
    signer: Signer,
    actor: str,
    *,
    papers: PaperSigner | None = None,
    burn_in: bool = True,
    stream_copy: bool = False,
    progress: Callable[[float], None] | None = None,
    on_sealed: Callable[[str], None] | None = None,
    attachments: Sequence[Attachment] = (),
) -> Built:
    """Extract, hash, sign and prove one requisition's export into `out_dir/<ID>`.
    `on_sealed(manifest_sha256)` runs just before the rename (the caller records it, so
    that an attempt killed right after the rename can be finished)."""
    final = out_dir / order.id
    if final.exists():
        raise InvalidStateError(
            _("the export directory {directory} already exists").format(directory=final)
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    clean_stale(out_dir, order.id)
    tmp = Path(tempfile.mkdtemp(prefix=f".{order.id}.partial-", dir=out_dir))
    try:
        coverages = _collect(site, order, pairs, tmp, actor, attachments)
        footage = _copy(coverages, tmp, burn_in, stream_copy, progress)
        footage.attachments, footage.attachments_withheld = deliver(attachments, tmp)
        sealed = _seal(site, order, footage, tmp, signer, actor)
        stamped = _timestamp(site, sealed, tmp)
        entry = _prove(site, order, sealed, tmp, signer, actor, stamped)
        _document(site, order, sealed, tmp, papers or PaperSigner(signer), actor)
        _commit(tmp, final, sealed.sha256, on_sealed)
    except (OSError, FfmpegError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        full = disk_full(exc) if isinstance(exc, OSError) else _ffmpeg_full(exc)
        if full:
            raise _disk_full(out_dir, order.id, None) from exc
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Built(
        final,
        sealed.sha256,
        sealed.complete,
        sealed.gaps,
        len(footage.withheld) + footage.attachments_withheld,
        entry.seq,
    )


def _ffmpeg_full(exc: FfmpegError) -> bool:
    """ffmpeg reports a full disk only in words (its strerror)."""
    return any(os.strerror(code) in exc.message for code in DISK_FULL)


def _collect(
    site: Site,
    order: Order,
    pairs: Sequence[tuple[Camera, Window]],
    tmp: Path,
    actor: str,
    attachments: Sequence[Attachment],
) -> list[Coverage]:
    """Index what is new, find each window's segments, make sure the export fits, and
    record the extraction (every access to footage is in the ledger)."""
    scan(site, {c.id: c for c, _window in pairs}.values(), actor)
    # Nothing is opened in the stores here: each segment is read once, to be copied,
    # and every check is made on the copy (verified_coverage).
    found = [find(site, cam, window, check=False) for cam, window in pairs]
    needed = sum(seg.size for c in found for seg in c.segments) + RESERVE
    needed += sum(f.size for a in attachments for f in a.files)
    if shutil.disk_usage(tmp).free < needed:
        raise _disk_full(tmp.parent, order.id, needed)
    _reserve(tmp / ".reserve", RESERVE)
    site.ledger.append(
        actor,
        Record(
            "footage.extract",
            {"requisition": order.id, "cameras": sorted({c.id for c, _window in pairs})},
            _("extraction for requisition {requisition}").format(requisition=order.id),
            order.procedure,
            data={"windows": [coverage_json(c)["window"] | {"camera": c.camera.id} for c in found]}
            | (
                {"attachments": [a.facts["ledger_seq"] for a in attachments]} if attachments else {}
            ),
        ),
    )
    return found


@dataclass
class Footage:
    """The copied footage: the manifest's items, the coverages of the verified copies,
    and what other systems exported (exporters/attached.py)."""

    items: list[dict[str, Any]]
    coverages: list[Coverage]
    withheld: list[str]  # indexed segments not delivered (missing, altered, not regular)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    attachments_withheld: int = 0  # attached files no longer the bytes taken in


def _copy(
    found: list[Coverage],
    tmp: Path,
    burn_in: bool,
    stream_copy: bool,
    progress: Callable[[float], None] | None,
) -> Footage:
    """Master copies verified against their ingest hashes, working copies made from
    them; what is not bit for bit what was ingested is withheld and named."""
    items: list[dict[str, Any]] = []
    coverages: list[Coverage] = []
    withheld: list[str] = []

    def part(i: int) -> Callable[[float], None] | None:
        if progress is None:
            return None
        report = progress
        return lambda fraction: report((i + fraction) / len(found))

    for i, indexed in enumerate(found):
        cam = indexed.camera.id
        master = extract_master(indexed.segments, tmp / "master" / f"{i + 1:02d}-{cam}")
        coverage = verified_coverage(indexed, master)  # its spans point at the copies
        coverages.append(coverage)
        working = make_working_copies(
            coverage,
            tmp / "working" / f"{i + 1:02d}-{cam}",
            burn_in=burn_in,
            stream_copy=stream_copy,
            progress=part(i),
        )
        altered = [u.segment.path for u in coverage.withheld]
        withheld += altered
        items.append(
            {
                "camera": _camera_json(coverage.camera),
                "coverage": coverage_json(coverage),
                "working_mode": "stream copy" if stream_copy else "re-encode",
                "working": [
                    {
                        "path": str(w.path.relative_to(tmp)),
                        "measured_duration_us": w.probe.duration_us,
                        "frames": w.probe.frames,
                    }
                    for w in working
                ],
                # Indexed segments withheld (missing, not a regular file, or altered):
                # none of their bytes is in the export; each is named in the gaps.
                "altered_since_ingest": altered,
            }
        )
    _drop_empty_dirs(tmp)
    return Footage(items, coverages, withheld)


@dataclass(frozen=True)
class Sealed:
    manifest: bytes
    sha256: str
    files: list[dict[str, Any]]
    complete: bool
    gaps: int
    withheld: list[str]
    key_name: str


def _seal(
    site: Site, order: Order, footage: Footage, tmp: Path, signer: Signer, actor: str
) -> Sealed:
    """SHA256SUMS, the manifest and its three signatures, the public key in three forms."""
    files = (
        _files(tmp, "master", "master")
        + _files(tmp, "attached", "attached")
        + _files(tmp, "working", "working")
    )
    page = page_bytes()  # the verifier page, signed as every other file is
    write_atomic(tmp / PAGE, page)
    files.append(
        {
            "path": PAGE,
            "role": "verifier",
            "size": len(page),
            "sha256": hashlib.sha256(page).hexdigest(),
        }
    )
    sums = "".join(f"{f['sha256']}  {f['path']}\n" for f in files).encode()
    write_atomic(tmp / SUMS, sums)
    with site.db.read() as cur:
        identity = read_identity(cur)
    gaps = sum(len(c.gaps) for c in footage.coverages)
    complete = all(c.complete for c in footage.coverages) and not footage.attachments_withheld
    key = signer.public_key
    manifest = canonical_bytes(
        {
            "format": FORMAT,
            "requisition": {k: order.requisition.get(k) for k in REQUISITION_FIELDS},
            "site": {"name": identity.key_name, "ledger_origin": identity.origin},
            "signer": {
                "ssh_fingerprint": ssh_fingerprint(key),
                "der_sha256": der_sha256(key),
                "verifier_key": verifier_key(identity.key_name, key),
            },
            "exported_at": utc_text(now_us()),
            "exported_by": actor,
            "agents": {login: dict(who) for login, who in sorted(order.agents.items())},
            "items": footage.items,
            **({"attachments": footage.attachments} if footage.attachments else {}),
            "files": files,
            "sha256sums": {"path": SUMS, "sha256": hashlib.sha256(sums).hexdigest()},
            "complete": complete,
        }
    )
    sha = hashlib.sha256(manifest).hexdigest()
    write_atomic(tmp / MANIFEST, manifest)
    write_atomic(tmp / f"{MANIFEST}.sig", sign_raw(signer, manifest))
    write_atomic(tmp / f"{MANIFEST}.sshsig", sign_sshsig(signer, manifest).encode())
    comment = f"scelle export {order.id} manifest sha256 {sha}"
    write_atomic(tmp / f"{MANIFEST}.minisig", sign_minisign(signer, manifest, comment).encode())
    write_atomic(tmp / "keys" / "signer.pub.pem", public_pem(key).encode())
    write_atomic(tmp / "keys" / "allowed_signers", allowed_signers(key, identity.key_name).encode())
    write_atomic(tmp / "keys" / "minisign.pub", minisign_public_key(key).encode())
    return Sealed(manifest, sha, files, complete, gaps, footage.withheld, identity.key_name)


def _timestamp(site: Site, sealed: Sealed, tmp: Path) -> dict[str, Any] | None:
    """An RFC 3161 token on the manifest from the site's TSA (`manifest.json.tsr`, with
    the TSA's CA in keys/), or why there is none; what the export's ledger entry records
    (None: no TSA configured). A TSA that cannot be reached does not stop the export."""
    stamped = timestamps.stamp_for(
        site.settings.timestamp_url, site.settings.timestamp_ca, sealed.manifest
    )
    if stamped is None:
        return None
    if stamped.stamp is not None:
        write_atomic(tmp / TIMESTAMP, stamped.stamp.token)
        write_atomic(tmp / TSA_CA, stamped.ca_pem)
    return stamped.record()


def _prove(
    site: Site,
    order: Order,
    sealed: Sealed,
    tmp: Path,
    signer: Signer,
    actor: str,
    stamped: dict[str, Any] | None,
) -> Appended:
    """The export's ledger entry (carrying the manifest's hash), a checkpoint signed over
    it, its inclusion proof, and VERIFY.txt naming all three."""
    entry = site.ledger.append(
        actor,
        Record(
            "requisition.export",
            {"requisition": order.id},
            _("export sealed for requisition {requisition}").format(requisition=order.id),
            order.procedure,
            data={
                "manifest_sha256": sealed.sha256,
                "files": len(sealed.files),
                "bytes": sum(f["size"] for f in sealed.files),
                "complete": sealed.complete,
                "gaps": sealed.gaps,
                "altered": sealed.withheld,
                "timestamp": stamped,
            },
        ),
    )
    (tmp / ".reserve").unlink()  # what follows is small: it fits in what this frees
    checkpoint, note = checkpoints.sign(site.db, site.settings.checkpoint_file, signer)
    stamp_checkpoint(site.db, site.settings, note)  # in the ledger's bundles (a TSA's word)
    policy = load_policy(site.settings)
    witnesses: list[str] | None = None
    if policy is not None:  # the witnesses' cosignatures travel with the checkpoint
        witnessed = cosign(site.db, policy, note)
        refused = evidence(witnessed)
        if refused is not None:  # a rolled-back or rewritten ledger seals nothing
            raise refused
        note = witnessed.note
        witnesses = sorted(c.name for c in witnessed.collected.cosigned)
    proof = site.ledger.inclusion(entry.seq, checkpoint.size)
    write_atomic(tmp / "ledger" / "entry.json", entry.body)
    write_atomic(tmp / "ledger" / "inclusion.json", json.dumps(proof.to_json(), indent=2).encode())
    write_atomic(tmp / "ledger" / "checkpoint.txt", note.encode())
    write_atomic(tmp / TLOG_PROOF, proof.tlog_proof(note).encode())
    key = signer.public_key
    write_atomic(
        tmp / "VERIFY.txt",
        verify_text(
            order.id,
            sealed.key_name,
            key,
            sealed.sha256,
            entry.seq,
            proof,
            checkpoint,
            stamped,
            witnesses,
        ).encode(),
    )
    write_atomic(tmp / "VERIFY.txt.sig", sign_raw(signer, (tmp / "VERIFY.txt").read_bytes()))
    return entry


def _document(
    site: Site, order: Order, sealed: Sealed, tmp: Path, papers: PaperSigner, actor: str
) -> None:
    """The cover sheet, signed inside and beside, and its issue recorded."""
    sheet = cover(tmp, site.settings, papers.certificate, papers.pdf)
    html, pdf = papers.write(sheet, tmp / "documents", "cover")
    sums = "".join(
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {name}\n"
        for path, name in ((html, html.name), (pdf, pdf.name), (tmp / MANIFEST, f"../{MANIFEST}"))
    ).encode()
    write_atomic(tmp / COVER_SUMS, sums)
    write_atomic(tmp / f"{COVER_SUMS}.sig", sign_raw(papers.signer, sums))
    site.ledger.append(
        actor,
        Record(
            "document.issue",
            {"requisition": order.id, "document": "cover"},
            _("cover sheet issued with the export"),
            order.procedure,
            data={"sha256": sheet.sha256, "manifest_sha256": sealed.sha256},
        ),
    )


def _commit(
    tmp: Path, final: Path, manifest_sha256: str, on_sealed: Callable[[str], None] | None
) -> None:
    """Everything durable, the manifest's hash recorded by the caller, then the rename."""
    for directory in [tmp, *(p for p in tmp.rglob("*") if p.is_dir())]:
        fsync_dir(directory)
    if on_sealed is not None:
        on_sealed(manifest_sha256)
    os.rename(tmp, final)
    fsync_dir(final.parent)
