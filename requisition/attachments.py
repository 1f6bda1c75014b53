"""Custody of another system's own export (`scelle requisition attach`).

A centre's video management system, or an NVR's client, often exports a clip itself (its
container, its player, its own signature files). scelle takes those files into custody
for a requisition: copied bit for bit into the site (`<home>/attachments/<ID>/`), hashed
on intake, recorded in the ledger with where they came from (`requisition.attach`: the
system and its version, who exported them there, the system's export number and time,
the camera and window they cover), delivered in the signed export, and named on the
papers. What decides what an export holds is the ledger's entries, not a table.

They are kept as long as the requisition's export: the purge of exports removes them
with it (requisition/export_purge.py), never while a hold of the requisition stands.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from custody import text
from custody.entry import Record
from custody.errors import InputError, InvalidStateError
from custody.i18n import _
from custody.site import Site
from custody.timewindow import local_text, parse_time, stored_utc, to_us, utc_text
from exporters.attached import AttachedFile, Attachment, intake
from requisition.purge_rows import entries_about
from requisition.requisitions import State, check_id, get, not_in_the_future
from requisition.words import label

ATTACHABLE = (State.RECEIVED, State.APPROVED)
_TOKEN = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Provenance:
    """Where the files come from, as the operator reads it off the other system."""

    system: str  # "Milestone XProtect", "Genetec Security Center", ...
    exported_by: str  # the operator who exported them there
    exported_at: str  # local time, as typed
    start: str  # the window they cover, local times as typed
    end: str
    version: str = ""
    export_id: str = ""
    camera: str = ""  # the camera as the other system names it

    def checked(self, zone: str) -> dict[str, Any]:
        """The facts as the ledger records them: texts checked, times in UTC."""
        for value, what in (
            (self.system, "--system"),
            (self.exported_by, "--exported-by"),
            (self.version, "--system-version"),
            (self.export_id, "--export-id"),
            (self.camera, "--camera"),
        ):
            text.line(value, what)
        if not self.system.strip() or not self.exported_by.strip():
            raise InputError(_("--system and --exported-by are required"))
        exported = to_us(parse_time(self.exported_at, zone))
        start, end = to_us(parse_time(self.start, zone)), to_us(parse_time(self.end, zone))
        if end <= start:
            raise InputError(_("--to must be after --from"))
        not_in_the_future(stored_utc(exported), zone, _("the other system's export time"))
        if exported < end:
            raise InputError(_("the export time is before the end of the window it covers"))
        return {
            "system": self.system.strip(),
            "system_version": self.version.strip() or None,
            "exported_by": self.exported_by.strip(),
            "export_id": self.export_id.strip() or None,
            "exported_at": utc_text(exported),
            "camera": self.camera.strip() or None,
            "window": {
                "from": local_text(start, zone),
                "to": local_text(end, zone),
                "from_utc": utc_text(start),
                "to_utc": utc_text(end),
            },
        }


def store(site: Site) -> Path:
    return site.settings.home / "attachments"


def attach(
    site: Site, requisition_id: str, paths: Sequence[Path], provenance: Provenance, actor: str
) -> tuple[Attachment, int]:
    """Take the files into custody for the requisition; the attachment and its entry's
    seq. Under the requisition's extraction lock: an attachment lands wholly before an
    extraction reads the list, or is refused after it (never beside a sealed export)."""
    check_id(requisition_id)
    facts = provenance.checked(site.settings.timezone)
    with site.db.exclusive(
        f"extract-{requisition_id}",
        _("requisition {requisition} is being extracted (here or on another workstation)").format(
            requisition=requisition_id
        ),
    ):
        requisition = get(site, requisition_id)
        if requisition.state not in ATTACHABLE:
            raise InvalidStateError(
                _(
                    "requisition {requisition} is {state}: files are attached before its extraction"
                ).format(requisition=requisition_id, state=label("state", requisition.state))
            )
        earlier = attachments(site, requisition_id)
        system = _TOKEN.sub("-", facts["system"].lower()).strip("-")[:32] or "system"
        folder = f"{len(earlier) + 1:02d}-{system}"
        dest = store(site) / requisition_id / folder
        if dest.exists():
            raise InvalidStateError(
                _("{path} exists but no ledger entry records it: left as it is").format(path=dest)
            )
        files = intake(paths, dest)
        try:
            with site.db.write() as cur:
                (entry,) = site.ledger.append_in(
                    cur,
                    actor,
                    [
                        Record(
                            "requisition.attach",
                            {"requisition": requisition_id},
                            _("footage exported by another system taken into custody"),
                            requisition.pv_number,
                            data=facts | {"folder": folder, "files": [f.record() for f in files]},
                        )
                    ],
                )
        except BaseException:
            remove_folder(dest)
            raise
    return attachments(site, requisition_id)[-1], entry.seq


def attachments(site: Site, requisition_id: str) -> list[Attachment]:
    """The requisition's attachments, as their ledger entries recorded them."""
    with site.db.read() as cur:
        entries = entries_about(cur, "requisition.attach", "requisition", requisition_id)
    out = []
    for entry in entries:
        data = dict(entry.get("data") or {})
        folder = str(data.pop("folder"))
        files = tuple(AttachedFile(**f) for f in data.pop("files"))
        facts = data | {
            "taken_by": entry.get("actor"),
            "taken_at": entry.get("time"),
            "ledger_seq": entry.get("seq"),
        }
        out.append(Attachment(store(site) / requisition_id / folder, folder, facts, files))
    return out


def remove(site: Site, requisition_id: str) -> str | None:
    """Remove the requisition's kept copies (the purge of its export); their folder, or
    None if there were none."""
    folder = store(site) / requisition_id
    if not folder.is_dir() or folder.is_symlink():
        return None
    remove_folder(folder)
    return str(folder)


def remove_folder(folder: Path) -> None:
    """Remove kept copies (read-only files in writable folders: rmtree removes them)."""
    shutil.rmtree(folder, ignore_errors=False)


def described(attachment: Attachment) -> dict[str, Any]:
    """What `requisition attach` prints."""
    return attachment.facts | {
        "folder": str(attachment.directory),
        "files": [f.record() for f in attachment.files],
    }


__all__ = ["ATTACHABLE", "Provenance", "attach", "attachments", "described", "remove", "store"]
