"""Documents issued on demand (`scelle doc`): a requisition's cover sheet and seal labels,
the register of recordings for a period. Each is written as HTML and PDF/A, signed inside
the PDF and beside each file, and its issue recorded (`document.issue`, with both
hashes), so that a program issuing one leaves the same trail as the CLI. The PV de
remise is issued by the handover itself (requisition/handover.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from custody.entry import Record
from custody.errors import InputError, InvalidStateError
from custody.i18n import N_, _
from custody.site import Site
from custody.text import shown
from custody.timewindow import day_start, parse_day
from exporters.documents import Document, PaperSigner
from exporters.export_facts import cover
from exporters.seal_label import label
from requisition.handover import MEDIA, handed_record, seal_number
from requisition.recordings_register import recordings_register
from requisition.sealed_export import sealed_export
from requisition.words import stored

ISSUED = {  # the reason of a `document.issue` entry, by kind of document
    "cover": N_("cover issued"),
    "label": N_("label issued"),
    "register": N_("register issued"),
}


@dataclass(frozen=True)
class Issued:
    """A document written and recorded."""

    html: Path
    pdf: Path
    sha256: dict[str, str]  # "html", "pdf"
    seq: int  # its `document.issue` entry


def _issue(
    site: Site,
    actor: str,
    document: Document,
    papers: PaperSigner,
    out: Path | None,
    stem: str,
    subject: Mapping[str, str],
) -> Issued:
    """Write the document and its signatures (into <site>/documents unless `out`), then
    record its issue."""
    html, pdf = papers.write(document, out or site.settings.home / "documents", stem)
    entry = site.ledger.append(
        actor,
        Record(
            "document.issue",
            subject,
            _(ISSUED[document.kind])
            if document.kind in ISSUED
            else _("{kind} issued").format(kind=document.kind),
            data={"sha256": document.sha256, "files": [str(html), str(pdf)]},
        ),
    )
    return Issued(html, pdf, document.sha256, entry.seq)


def issue_cover(
    site: Site, requisition_id: str, actor: str, papers: PaperSigner, out: Path | None = None
) -> Issued:
    """The cover sheet (bordereau) of the export, drawn from its signed files: what the
    sealed export holds, not its handover (the PV de remise states that)."""
    document = cover(
        sealed_export(site, requisition_id), site.settings, papers.certificate, papers.pdf
    )
    subject = {"requisition": requisition_id, "document": "cover"}
    return _issue(site, actor, document, papers, out, f"{requisition_id}-cover", subject)


def issue_label(
    site: Site,
    requisition_id: str,
    actor: str,
    papers: PaperSigner,
    seal: str | None = None,
    medium: str | None = None,
    out: Path | None = None,
) -> Issued:
    """The seal labels, one per seal: by default the handover's seals, medium and date
    (a medium as people write it: clé USB is usb); before the handover, `seal` and
    `medium` fill them in, or they are left blank to write by hand."""
    handed = handed_record(site, requisition_id) or {}
    if seal:
        seal = seal_number(seal)
    if handed and (medium or (seal and seal not in (handed.get("seals") or []))):
        raise InvalidStateError(
            _(
                "requisition {requisition} was handed over: its labels state the seals and "
                "media of its handover ({seals})"
            ).format(
                requisition=requisition_id,
                seals=", ".join(handed.get("seals") or [str(handed.get("seal_number"))]),
            ),
            hint=_("leave out --medium, and give --seal only to print one of those"),
        )
    if medium:
        medium = stored("medium", medium, MEDIA)
    seals = [seal] if seal else [str(s) for s in handed.get("seals") or []]
    if not seals and handed.get("seal_number"):  # a handover recorded before the list
        seals = [str(handed["seal_number"])]
    count = int(handed.get("count") or len(seals) or 1)
    document = label(
        sealed_export(site, requisition_id),
        site.settings,
        seals,
        medium or handed.get("medium"),
        count,
        handed.get("at"),
        papers.pdf,
    )
    subject = {"requisition": requisition_id, "document": "label"}
    return _issue(site, actor, document, papers, out, f"{requisition_id}-label", subject)


def _days(site: Site, start: str, end: str) -> tuple[date, date, int, int]:
    """The two days as written (29/11/2026 or 2026-11-29), and [the first's midnight, the
    midnight after the last) in the site's time zone: a day of 23 or 25 hours included."""
    zone = site.settings.timezone
    days = []
    for option, written in (("--from", start), ("--to", end)):
        day = parse_day(written)
        if day is None:
            raise InputError(
                _("{option} {day} is not a day: write it as 29/11/2026 or 2026-11-29").format(
                    option=option, day=shown(written)
                )
            )
        days.append(day)
    try:
        first, last = day_start(days[0], zone), day_start(days[1] + timedelta(days=1), zone)
    except (OverflowError, ValueError) as exc:  # 31/12/9999 has no next day
        raise InputError(_("--to {day} is too far ahead").format(day=shown(end))) from exc
    if days[1] < days[0]:
        raise InputError(_("--to is before --from"))
    return days[0], days[1], first, last


def issue_register(
    site: Site, start: str, end: str, actor: str, papers: PaperSigner, out: Path | None = None
) -> Issued:
    """The register of recordings from day `start` to day `end` (both included, written
    29/11/2026 or 2026-11-29); the file and the ledger name the days in ISO form."""
    since, until, first, last = _days(site, start, end)
    document = recordings_register(site, since, until, first, last, papers.pdf)
    subject = {"document": "register", "from": since.isoformat(), "to": until.isoformat()}
    name = f"register-{since.isoformat()}-{until.isoformat()}"
    return _issue(site, actor, document, papers, out, name, subject)
