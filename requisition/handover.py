"""The handover of a sealed export to the requesting officer, and its procès-verbal.

The PV is made at the handover, from what is handed over (the export's signed files)
and how (when, by whom, to whom, on what, under which seals); it is signed, written, and
recorded with the handover in one transaction: a handover is never recorded without
its PV, nor a PV left standing for a handover that was not recorded. A requisition is
handed over once: a second handover is refused, never overwrites the first PV.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from custody import text
from custody.db import Cursor
from custody.entry import Record
from custody.errors import InputError, InvalidStateError
from custody.files import exclusive, fsync_dir
from custody.i18n import _
from custody.site import Site
from custody.timewindow import now_us, people_text
from exporters.documents import PaperSigner
from exporters.french import bare_seal
from exporters.handover_pv import Handed, handover_pv
from requisition.models import Requisition
from requisition.people import described
from requisition.requisitions import (
    State,
    get,
    last_entry_data,
    nonempty,
    not_in_the_future,
    typed_time,
)
from requisition.sealed_export import sealed_export
from requisition.words import label, stored

MEDIA = ("usb", "dvd", "download")
SEAL_MAX = 40  # a seal number is printed large on an A6 label
PV_NUMBER = 1  # one handover per requisition: its PV is n° 1


@dataclass(frozen=True)
class Handover:
    """What the operator states of a handover (`scelle requisition handover`)."""

    officer: str  # receiving officer's name
    unit: str
    medium: str  # usb, dvd, download, or as people write it (clé USB)
    seals: Sequence[str]  # seal numbers, without the words before them
    at: str | None = None  # local time; default now
    grade: str | None = None  # the receiving officer's grade (lieutenant, OPJ…)
    count: int | None = None  # how many media; default one per seal

    def __post_init__(self) -> None:
        """Typed by an operator: each field printable text on one line, of sane length."""
        for value, what in (
            (self.officer, _("officer")),
            (self.unit, _("unit")),
            (self.medium, _("medium")),
            *((seal, _("seal number")) for seal in self.seals),
        ):
            text.line(value, what)
        for optional, what in ((self.at, "at"), (self.grade, _("grade"))):
            if optional is not None:
                text.line(optional, what)


@dataclass(frozen=True)
class HandedOver:
    requisition: Requisition
    pv: Path  # the PV's PDF
    html: Path
    seq: int  # the handover's ledger entry


def seal_number(typed: str) -> str:
    """A seal number as typed, without the words before it; InputError if nothing else
    was typed (`Scellé n°` alone would print `Scellé n° Scellé n°`)."""
    bare = bare_seal(nonempty(typed, _("the requisition has no seal number")))
    if not bare:
        raise InputError(
            _("seal number {typed!r} has no number after its words").format(typed=typed.strip()),
            hint=_("give the number alone: --seal 2026-0042"),
        )
    if len(bare) > SEAL_MAX:
        raise InputError(
            _("seal number {typed!r} is longer than {limit} characters").format(
                typed=bare[:SEAL_MAX] + "…", limit=SEAL_MAX
            )
        )
    return bare


def _checked(given: Handover) -> Handover:
    seals = [seal_number(s) for s in given.seals]
    if not seals:
        raise InputError(_("the requisition has no seal number"), hint=_("give --seal"))
    if len(seals) > 99:
        raise InputError(_("at most 99 seals are handed over at once"))
    if len(set(seals)) != len(seals):
        raise InputError(_("the same seal number is given twice"))
    count = len(seals) if given.count is None else given.count
    if not 1 <= count <= 99:
        raise InputError(_("the number of media must be between 1 and 99"))
    return dataclasses.replace(
        given,
        officer=nonempty(given.officer, _("the requisition has no receiving officer")),
        unit=nonempty(given.unit, _("the requisition has no unit")),
        medium=stored("medium", given.medium, MEDIA),
        seals=seals,
        grade=(given.grade or "").strip() or None,
        count=count,
    )


def _refuse_if_handed(requisition: Requisition, *, force: bool = False) -> None:
    if requisition.handed_at or force:
        raise InvalidStateError(
            _("requisition {requisition} was already handed over").format(
                requisition=requisition.id
            ),
            hint=_(
                "its PV de remise is in the site's documents; 'scelle doc label' reprints labels"
            ),
        )


def handover(
    site: Site, requisition_id: str, given: Handover, actor: str, papers: PaperSigner
) -> HandedOver:
    """Record who received the sealed export, when, on what, under which seals, and
    issue the signed PV de remise that states it.

    One handover of a requisition at a time on a workstation (a lock beside its PV): a
    second one started meanwhile is refused, so that it can never write over the PV of the
    first, nor delete it when the database refuses it. Across workstations (PostgreSQL)
    each writes its own documents directory, and the database's transaction decides."""
    lock = site.settings.home / "documents" / f".{requisition_id}-handover.lock"
    busy = _("a handover of requisition {requisition} is in progress").format(
        requisition=requisition_id
    )
    if _pending(site, requisition_id):  # left by a handover killed midway
        with exclusive(lock, busy):
            settle(site, requisition_id)
    requisition = get(site, requisition_id)
    if requisition.state not in (State.COMPLETED, State.PARTIAL):
        raise InvalidStateError(
            _("requisition {requisition} is {state}: nothing to hand over").format(
                requisition=requisition_id, state=label("state", requisition.state)
            )
        )
    _refuse_if_handed(requisition)
    given = _checked(given)
    zone = site.settings.timezone
    at = typed_time(given.at, zone, now_us())
    assert at is not None
    not_in_the_future(at, zone, _("the handover"))
    if requisition.decided_at and at < requisition.decided_at:
        raise InputError(
            _("the handover ({at}) would come before the approval ({approved})").format(
                at=people_text(at, zone), approved=people_text(requisition.decided_at, zone)
            ),
            hint=_("check the date and time given to --at"),
        )
    export = sealed_export(site, requisition_id)
    # Everything refused above is refused before anything is written, the lock included.
    with exclusive(lock, busy):
        _refuse_if_handed(get(site, requisition_id))  # one that ended while we checked
        return _handover(site, requisition, export, given, at, actor, papers)


