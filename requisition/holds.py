"""Holds: footage kept past its retention because a procedure needs it.

Requisitions place holds when registered (requisitions.py); staff place them by hand
too (a prosecutor's call before the written requisition arrives). Releasing one needs
a reason and someone other than who placed it; every change is a ledger entry written
in the same transaction.

What is held is what the **ledger** says: the placements (`hold.place`, and the holds a
schema upgrade restated with `hold.restate`) minus the releases (`hold.release`), read
from the entries' own bytes. The `hold` table only numbers holds and keeps their text
for display: an edit of it made around scelle (`UPDATE hold SET released_at = …`)
changes nothing the purge obeys. Placing a hold takes the site's writer lock, as each of
the purge's deletion batches does, so a hold and a deletion never cross.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from custody import text
from custody.db import Cursor
from custody.entry import Record, decode_entry
from custody.errors import InputError, IntegrityError, InvalidStateError
from custody.i18n import _
from custody.site import Site
from custody.timewindow import Window, local_text, parse_time, stored_now, to_us, utc_text
from requisition.agents import refuse, same_agent
from requisition.cameras import get_camera

PLACE, RELEASE, RESTATE = "hold.place", "hold.release", "hold.restate"
MAX_HOLD_ID = 2**62


@dataclass(frozen=True)
class Hold:
    """A hold as the ledger states it (times are reference UTC µs)."""

    id: int
    camera_id: str
    start_us: int
    end_us: int
    reason: str
    procedure: str | None
    requisition_id: str | None
    placed_by: str
    placed_at: str
    placed_seq: int  # the ledger entry that placed (or restated) it
    released_by: str | None = None
    released_at: str | None = None
    release_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.released_at is None

    def covers(self, start: int, end: int) -> bool:
        return self.start_us < end and self.end_us > start


def _utc_us(text: Any) -> int:
    if not isinstance(text, str):
        raise IntegrityError(_("a hold entry of the ledger has no UTC time"))
    return to_us(parse_time(text, "UTC"))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _hold(seq: int, fields: Mapping[str, Any]) -> Hold:
    """A hold from what a placement entry (or an item of a restatement) states."""
    return Hold(
        id=int(fields["hold"]),
        camera_id=str(fields.get("camera")),
        start_us=_utc_us(fields.get("from_utc")),
        end_us=_utc_us(fields.get("to_utc")),
        reason=str(fields.get("reason")),
        procedure=_text(fields.get("procedure")),
        requisition_id=_text(fields.get("requisition")),
        placed_by=str(fields.get("placed_by")),
        placed_at=str(fields.get("placed_at")),
        placed_seq=seq,
    )


class HoldBook:
    """The holds of the ledger, read incrementally: `refresh` reads only the hold
    entries appended since the last call, so the purge re-reads them cheaply inside
    each of its deletion transactions."""

    def __init__(self) -> None:
        self.seen = -1
        self._holds: list[Hold] = []  # in placement order; one id may be placed twice

    def refresh(self, cur: Cursor) -> HoldBook:
        cur.execute(
            "SELECT e.seq, e.body FROM ledger_audit a JOIN ledger_entry e ON e.seq = a.seq "
            "WHERE a.action IN (?, ?, ?) AND a.seq > ? ORDER BY a.seq",
            [PLACE, RELEASE, RESTATE, self.seen],
        )
        for seq, body in cur.fetchall():
            try:
                self._apply(int(seq), decode_entry(bytes(body)))
            except (InputError, KeyError, TypeError, ValueError) as exc:
                # Fail safe: what is held cannot be known, so nothing is decided on it.
                raise IntegrityError(
                    _(
                        "ledger entry {seq} is a hold entry scelle cannot read: nothing is "
                        "decided on the holds until it is explained"
                    ).format(seq=seq),
                    hint=_("run 'scelle ledger verify'"),
                ) from exc
            self.seen = int(seq)
        return self

    def _apply(self, seq: int, entry: Mapping[str, Any]) -> None:
        action, subject = entry.get("action"), entry.get("subject")
        data: Mapping[str, Any] = entry["data"] if isinstance(entry.get("data"), Mapping) else {}
        if action == PLACE and isinstance(subject, Mapping):
            if not isinstance(subject.get("hold"), int) or isinstance(subject["hold"], bool):
                return  # placed before holds were numbered in the ledger: restated at v6
            self._holds.append(
                _hold(
                    seq,
                    {
                        **data,
                        "hold": subject["hold"],
                        "camera": subject.get("camera"),
                        "reason": entry.get("reason"),
                        "procedure": entry.get("procedure"),
                        "requisition": subject.get("requisition"),
                        "placed_by": entry.get("actor"),
                        "placed_at": entry.get("time"),
                    },
                )
            )
        elif action == RESTATE:
            for item in data.get("holds", []):
                if isinstance(item, Mapping) and isinstance(item.get("hold"), int):
                    self._holds.append(_hold(seq, item))
        elif action == RELEASE and isinstance(subject, Mapping):
            hold_id = subject.get("hold")
            self._holds = [
                replace(
                    h,
                    released_by=str(entry.get("actor")),
                    released_at=str(entry.get("time")),
                    release_reason=str(entry.get("reason")),
                )
                if h.id == hold_id and h.active
                else h
                for h in self._holds
            ]

    def all(self) -> list[Hold]:
        return list(self._holds)

    def active(self, camera_id: str | None = None) -> list[Hold]:
        return [
            h for h in self._holds if h.active and (camera_id is None or h.camera_id == camera_id)
        ]

    def with_id(self, hold_id: int) -> list[Hold]:
        return [h for h in self._holds if h.id == hold_id]

    def holding(self, camera_id: str, start_us: int, end_us: int) -> bool:
        """Whether an active hold covers any part of [start, end) of reference time."""
        return any(h.covers(start_us, end_us) for h in self.active(camera_id))


def book(site: Site) -> HoldBook:
    with site.db.read() as cur:
        return HoldBook().refresh(cur)


def place_entry(
    hold_id: int,
    camera_id: str,
    window: Window,
    zone: str,
    reason: str,
    procedure: str | None,
    requisition_id: str | None = None,
) -> Record:
    """The ledger entry of a placement: its id, camera and window are what the purge
    obeys."""
    subject: dict[str, Any] = {"camera": camera_id, "hold": hold_id}
    if requisition_id is not None:
        subject["requisition"] = requisition_id
    return Record(
        PLACE,
        subject,
        reason,
        procedure,
        data={
            "from": local_text(window.start, zone),
            "to": local_text(window.end, zone),
            "from_utc": utc_text(window.start),
            "to_utc": utc_text(window.end),
        },
    )


def insert_hold(
    cur: Cursor,
    camera_id: str,
    window: Window,
    reason: str,
    procedure: str | None,
    actor: str,
    placed_at: str,
    requisition_id: str | None = None,
) -> int:
    """Number a hold in the table (inside the caller's write transaction)."""
    # RETURNING: the id of this row, whatever another session inserted (MAX(id) would
    # give a row planted with a larger id, and two holds would share one number).
    row = cur.execute(
        "INSERT INTO hold (camera_id, start_us, end_us, reason, procedure, requisition_id, "
        "placed_by, placed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        [camera_id, window.start, window.end, reason, procedure, requisition_id, actor, placed_at],
    ).fetchone()
    return int(row[0])


def place(
    site: Site, camera_id: str, window: Window, reason: str, procedure: str | None, actor: str
) -> Hold:
    camera = get_camera(site, camera_id)
    if not reason.strip():
        raise InputError(_("a hold needs a reason"))
    text.prose(reason, _("the reason"))
    if procedure is not None:
        text.line(procedure, _("the procedure number"))
    placed_at = stored_now()
    with site.db.write() as cur:
        hold_id = insert_hold(cur, camera.id, window, reason.strip(), procedure, actor, placed_at)
        site.ledger.append_in(
            cur,
            actor,
            [place_entry(hold_id, camera.id, window, camera.timezone, reason.strip(), procedure)],
        )
    return get(site, hold_id)


def get(site: Site, hold_id: int) -> Hold:
    """The hold as the ledger states it (the latest placement of that id)."""
    if not 0 < hold_id < MAX_HOLD_ID:
        raise InputError(_("unknown hold {hold}").format(hold=hold_id))
    found = book(site).with_id(hold_id)
    if not found:
        raise InputError(
            _("unknown hold {hold}").format(hold=hold_id), hint=_("see 'scelle hold list'")
        )
    return found[-1]


def list_holds(site: Site, *, active_only: bool = True) -> list[Hold]:
    held = book(site)
    return sorted(held.active() if active_only else held.all(), key=lambda h: h.id)


def of_requisition(site: Site, requisition_id: str) -> list[Hold]:
    return [h for h in book(site).all() if h.requisition_id == requisition_id]


def release_entries(
    holds: Iterable[Hold], reason: str, procedure: str | None = None
) -> list[Record]:
    return [
        Record(
            RELEASE,
            {"camera": h.camera_id, "hold": h.id},
            reason,
            procedure or h.procedure,
            data={"from_utc": utc_text(h.start_us), "to_utc": utc_text(h.end_us)},
        )
        for h in holds
    ]


def mark_released(cur: Cursor, holds: Iterable[Hold], actor: str, reason: str) -> None:
    """Keep the table's display in step (the ledger entry is what counts)."""
    now = stored_now()
    for h in holds:
        cur.execute(
            "UPDATE hold SET released_by = ?, released_at = ?, release_reason = ? "
            "WHERE id = ? AND released_at IS NULL",
            [actor, now, reason, h.id],
        )


def release(site: Site, hold_id: int, reason: str, actor: str) -> Hold:
    if not reason.strip():
        raise InputError(_("releasing a hold needs a reason"))
    text.prose(reason, _("the reason"))
    placements = [get(site, hold_id)] and book(site).with_id(hold_id)
    if not any(h.active for h in placements):
        raise InvalidStateError(
            _("hold {hold} was already released on {at}").format(
                hold=hold_id, at=placements[-1].released_at
            )
        )
    if any(same_agent(actor, h.placed_by) for h in placements):
        refuse(
            site,
            actor,
            "hold release",
            _(
                "{actor} placed hold {hold} and cannot also release it: another supervisor must"
            ).format(actor=actor, hold=hold_id),
        )
    with site.db.write() as cur:
        # Read again under the writer lock: a concurrent release must not be recorded twice.
        active = [h for h in HoldBook().refresh(cur).with_id(hold_id) if h.active]
        if not active:
            raise InvalidStateError(_("hold {hold} was already released").format(hold=hold_id))
        mark_released(cur, active, actor, reason.strip())
        site.ledger.append_in(cur, actor, release_entries(active[-1:], reason.strip()))
    return get(site, hold_id)


def restate(cur: Cursor, actor: str) -> None:
    """Schema v6: restate in the ledger the holds the table had in force (before v6 the
    purge read the table; from v6 it reads the ledger). Nothing to say, nothing appended."""
    from custody.ledger import append_locked

    cur.execute(
        "SELECT id, camera_id, start_us, end_us, reason, procedure, requisition_id, "
        "placed_by, placed_at FROM hold WHERE released_at IS NULL ORDER BY id"
    )
    rows = cur.fetchall()
    if not rows:
        return
    names = [
        "hold",
        "camera",
        "from_utc",
        "to_utc",
        "reason",
        "procedure",
        "requisition",
        "placed_by",
        "placed_at",
    ]
    holds = [
        dict(zip(names, (int(r[0]), r[1], utc_text(r[2]), utc_text(r[3]), *r[4:]), strict=True))
        for r in rows
    ]
    record = Record(
        RESTATE,
        {"holds": [h["hold"] for h in holds], "cameras": sorted({h["camera"] for h in holds})},
        _("holds in force restated in the ledger at schema v6: the purge obeys the ledger"),
        data={"holds": holds},
    )
    append_locked(cur, actor, [record])
