"""The export package: footage, a signed manifest, keys, ledger proof, instructions.

```
<ID>/manifest.json          RFC 8785; every content file with role, size, SHA-256
<ID>/SHA256SUMS             coreutils format (its hash is in the manifest)
<ID>/manifest.json.sig      raw Ed25519   (openssl pkeyutl -verify -rawin)
<ID>/manifest.json.sshsig   SSHSIG        (ssh-keygen -Y verify -n scelle-export)
<ID>/manifest.json.minisig  minisign      (minisign -V)
<ID>/keys/                  signer.pub.pem, allowed_signers, minisign.pub
<ID>/ledger/                entry.json (exact bytes), inclusion.json, checkpoint.txt
<ID>/master/ <ID>/working/  the footage
<ID>/VERIFY.txt             how to check it, in French and English
```

The package is built in a hidden temporary directory beside its destination and renamed
into place only when complete: a crash or Ctrl-C leaves no `<ID>` directory at all. The
ledger entry of the export carries the manifest's hash; it is appended, checkpointed and
proven before the rename, so that the package carries its own proof of registration.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from custody import checkpoints
from custody.canonical import canonical_bytes
from custody.checkpoints import read_identity
from custody.errors import DiskFull, FfmpegError, InvalidState
from custody.files import fsync_dir, write_atomic
from custody.keys import Signer, der_sha256, public_pem, ssh_fingerprint
from custody.ledger import Record
from custody.note import verifier_key
from custody.signatures import (
    allowed_signers,
    minisign_public_key,
    sign_minisign,
    sign_raw,
    sign_sshsig,
)
from custody.site import Site
from exporters import documents
from exporters.index import Coverage, coverage_json, find, scan, sha256_file
from exporters.master import extract_master, verified_coverage
from exporters.verify_text import verify_text
from exporters.working import make_working_copies
from requisition.models import Camera, Requisition
from requisition.timewindow import Window, now_us, utc_text

FORMAT = "scelle-export/1"
MANIFEST = "manifest.json"
RESERVE = 8 << 20
"""Bytes held back on the export's disk until the export's ledger entry is appended:
what is written after it (proof, checkpoint, VERIFY.txt, cover sheet) then always fits,
so that the ledger never records an export that a full disk left unwritten."""
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


@dataclass(frozen=True)
class Built:
    path: Path
    manifest_sha256: str
    complete: bool
    gaps: int
    altered: int
    ledger_seq: int


def _disk_full(out_dir: Path, requisition_id: str, needed: int | None) -> DiskFull:
    free = shutil.disk_usage(out_dir).free
    need = (
        f"it needs more than {needed:,} bytes (master copy and reserve; the working copy "
        "comes on top)"
        if needed
        else "the disk filled up while it was being built"
    )
    return DiskFull(
        f"not enough space in {out_dir} for the export of {requisition_id}: {need}, "
        f"{free:,} bytes are free: nothing was kept",
        hint="free some space or choose another --out, then extract again",
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


def build(
    site: Site,
    requisition: Requisition,
    pairs: Sequence[tuple[Camera, Window]],
    out_dir: Path,
    signer: Signer,
    actor: str,
    *,
    burn_in: bool = True,
    stream_copy: bool = False,
    progress: Callable[[float], None] | None = None,
) -> Built:
    """Extract, hash, sign and prove one requisition's export into `out_dir/<ID>`."""
    final = out_dir / requisition.id
    if final.exists():
        raise InvalidState(f"the export directory {final} already exists")
    out_dir.mkdir(parents=True, exist_ok=True)
    clean_stale(out_dir, requisition.id)
    tmp = Path(tempfile.mkdtemp(prefix=f".{requisition.id}.partial-", dir=out_dir))
    try:
        return _build_in(
            site, requisition, pairs, tmp, final, signer, actor, burn_in, stream_copy, progress
        )
    except (OSError, FfmpegError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        full = exc.errno in _DISK_FULL if isinstance(exc, OSError) else _ffmpeg_full(exc)
        if full:
            raise _disk_full(out_dir, requisition.id, None) from exc
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _ffmpeg_full(exc: FfmpegError) -> bool:
    """ffmpeg reports a full disk only in words (its strerror)."""
    return any(os.strerror(code) in exc.message for code in _DISK_FULL)


def _build_in(
    site: Site,
    requisition: Requisition,
    pairs: Sequence[tuple[Camera, Window]],
    tmp: Path,
    final: Path,
    signer: Signer,
    actor: str,
    burn_in: bool,
    stream_copy: bool,
    progress: Callable[[float], None] | None,
) -> Built:
    scan(site, {c.id: c for c, _ in pairs}.values(), actor)
    # Nothing is opened in the stores here: each segment is read once, to be copied,
    # and every check is made on the copy (verified_coverage).
    found: list[Coverage] = [find(site, cam, window, check=False) for cam, window in pairs]
    needed = sum(seg.size for c in found for seg in c.segments) + RESERVE
    if shutil.disk_usage(tmp).free < needed:
        raise _disk_full(tmp.parent, requisition.id, needed)
    _reserve(tmp / ".reserve", RESERVE)
    site.ledger.append(
        actor,
        Record(
            "footage.extract",
            {"requisition": requisition.id, "cameras": sorted({c.id for c, _ in pairs})},
            f"extraction for requisition {requisition.id}",
            requisition.pv_number,
            data={"windows": [coverage_json(c)["window"] | {"camera": c.camera.id} for c in found]},
        ),
    )
    items, altered_total, coverages = [], [], []

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
        altered_total += altered
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
    files = _files(tmp, "master", "master") + _files(tmp, "working", "working")
    sums = "".join(f"{f['sha256']}  {f['path']}\n" for f in files).encode()
    write_atomic(tmp / "SHA256SUMS", sums)
    with site.db.read() as cur:
        identity = read_identity(cur)
    gaps = sum(len(c.gaps) for c in coverages)
    complete = gaps == 0 and not altered_total
    manifest = canonical_bytes(
        {
            "format": FORMAT,
            "requisition": {
                k: v
                for k, v in requisition.model_dump().items()
                if k
                not in {
                    "export_path",
                    "manifest_sha256",
                    "handed_to",
                    "handed_at",
                    "medium",
                    "seal_number",
                }
            },
            "site": {"name": identity.key_name, "ledger_origin": identity.origin},
            "signer": {
                "ssh_fingerprint": ssh_fingerprint(signer.public_key),
                "der_sha256": der_sha256(signer.public_key),
                "verifier_key": verifier_key(identity.key_name, signer.public_key),
            },
            "exported_at": utc_text(now_us()),
            "exported_by": actor,
            "items": items,
            "files": files,
            "sha256sums": {"path": "SHA256SUMS", "sha256": hashlib.sha256(sums).hexdigest()},
            "complete": complete,
        }
    )
    manifest_sha = hashlib.sha256(manifest).hexdigest()
    write_atomic(tmp / MANIFEST, manifest)
    write_atomic(tmp / f"{MANIFEST}.sig", sign_raw(signer, manifest))
    write_atomic(tmp / f"{MANIFEST}.sshsig", sign_sshsig(signer, manifest).encode())
    comment = f"scelle export {requisition.id} manifest sha256 {manifest_sha}"
    write_atomic(tmp / f"{MANIFEST}.minisig", sign_minisign(signer, manifest, comment).encode())
    key = signer.public_key
    write_atomic(tmp / "keys" / "signer.pub.pem", public_pem(key).encode())
    write_atomic(tmp / "keys" / "allowed_signers", allowed_signers(key, identity.key_name).encode())
    write_atomic(tmp / "keys" / "minisign.pub", minisign_public_key(key).encode())

    entry = site.ledger.append(
        actor,
        Record(
            "requisition.export",
            {"requisition": requisition.id},
            f"export sealed for requisition {requisition.id}",
            requisition.pv_number,
            data={
                "manifest_sha256": manifest_sha,
                "files": len(files),
                "bytes": sum(f["size"] for f in files),
                "complete": complete,
                "gaps": gaps,
                "altered": altered_total,
            },
        ),
    )
    (tmp / ".reserve").unlink()  # what follows is small: it fits in what this frees
    checkpoint, note = checkpoints.sign(site.db, site.settings.checkpoint_file, signer)
    proof = site.ledger.inclusion(entry.seq, checkpoint.size)
    write_atomic(tmp / "ledger" / "entry.json", entry.body)
    write_atomic(tmp / "ledger" / "inclusion.json", json.dumps(proof.to_json(), indent=2).encode())
    write_atomic(tmp / "ledger" / "checkpoint.txt", note.encode())
    write_atomic(
        tmp / "VERIFY.txt",
        verify_text(requisition.id, identity.key_name, key, manifest_sha, entry.seq).encode(),
    )
    write_atomic(tmp / "VERIFY.txt.sig", sign_raw(signer, (tmp / "VERIFY.txt").read_bytes()))
    sheet = documents.cover(tmp, site.settings)
    for path in sheet.write(tmp / "documents", "cover"):
        write_atomic(path.with_name(path.name + ".sig"), sign_raw(signer, path.read_bytes()))
    site.ledger.append(
        actor,
        Record(
            "document.issue",
            {"requisition": requisition.id, "document": "cover"},
            "cover sheet (procès-verbal de remise) issued with the export",
            requisition.pv_number,
            data={"sha256": sheet.sha256, "manifest_sha256": manifest_sha},
        ),
    )
    for directory in [tmp, *(p for p in tmp.rglob("*") if p.is_dir())]:
        fsync_dir(directory)
    # Recorded before the rename, so that an attempt killed right after it can be finished.
    with site.db.write() as cur:
        cur.execute(
            "UPDATE requisition SET manifest_sha256 = ? WHERE id = ?",
            [manifest_sha, requisition.id],
        )
    os.rename(tmp, final)
    fsync_dir(final.parent)
    return Built(final, manifest_sha, complete, gaps, len(altered_total), entry.seq)
