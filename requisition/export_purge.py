"""Exports kept at the CSV after their handover go one month after it (CSI L252-3),
unless a hold of their requisition stands. The handover, the sealed manifest and the
holds are read from the ledger; a directory is removed only if it holds that manifest.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from custody.entry import Record
from custody.errors import InputError
from custody.i18n import _
from custody.site import Site
from custody.timewindow import parse_time, to_us
from exporters.manifest import MANIFEST
from requisition.attachments import attachments
from requisition.attachments import remove as remove_attachments
from requisition.attachments import store as attachment_store
from requisition.cameras import MAX_RETENTION_DAYS
from requisition.holds import HoldBook
from requisition.purge_rows import entries_about

DAY_US = 86_400_000_000
EXPORT_KEEP_US = 30 * DAY_US  # CSI L252-3: at most one month after transmission


def purge_exports(
    site: Site, actor: str, now: int, holds: HoldBook, failures: list[str]
) -> list[str]:
    """Exports kept at the CSV after handover go one month after it (CSI L252-3), unless
    a hold of their requisition stands. The handover, the sealed manifest and the holds
    are read from the ledger; a directory is removed only if it holds that manifest."""
    limit = now - EXPORT_KEEP_US
    with site.db.read() as cur:
        holds.refresh(cur)
        rows = cur.execute(
            "SELECT id, export_path, pv_number FROM requisition "
            "WHERE handed_at IS NOT NULL AND export_path IS NOT NULL ORDER BY id"
        ).fetchall()
        due: list[tuple[str, Path, str, str]] = []
        for rid, path, pv in rows:
            handed = entries_about(cur, "requisition.handover", "requisition", rid)
            sealed = entries_about(cur, "requisition.export", "requisition", rid)
            if not handed or not sealed:
                continue
            at = handed[-1].get("data", {}).get("at")
            try:
                handed_at = to_us(parse_time(str(at), "UTC"))
            except InputError:
                failures.append(
                    _(
                        "export of {requisition}: its handover time {at!r} cannot be read: kept"
                    ).format(requisition=rid, at=at)
                )
                continue
            if handed_at > limit:
                continue
            if any(h.requisition_id == rid for h in holds.active()):
                continue
            due.append((rid, Path(path), pv, str(sealed[-1]["data"].get("manifest_sha256"))))
    gone = []
    for rid, path, pv, manifest in due:
        if path.exists():
            if not _is_sealed_export(path, rid, manifest):
                failures.append(
                    _(
                        "export of {requisition} at {path} is not the sealed export the ledger "
                        "records: left in place"
                    ).format(requisition=rid, path=path)
                )
                continue
            shutil.rmtree(path)  # never follows symbolic links (fd-based on Linux)
        # Another system's files taken in for it go with the export that delivered them.
        try:
            attached = remove_attachments(site, rid)
        except OSError as exc:  # the export went: recorded below; these are named
            attached = None
            failures.append(
                _("files attached to {requisition} could not be removed: {reason}").format(
                    requisition=rid, reason=exc
                )
            )
        with site.db.write() as cur:
            cur.execute("UPDATE requisition SET export_path = NULL WHERE id = ?", [rid])
            site.ledger.append_in(
                cur,
                actor,
                [
                    Record(
                        "export.destroy",
                        {"requisition": rid},
                        _("export kept one month after transmission (CSI L252-3)"),
                        pv,
                        data={"path": str(path), "manifest_sha256": manifest}
                        | ({"attachments": attached} if attached else {}),
                    )
                ],
            )
        gone.append(rid)
    return gone


def purge_unexported_attachments(
    site: Site, actor: str, now: int, holds: HoldBook, failures: list[str]
) -> list[str]:
    """Another system's files taken in for a requisition denied or cancelled (no export
    will deliver them) go once what they cover is older than any retention (one month,
    CSI L252-5), as the recorders' own footage would, unless a hold of it stands. The
    decision is read from the ledger; what goes is named in an `attachment.destroy`."""
    limit = now - MAX_RETENTION_DAYS * DAY_US
    root = attachment_store(site)
    if not root.is_dir():
        return []
    gone = []
    with site.db.read() as cur:
        holds.refresh(cur)
        held = {h.requisition_id for h in holds.active()}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        rid = folder.name
        with site.db.read() as cur:
            ended = [
                e
                for action in ("requisition.deny", "requisition.cancel")
                for e in entries_about(cur, action, "requisition", rid)
            ]
        if not ended or rid in held:
            continue
        taken = attachments(site, rid)
        ends = [to_us(parse_time(str(a.facts["window"]["to_utc"]), "UTC")) for a in taken]
        if not taken or max(ends) > limit:
            continue
        pv = str(ended[-1].get("procedure") or "") or None
        try:
            remove_attachments(site, rid)
        except OSError as exc:
            failures.append(
                _("files attached to {requisition} could not be removed: {reason}").format(
                    requisition=rid, reason=exc
                )
            )
            continue
        site.ledger.append(
            actor,
            Record(
                "attachment.destroy",
                {"requisition": rid},
                _(
                    "another system's export, taken in for a requisition ended without an "
                    "export, past any retention"
                ),
                pv,
                data={
                    "path": str(folder),
                    "attachments": [a.facts["ledger_seq"] for a in taken],
                    "files": [f.sha256 for a in taken for f in a.files],
                },
            ),
        )
        gone.append(rid)
    return gone


def _is_sealed_export(path: Path, rid: str, manifest_sha256: str) -> bool:
    manifest = path / MANIFEST
    if path.is_symlink() or path.name != rid or manifest.is_symlink() or not manifest.is_file():
        return False
    with manifest.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest() == manifest_sha256