def _handover(
    site: Site,
    requisition: Requisition,
    export: Path,
    given: Handover,
    at: str,
    actor: str,
    papers: PaperSigner,
) -> HandedOver:
    requisition_id = requisition.id
    handed = Handed(
        number=PV_NUMBER,
        at=at,
        by=actor,
        agents=described(site, [actor]),
        officer=given.officer,
        grade=given.grade,
        unit=given.unit,
        medium=given.medium,
        count=given.count or len(given.seals),
        seals=list(given.seals),
    )
    document = handover_pv(export, site.settings, handed, papers.certificate, papers.pdf)
    directory = site.settings.home / "documents"
    stem = f"{requisition_id}-pv-remise-{PV_NUMBER}"
    existing = [p for p in _files(directory, stem) if p.exists()]
    if existing:
        raise InvalidStateError(
            _("a PV de remise of requisition {requisition} already exists: {path}").format(
                requisition=requisition_id, path=existing[0]
            ),
            hint=_("a PV is never replaced; move it away only if it was issued in error"),
        )
    pending = f".{stem}.pending"
    html, pdf = directory / f"{stem}.html", directory / f"{stem}.pdf"
    try:
        with site.db.write() as cur:
            (handed_at,) = cur.execute(
                "SELECT handed_at FROM requisition WHERE id = ?", [requisition_id]
            ).fetchone()
            if handed_at or _handed_in_ledger(cur, requisition_id):
                _refuse_if_handed(requisition, force=True)
            cur.execute(
                "UPDATE requisition SET handed_to = ?, handed_at = ?, medium = ?, "
                "seal_number = ? WHERE id = ?",
                [
                    ", ".join(x for x in (given.officer, given.grade, given.unit) if x),
                    at,
                    given.medium,
                    ", ".join(given.seals),
                    requisition_id,
                ],
            )
            entries = site.ledger.append_in(
                cur,
                actor,
                [
                    Record(
                        "requisition.handover",
                        {"requisition": requisition_id},
                        _("sealed export handed over to {officer} ({unit})").format(
                            officer=given.officer, unit=given.unit
                        ),
                        requisition.pv_number,
                        data={
                            "officer": given.officer,
                            "grade": given.grade,
                            "unit": given.unit,
                            "at": at,
                            "medium": given.medium,
                            "count": handed.count,
                            "seals": list(given.seals),
                            "seal_number": ", ".join(given.seals),
                            "manifest_sha256": requisition.manifest_sha256,
                            "pv": {"number": PV_NUMBER, "sha256": document.sha256},
                        },
                    ),
                    Record(
                        "document.issue",
                        {"requisition": requisition_id, "document": "handover"},
                        _("PV de remise n° {number} issued at the handover").format(
                            number=PV_NUMBER
                        ),
                        requisition.pv_number,
                        data={"sha256": document.sha256, "files": [str(html), str(pdf)]},
                    ),
                ],
            )
            # Written under pending names inside the transaction: a failure (disk full)
            # undoes the record; a crash before the commit leaves only pending files,
            # which the next handover removes, and one after it, pending files the next
            # handover renames (settle).
            papers.write(document, directory, pending)
    except BaseException:
        for path in _files(directory, pending):
            path.unlink(missing_ok=True)
        raise
    _rename(directory, pending, stem)
    return HandedOver(get(site, requisition_id), pdf, html, entries[0].seq)


