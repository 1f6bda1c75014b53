"""From an approved requisition to a sealed export, and from there to removable media."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from custody.checkpoints import read_identity
from custody.checks import Report
from custody.errors import InputError, IntegrityError, InvalidState
from custody.files import exclusive, fsync_dir
from custody.keys import Signer, ssh_fingerprint
from custody.ledger import Record
from custody.site import Site
from exporters.package import Built, build
from exporters.verify_export import verify_export
from requisition.requisitions import State, check_id, get, set_state, windows


def extract(
    site: Site,
    requisition_id: str,
    out_dir: Path,
    signer: Signer,
    actor: str,
    *,
    burn_in: bool = True,
    stream_copy: bool = False,
    progress: Callable[[float], None] | None = None,
) -> Built:
    """Build the export of an approved requisition (again, if an attempt was interrupted).

    One extraction per requisition at a time (an flock that dies with its process). An
    attempt killed after its package was renamed into place, but before the state was
    recorded, is finished on the next run: the package is verified against the site key
    and the manifest hash recorded before the rename, then the state is set.
    """
    requisition = get(site, check_id(requisition_id))
    if requisition.state not in (State.APPROVED, State.PROCESSING):
        raise InvalidState(
            f"requisition {requisition_id} is {requisition.state}: only an approved "
            "requisition is extracted"
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is not a directory")
    lock = site.settings.home / "locks" / f"extract-{requisition_id}.lock"
    with exclusive(lock, f"requisition {requisition_id} is being extracted by another process"):
        final = out_dir / requisition_id
        if final.exists():
            recovered = _recover(site, requisition_id, final)
            if recovered is None:
                raise InvalidState(f"the export directory {final} already exists")
            return recovered
        set_state(site, requisition_id, State.PROCESSING, export_path=str(final.absolute()))
        return _extract(
            site, requisition_id, out_dir, signer, actor, burn_in, stream_copy, progress
        )


def _recover(site: Site, requisition_id: str, final: Path) -> Built | None:
    """Finish recording an export whose package is complete but whose state is not."""
    requisition = get(site, requisition_id)
    if requisition.state != State.PROCESSING or not requisition.manifest_sha256:
        return None
    if requisition.export_path != str(final.absolute()):
        return None
    with site.db.read() as cur:
        key = read_identity(cur).public_key
    verify_export(final, ssh_fingerprint(key))
    manifest_bytes = (final / "manifest.json").read_bytes()
    if hashlib.sha256(manifest_bytes).hexdigest() != requisition.manifest_sha256:
        return None
    manifest = json.loads(manifest_bytes)
    entry = json.loads((final / "ledger" / "entry.json").read_bytes())
    built = Built(
        final,
        requisition.manifest_sha256,
        bool(manifest["complete"]),
        sum(len(i["coverage"]["gaps"]) for i in manifest["items"]),
        sum(len(i["altered_since_ingest"]) for i in manifest["items"]),
        int(entry["seq"]),
    )
    set_state(site, requisition_id, State.COMPLETED if built.complete else State.PARTIAL)
    return built


def _extract(
    site: Site,
    requisition_id: str,
    out_dir: Path,
    signer: Signer,
    actor: str,
    burn_in: bool,
    stream_copy: bool,
    progress: Callable[[float], None] | None,
) -> Built:
    requisition = get(site, requisition_id)
    built = build(
        site,
        requisition,
        windows(site, requisition_id),
        out_dir,
        signer,
        actor,
        burn_in=burn_in,
        stream_copy=stream_copy,
        progress=progress,
    )
    set_state(
        site,
        requisition_id,
        State.COMPLETED if built.complete else State.PARTIAL,
        export_path=str(built.path.absolute()),
        manifest_sha256=built.manifest_sha256,
    )
    return built


def _drop_cached(root: Path) -> None:
    """Ask the kernel to forget the copy's pages, so that reading back reads the medium."""
    for path in root.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def copy_export(site: Site, requisition_id: str, medium: Path, actor: str) -> tuple[Path, Report]:
    """Copy the export to `medium`, read it back, verify it; only then say it is there."""
    requisition = get(site, check_id(requisition_id))
    if not requisition.export_path or not Path(requisition.export_path).is_dir():
        raise InvalidState(f"requisition {requisition_id} has no export to copy")
    if not medium.is_dir():
        raise InvalidState(f"{medium} is not a mounted directory")
    final = medium / requisition_id
    if final.exists():
        raise InvalidState(f"{final} already exists on the medium")
    tmp = Path(tempfile.mkdtemp(prefix=f".{requisition_id}.partial-", dir=medium))
    try:
        shutil.copytree(requisition.export_path, tmp, dirs_exist_ok=True)
        _drop_cached(tmp)
        for directory in [tmp, *(p for p in tmp.rglob("*") if p.is_dir())]:
            fsync_dir(directory)
        os.rename(tmp, final)
        fsync_dir(medium)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    with site.db.read() as cur:
        site_key = read_identity(cur).public_key
    try:
        report = verify_export(final, ssh_fingerprint(site_key))
        copied = hashlib.sha256((final / "manifest.json").read_bytes()).hexdigest()
        if copied != requisition.manifest_sha256:
            raise IntegrityError(
                f"the export at {requisition.export_path} is not the one sealed for "
                f"{requisition_id} (manifest {copied[:16]}…, recorded "
                f"{(requisition.manifest_sha256 or '')[:16]}…)"
            )
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)  # never leave a bad copy on the medium
        raise
    site.ledger.append(
        actor,
        Record(
            "export.copy",
            {"requisition": requisition_id},
            f"export copied to removable medium {medium} and read back",
            requisition.pv_number,
            data={"destination": str(final), "manifest_sha256": requisition.manifest_sha256},
        ),
    )
    return final, report
