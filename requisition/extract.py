"""From an approved requisition to a sealed export, and from there to removable media."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from custody.checkpoints import read_identity
from custody.checks import Report
from custody.entry import Record, decode_entry
from custody.errors import (
    DiskFullError,
    FootageUnavailableError,
    InputError,
    IntegrityError,
    InvalidStateError,
)
from custody.files import disk_full, exclusive, fsync_dir
from custody.i18n import _
from custody.keys import Signer, ssh_fingerprint
from custody.site import Site
from custody.timewindow import Window, parse_time, to_us, utc_text
from exporters.documents import PaperSigner
from exporters.index import find, scan
from exporters.manifest import MANIFEST
from exporters.master import copy_file
from exporters.models import Camera
from exporters.package import Built, Order, build
from exporters.verify_export import verify_export
from requisition.agents import same_agent
from requisition.attachments import attachments
from requisition.models import Requisition
from requisition.people import described
from requisition.requisitions import State, check_id, get, set_state, windows
from requisition.words import label


def extract(
    site: Site,
    requisition_id: str,
    out_dir: Path,
    signer: Signer,
    actor: str,
    *,
    papers: PaperSigner | None = None,
    burn_in: bool = True,
    stream_copy: bool = False,
    progress: Callable[[float], None] | None = None,
) -> Built:
    """Build the export of an approved requisition (again, if an attempt was interrupted).

    The approval is the ledger's: a `requisition.approve` entry by someone other than the
    registrant, with no denial or cancellation (a state edited in the table is not one).
    One extraction per requisition at a time on every workstation (a lock in the
    database); a second extraction is refused, naming the export that exists. An attempt
    killed after its package was renamed into place, but before the state was recorded,
    is finished on the next run: the package is verified against the site key and the
    manifest hash recorded before the rename, then the state is set. A requisition none
    of whose windows holds any footage is answered "video unavailable", recorded, and no
    export is built.
    """
    _extractable(site, check_id(requisition_id))
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(_("--out {path} is not a directory").format(path=out_dir))
    with site.db.exclusive(
        f"extract-{requisition_id}",
        _("requisition {requisition} is being extracted (here or on another workstation)").format(
            requisition=requisition_id
        ),
    ):
        _extractable(site, requisition_id)  # again, now that it is ours
        final = out_dir / requisition_id
        if final.exists():
            recovered = _recover(site, requisition_id, final)
            if recovered is None:
                raise InvalidStateError(
                    _("the export directory {path} already exists").format(path=final)
                )
            return recovered
        _require_some_footage(site, requisition_id, actor)
        set_state(site, requisition_id, State.PROCESSING, export_path=str(final.absolute()))
        return _extract(
            site,
            requisition_id,
            out_dir,
            papers or PaperSigner(signer),
            actor,
            burn_in,
            stream_copy,
            progress,
        )


def _extractable(site: Site, requisition_id: str) -> Requisition:
    requisition = get(site, requisition_id)
    if requisition.state in (State.COMPLETED, State.PARTIAL):
        message = (
            _(
                "requisition {requisition} was already extracted ({state}): its export is "
                "{path} (manifest SHA-256 {sha256})"
            )
            if requisition.export_path
            else _(
                "requisition {requisition} was already extracted ({state}): its export is "
                "no longer kept (manifest SHA-256 {sha256})"
            )
        )
        raise InvalidStateError(
            message.format(
                requisition=requisition_id,
                state=label("state", requisition.state),
                path=requisition.export_path,
                sha256=requisition.manifest_sha256,
            ),
            hint=_("copy that export (scelle export copy); a new extraction is not another seal"),
        )
    if requisition.state not in (State.APPROVED, State.PROCESSING):
        raise InvalidStateError(
            _(
                "requisition {requisition} is {state}: only an approved requisition is extracted"
            ).format(requisition=requisition_id, state=label("state", requisition.state))
        )
    approved_in_ledger(site, requisition_id)
    return requisition


def approved_in_ledger(site: Site, requisition_id: str) -> list[tuple[Camera, Window]]:
    """The windows the requisition was registered with, as its ledger entry says, once
    the ledger holds its approval by someone other than its registrant and no denial or
    cancellation; InvalidStateError otherwise. IntegrityError if the windows stored with it are
    no longer those (a window added around scelle is never extracted)."""
    decided: dict[str, list[str]] = {}
    registration: dict[str, Any] | None = None
    with site.db.read() as cur:
        cur.execute(
            "SELECT e.body FROM ledger_audit a JOIN ledger_entry e ON e.seq = a.seq "
            "WHERE a.requisition = ? AND a.action IN (?, ?, ?, ?) ORDER BY a.seq",
            [
                requisition_id,
                "requisition.register",
                "requisition.approve",
                "requisition.deny",
                "requisition.cancel",
            ],
        )
        for (body,) in cur.fetchall():
            entry = decode_entry(bytes(body))
            if entry.get("subject") != {"requisition": requisition_id}:
                continue
            if entry["action"] == "requisition.register":
                registration = registration or entry
            else:
                decided.setdefault(entry["action"], []).append(str(entry["actor"]))
    registrant = None if registration is None else str(registration["actor"])
    approvers = [
        a
        for a in decided.get("requisition.approve", [])
        if registrant is not None and not same_agent(a, registrant)
    ]
    if not approvers or "requisition.deny" in decided or "requisition.cancel" in decided:
        raise InvalidStateError(
            _(
                "requisition {requisition} has no approval in the ledger by a supervisor "
                "other than who registered it"
            ).format(requisition=requisition_id),
            hint=_("a supervisor approves it: scelle requisition approve"),
        )
    assert registration is not None
    recorded = [
        (
            w["camera"],
            to_us(parse_time(w["from_utc"], "UTC")),
            to_us(parse_time(w["to_utc"], "UTC")),
        )
        for w in registration["data"]["windows"]
    ]
    registered = windows(site, requisition_id)
    if [(c.id, w.start, w.end) for c, w in registered] != recorded:
        raise IntegrityError(
            _(
                "requisition {requisition}: the windows in the register are not those its "
                "registration recorded in the ledger: edited around scelle, nothing extracted"
            ).format(requisition=requisition_id),
            hint=_("run 'scelle ledger verify'; the database owner restores the register"),
        )
    return registered


def _require_some_footage(site: Site, requisition_id: str, actor: str) -> None:
    """Answer "video unavailable" (recorded) when no window holds any footage at all,
    and no other system's export was attached."""
    if attachments(site, requisition_id):
        return
    pairs = approved_in_ledger(site, requisition_id)
    scan(site, {c.id: c for c, _window in pairs}.values(), actor)
    if any(find(site, camera, window, check=False).segments for camera, window in pairs):
        return
    requisition = get(site, requisition_id)
    with site.db.write() as cur:
        cur.execute(
            "UPDATE requisition SET state = ? WHERE id = ?",
            [State.UNAVAILABLE.value, requisition_id],
        )
        site.ledger.append_in(
            cur,
            actor,
            [
                Record(
                    "requisition.unavailable",
                    {"requisition": requisition_id},
                    _("video unavailable: no footage recorded for any requested window"),
                    requisition.pv_number,
                    data={
                        "windows": [
                            {
                                "camera": camera.id,
                                "from_utc": utc_text(window.start),
                                "to_utc": utc_text(window.end),
                            }
                            for camera, window in pairs
                        ]
                    },
                )
            ],
        )
    raise FootageUnavailableError(
        _(
            "requisition {requisition}: video unavailable: no footage recorded for any "
            "requested window (recorded; no export built)"
        ).format(requisition=requisition_id)
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
    manifest_bytes = (final / MANIFEST).read_bytes()
    if hashlib.sha256(manifest_bytes).hexdigest() != requisition.manifest_sha256:
        return None
    manifest = json.loads(manifest_bytes)
    entry = json.loads((final / "ledger" / "entry.json").read_bytes())
    built = Built(
        final,
        requisition.manifest_sha256,
        bool(manifest["complete"]),
        sum(len(i["coverage"]["gaps"]) for i in manifest["items"]),
        sum(len(i["altered_since_ingest"]) for i in manifest["items"])
        + sum(f["state"] != "ok" for a in manifest.get("attachments", []) for f in a["files"]),
        int(entry["seq"]),
    )
    set_state(site, requisition_id, State.COMPLETED if built.complete else State.PARTIAL)
    return built


def _extract(
    site: Site,
    requisition_id: str,
    out_dir: Path,
    papers: PaperSigner,
    actor: str,
    burn_in: bool,
    stream_copy: bool,
    progress: Callable[[float], None] | None,
) -> Built:
    requisition = get(site, requisition_id)

    def sealed(manifest_sha256: str) -> None:
        # Recorded before the rename, so that an attempt killed right after it is finished.
        with site.db.write() as cur:
            cur.execute(
                "UPDATE requisition SET manifest_sha256 = ? WHERE id = ?",
                [manifest_sha256, requisition_id],
            )

    attached = attachments(site, requisition_id)
    takers = [str(a.facts["taken_by"]) for a in attached]
    built = build(
        site,
        Order(
            requisition.row(),
            described(site, [requisition.registered_by, requisition.decided_by, actor, *takers]),
        ),
        approved_in_ledger(site, requisition_id),
        out_dir,
        papers.signer,
        actor,
        papers=papers,
        burn_in=burn_in,
        stream_copy=stream_copy,
        progress=progress,
        on_sealed=sealed,
        attachments=attached,
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


@dataclass(frozen=True)
class Copied:
    path: Path
    report: Report  # of the copy, read back from the medium
    stale: tuple[Path, ...]  # interrupted copies of this export found and removed


def _remove_stale(medium: Path, requisition_id: str) -> tuple[Path, ...]:
    """Remove what an interrupted copy of this export left on the medium (the caller
    holds this requisition's copy lock: no live copy owns them)."""
    stale = tuple(sorted(medium.glob(f".{requisition_id}.partial-*")))
    for path in stale:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    if stale:
        fsync_dir(medium)
    return stale


def _needed(source: Path, medium: Path) -> int:
    """Bytes the copy takes on the medium: each file rounded up to the medium's blocks
    (a FAT32 key's 32 KB clusters), one block per directory. Raises IntegrityError on
    anything in the export but plain files and directories."""
    block = os.statvfs(medium).f_frsize or 4096
    total = block
    for path in source.rglob("*"):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise IntegrityError(
                _("the export at {path} holds {name}, not a plain file").format(
                    path=source, name=path.name
                )
            )
        size = path.stat().st_size if path.is_file() else 1
        total += -(-size // block) * block
    return total


def _copy_tree(source: Path, dest: Path) -> None:
    """Copy the export's files and directories into the new directory `dest`; the first
    error (a full medium: ENOSPC) is raised as is, not gathered like shutil.copytree's."""
    for directory, subdirs, files in os.walk(source):
        target = dest / Path(directory).relative_to(source)
        for name in sorted(subdirs):
            (target / name).mkdir()
        for name in sorted(files):
            copy_file(Path(directory) / name, target / name)


def copy_export(site: Site, requisition_id: str, medium: Path, actor: str) -> Copied:
    """Copy the export to `medium`, read it back, verify it; only then say it is there.

    One copy of a requisition at a time (so that what an interrupted copy left is known
    to be stale, and removed); room on the medium is checked first and a medium that
    fills up anyway is one DiskFullError error; either way nothing is left on it."""
    requisition = get(site, check_id(requisition_id))
    if not requisition.export_path or not Path(requisition.export_path).is_dir():
        raise InvalidStateError(
            _("requisition {requisition} has no export to copy").format(requisition=requisition_id)
        )
    if not medium.is_dir():
        raise InvalidStateError(_("{path} is not a mounted directory").format(path=medium))
    source = Path(requisition.export_path)
    lock = site.settings.home / "locks" / f"copy-{requisition_id}.lock"
    busy = _("the export of {requisition} is being copied by another process").format(
        requisition=requisition_id
    )
    with exclusive(lock, busy):
        stale = _remove_stale(medium, requisition_id)
        final = medium / requisition_id
        if final.exists():
            raise InvalidStateError(_("{path} already exists on the medium").format(path=final))
        needed, free = _needed(source, medium), shutil.disk_usage(medium).free
        if needed > free:
            raise _medium_full(medium, requisition_id, needed, free)
        tmp = Path(tempfile.mkdtemp(prefix=f".{requisition_id}.partial-", dir=medium))
        try:
            _copy_tree(source, tmp)
            _drop_cached(tmp)
            for directory in [tmp, *(p for p in tmp.rglob("*") if p.is_dir())]:
                fsync_dir(directory)
            os.rename(tmp, final)
            fsync_dir(medium)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if disk_full(exc):
                free = shutil.disk_usage(medium).free
                raise _medium_full(medium, requisition_id, needed, free) from exc
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    with site.db.read() as cur:
        site_key = read_identity(cur).public_key
    try:
        report = verify_export(final, ssh_fingerprint(site_key))
        copied = hashlib.sha256((final / MANIFEST).read_bytes()).hexdigest()
        if copied != requisition.manifest_sha256:
            raise IntegrityError(
                _(
                    "the export at {path} is not the one sealed for {requisition} (manifest "
                    "{copied}…, recorded {recorded}…)"
                ).format(
                    path=requisition.export_path,
                    requisition=requisition_id,
                    copied=copied[:16],
                    recorded=(requisition.manifest_sha256 or "")[:16],
                )
            )
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)  # never leave a bad copy on the medium
        raise
    site.ledger.append(
        actor,
        Record(
            "export.copy",
            {"requisition": requisition_id},
            _("export copied to removable medium {medium} and read back").format(medium=medium),
            requisition.pv_number,
            data={
                "destination": str(final),
                "manifest_sha256": requisition.manifest_sha256,
                "stale_removed": [str(p) for p in stale],
            },
        ),
    )
    return Copied(final, report, stale)


def _medium_full(medium: Path, requisition_id: str, needed: int, free: int) -> DiskFullError:
    return DiskFullError(
        _(
            "not enough space on {medium} for the export of {requisition}: it needs "
            "{needed:,} bytes, {free:,} bytes are free: nothing was left on the medium"
        ).format(medium=medium, requisition=requisition_id, needed=needed, free=free),
        hint=_("use a larger medium, or free space on it"),
    )