def _files(directory: Path, stem: str) -> list[Path]:
    """A paper's four files: HTML and PDF, each with its Ed25519 signature."""
    return [directory / f"{stem}.{suffix}" for suffix in ("html", "html.sig", "pdf", "pdf.sig")]


def _rename(directory: Path, pending: str, stem: str) -> None:
    """The committed PV takes its name (signatures first: a PV never stands without)."""
    for source, target in sorted(
        zip(_files(directory, pending), _files(directory, stem), strict=True),
        key=lambda pair: not pair[1].name.endswith(".sig"),
    ):
        if source.exists():
            os.replace(source, target)
    fsync_dir(directory)


def _handed_in_ledger(cur: Cursor, requisition_id: str) -> bool:
    """The ledger, not the table, says whether it was handed over."""
    row = cur.execute(
        "SELECT 1 FROM ledger_audit WHERE requisition = ? AND action = ?",
        [requisition_id, "requisition.handover"],
    ).fetchone()
    return row is not None


def _pending(site: Site, requisition_id: str) -> list[Path]:
    pending = f".{requisition_id}-pv-remise-{PV_NUMBER}.pending"
    return [p for p in _files(site.settings.home / "documents", pending) if p.exists()]


def settle(site: Site, requisition_id: str) -> None:
    """Finish what a handover killed between its commit and its renames left: pending PV
    files whose PDF is the one recorded take their name; any other pending files (a
    handover killed before its commit) were never valid and are removed. The caller
    holds the requisition's handover lock."""
    directory = site.settings.home / "documents"
    stem = f"{requisition_id}-pv-remise-{PV_NUMBER}"
    pending = f".{stem}.pending"
    pdf = directory / f"{pending}.pdf"
    if not _pending(site, requisition_id):
        return
    recorded = (handed_record(site, requisition_id) or {}).get("pv") or {}
    sha = recorded.get("sha256", {}).get("pdf") if isinstance(recorded, dict) else None
    if pdf.exists() and sha == hashlib.sha256(pdf.read_bytes()).hexdigest():
        _rename(directory, pending, stem)
    else:
        for path in _files(directory, pending):
            path.unlink(missing_ok=True)


def handed_record(site: Site, requisition_id: str) -> dict[str, Any] | None:
    """The data of a requisition's handover entry, as the ledger holds it, or None."""
    return last_entry_data(site, requisition_id, "requisition.handover")
