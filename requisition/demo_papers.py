"""The demo's second half: the papers a centre hands over and keeps.

The sealed export is handed over (its signed PV de remise), its seal label printed, the
register of recordings issued for the footage's day, and a retention purge destroys
footage older than its camera's retention (its signed destruction certificate): every
legal paper scelle makes, from one run, as a newcomer would see them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from custody.i18n import _
from custody.site import Site
from custody.timewindow import parse_window
from exporters.documents import PaperSigner
from exporters.generate import generate_footage
from exporters.index import scan
from requisition import agents
from requisition.cameras import get_camera
from requisition.handover import Handover, handover
from requisition.issue import issue_label, issue_register
from requisition.purge import purge
from requisition.roles import Permission

SEAL_AS_TYPED = "Scellé n° 2026-0042"  # as operators type it: the label prints its own words
OLD_FOOTAGE_DAYS = 20  # older than C-044's 15-day retention: the purge destroys it


@dataclass(frozen=True)
class Papers:
    pv: Path
    label: Path
    register: Path
    certificate: Path  # the purge's certificate directory (certificate.json, documents/)


def issue_papers(
    site: Site,
    papers: PaperSigner,
    requisition_id: str,
    day: str,
    operator: str,
    supervisor: str,
    say: Callable[[str], None],
) -> Papers:
    """Hand over, label, register, purge: each paper signed and recorded."""
    zone = site.settings.timezone
    for login, permission, what in (
        (operator, Permission.HANDOVER, "requisition handover"),
        (operator, Permission.DOCUMENT, "doc label"),
    ):
        agents.authorise(site, login, permission, what)
    handed = handover(
        site,
        requisition_id,
        Handover(
            officer="Claire Martin",
            grade="lieutenant de police, officier de police judiciaire",
            unit="Commissariat de Villeurbanne, brigade de sûreté urbaine",
            medium="clé USB",
            seals=[SEAL_AS_TYPED],
        ),
        operator,
        papers,
    )
    say(_("handed over; signed PV de remise: {pdf}").format(pdf=handed.pv))
    label = issue_label(site, requisition_id, operator, papers)
    say(_("seal label: {pdf}").format(pdf=label.pdf))
    register = issue_register(site, day, day, operator, papers)
    say(_("register of recordings for {day}: {pdf}").format(day=day, pdf=register.pdf))
    old = (date.fromisoformat(day) - timedelta(days=OLD_FOOTAGE_DAYS - 1)).isoformat()
    c044 = get_camera(site, "C-044")
    generate_footage(site, c044, parse_window(f"{old}T09:00", f"{old}T09:01", zone, 24))
    agents.authorise(site, operator, Permission.FOOTAGE_INDEX, "footage scan")
    scan(site, [c044], operator)
    agents.authorise(site, supervisor, Permission.PURGE, "purge")
    report = purge(site, supervisor, signer=papers.signer, pdf=papers.pdf)
    certificate = report.certificates[-1]
    say(
        _(
            "retention purge: footage of {day} (C-044 keeps 15 days) destroyed; certificate: {path}"
        ).format(day=old, path=certificate / "documents" / "destruction.pdf")
    )
    return Papers(handed.pv, label.pdf, register.pdf, certificate)
