"""Holds: footage kept past its retention because a procedure needs it.

Requisitions place holds when registered (requisitions.py); staff place them by hand
too (a prosecutor's call before the written requisition arrives). Releasing one needs
a reason and someone other than who placed it; every change is a ledger entry written
in the same transaction.
"""

from __future__ import annotations

from sqlmodel import Session, select

from custody.errors import InputError, InvalidState
from custody.ledger import Record
from custody.site import Site
from requisition.agents import refuse
from requisition.cameras import get_camera
from requisition.models import Hold
from requisition.timewindow import Window, local_text, now_us, utc_text


def place(
    site: Site, camera_id: str, window: Window, reason: str, procedure: str | None, actor: str
) -> Hold:
    camera = get_camera(site, camera_id)
    if not reason.strip():
        raise InputError("a hold needs a reason")
    placed_at = utc_text(now_us())
    with site.db.write() as cur:
        cur.execute(
            "INSERT INTO hold (camera_id, start_us, end_us, reason, procedure, placed_by, "
            "placed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [camera.id, window.start, window.end, reason.strip(), procedure, actor, placed_at],
        )
        hold_id = cur.execute("SELECT MAX(id) FROM hold").fetchone()[0]
        site.ledger.append_in(
            cur,
            actor,
            [
                Record(
                    "hold.place",
                    {"camera": camera.id, "hold": hold_id},
                    reason.strip(),
                    procedure,
                    data={
                        "from": local_text(window.start, camera.timezone),
                        "to": local_text(window.end, camera.timezone),
                        "from_utc": utc_text(window.start),
                        "to_utc": utc_text(window.end),
                    },
                )
            ],
        )
    return get(site, hold_id)


def get(site: Site, hold_id: int) -> Hold:
    with Session(site.db.engine) as session:
        hold = session.get(Hold, hold_id)
    if hold is None:
        raise InputError(f"unknown hold {hold_id}")
    return hold


def list_holds(site: Site, *, active_only: bool = True) -> list[Hold]:
    with Session(site.db.engine) as session:
        query = select(Hold).order_by(Hold.id)  # type: ignore[arg-type]
        if active_only:
            query = query.where(Hold.released_at == None)  # noqa: E711 - SQL IS NULL
        return list(session.exec(query).all())


def release(site: Site, hold_id: int, reason: str, actor: str) -> Hold:
    hold = get(site, hold_id)
    if hold.released_at is not None:
        raise InvalidState(f"hold {hold_id} was already released on {hold.released_at}")
    if not reason.strip():
        raise InputError("releasing a hold needs a reason")
    if actor.strip().casefold() == hold.placed_by.strip().casefold():
        refuse(
            site,
            actor,
            "hold release",
            f"{actor} placed hold {hold_id} and cannot also release it: another supervisor must",
        )
    with site.db.write() as cur:
        cur.execute(
            "UPDATE hold SET released_by = ?, released_at = ?, release_reason = ? "
            "WHERE id = ? AND released_at IS NULL",
            [actor, utc_text(now_us()), reason.strip(), hold_id],
        )
        site.ledger.append_in(
            cur,
            actor,
            [
                Record(
                    "hold.release",
                    {"camera": hold.camera_id, "hold": hold_id},
                    reason.strip(),
                    hold.procedure,
                    data={"from_utc": utc_text(hold.start_us), "to_utc": utc_text(hold.end_us)},
                )
            ],
        )
    return get(site, hold_id)
