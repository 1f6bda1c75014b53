"""A consultation of recordings (décret 2023-1102 logs every one): `scelle footage find`
reads which recordings a camera holds for a window, the closest scelle comes to showing
images, so each search is recorded as `footage.consult` with its reason, window and,
when it serves one, the requisition or procedure.

In the library, not the CLI, so that any program searching the index leaves the same
entry.
"""

from __future__ import annotations

from custody import text
from custody.entry import Record
from custody.errors import InputError
from custody.i18n import N_, _
from custody.site import Site
from custody.timewindow import Window, local_text, now_us, utc_text
from exporters.index import Coverage, find, require_footage, scan
from exporters.models import Camera
from requisition.requisitions import get

DEFAULT_REASON = N_("search for recordings")  # the ledger's reason, translated


def consult(
    site: Site,
    actor: str,
    camera: Camera,
    window: Window,
    reason: str | None = None,
    *,
    requisition: str | None = None,
    procedure: str | None = None,
) -> Coverage:
    """Index what is new, find the window's segments, spans and gaps, and record the
    consultation. A window with no recording at all (past its retention, in the future,
    never filmed) is refused as before, FootageUnavailableError, and records nothing:
    no image was there to consult.

    `requisition` links the search to a registered requisition (its PV is then the
    procedure); `procedure` names one without a requisition. Both given, they must agree."""
    why = (reason or "").strip() or _(DEFAULT_REASON)
    text.prose(why, _("the reason"))
    if procedure is not None:
        text.line(procedure, _("the procedure number"))
        procedure = procedure.strip() or None
    subject: dict[str, str] = {"camera": camera.id}
    if requisition is not None:
        pv = get(site, requisition).pv_number
        if procedure is not None and procedure != pv:
            raise InputError(
                _("requisition {requisition} is for procedure {pv}, not {procedure}").format(
                    requisition=requisition, pv=pv, procedure=procedure
                )
            )
        subject["requisition"], procedure = requisition, pv
    scan(site, [camera], actor)
    coverage = find(site, camera, window)
    require_footage(coverage, now_us())
    zone = camera.timezone
    site.ledger.append(
        actor,
        Record(
            "footage.consult",
            subject,
            why,
            procedure,
            data={
                "camera": camera.id,
                "from": local_text(window.start, zone),
                "to": local_text(window.end, zone),
                "from_utc": utc_text(window.start),
                "to_utc": utc_text(window.end),
                "segments": len(coverage.segments),
                "gaps": len(coverage.gaps),
            },
        ),
    )
    return coverage
