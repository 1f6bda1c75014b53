"""The access log décret 2023-1102 asks of a video-protection system (the video-protection
part of the Code de la sécurité intérieure): for every consultation, extraction and
deletion of images, the agent's surname, first name
and role, the date, time and reason, the recipient, and which recordings of which camera.

Every field is read from the ledger's own entries, never from a table, and never copied
into each entry when it is appended:

- the agent: an entry's `actor` is the login that acted; who that login was designated
  as, and in which role, is what the latest `agent.add` or `agent.rename` entry about it
  before that entry says. The ledger's order is its time order, so a later rename never
  changes an earlier row, and entries written before this log was asked for (or before a
  login was designated) read the same way;
- the recipient and the recordings of a requisition's extraction, handover or export
  destruction: what its `requisition.register` entry says (officer, unit, windows).

So anyone holding the entries (a bundle, `scelle ledger show --json`) recomputes the same
rows offline with this module alone: `Context.learn` every entry in seq order and
`describe` each. Recording a copy in every entry instead would have read the agents
table, which the ledger does not vouch for, on every append, changed the entry's format
for its verifiers, and still left every older entry to be resolved this way.

Pure: it imports nothing that reads a database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from custody.i18n import N_, _


class Operation(StrEnum):
    """What an entry did to images, in the décret's words."""

    CONSULTATION = "consultation"
    EXTRACTION = "extraction"
    DELETION = "deletion"
    OTHER = "other"


_SEEN, _COPIED, _GONE, _NONE = (
    Operation.CONSULTATION,
    Operation.EXTRACTION,
    Operation.DELETION,
    Operation.OTHER,
)

# Every action scelle records, classified once (tests/test_access_log.py checks that it is
# every action requisition/roles.py knows and every one a `Record(` in the code names).
OPERATIONS: Mapping[str, Operation] = {
    # Consultation: the index of a camera's recordings read for a window (footage find;
    # scelle shows no images itself, this is the closest it comes).
    "footage.consult": _SEEN,
    # Extraction: a copy of images leaves the system's stores, or goes to someone.
    "footage.extract": _COPIED,  # the segments copied into an export
    "requisition.export": _COPIED,  # the sealed export made of them
    "export.copy": _COPIED,  # the export copied onto removable media
    "requisition.handover": _COPIED,  # the sealed medium transmitted to the officer
    # Deletion: images destroyed.
    "footage.destroy": _GONE,  # recordings past their retention, destroyed by a purge
    "export.destroy": _GONE,  # an export destroyed a month after its transmission
    # another system's export taken in, its requisition ended without an export:
    "attachment.destroy": _GONE,
    # Other: no image is read, copied or destroyed by the entry itself.
    "footage.destroy.intent": _NONE,  # announces a deletion; its footage.destroy records it
    "footage.destroy.failed": _NONE,  # segments that could not be deleted: left in place
    "footage.ingest": _NONE,  # hashing at ingest, automatic: nobody sees the images
    "footage.generate": _NONE,  # synthetic test footage written, not recorded by a camera
    "requisition.unavailable": _NONE,  # nothing to extract: no footage recorded
    "requisition.register": _NONE,
    # Another system's export taken into custody: copied into the site, not out of it
    # (what leaves is in the footage.extract of the export that delivers it).
    "requisition.attach": _NONE,
    "requisition.approve": _NONE,
    "requisition.deny": _NONE,
    "requisition.cancel": _NONE,
    "document.issue": _NONE,  # cover sheets, labels, registers: hashes, never images
    "hold.place": _NONE,
    "hold.release": _NONE,
    "hold.restate": _NONE,
    "camera.add": _NONE,
    "camera.check": _NONE,  # a store's names and headers read: no image shown
    "agent.add": _NONE,
    "agent.rename": _NONE,
    "agent.disable": _NONE,
    "access.refused": _NONE,  # refused: nothing was done
    "audit.query": _NONE,
    "ledger.note": _NONE,
    "ledger.export": _NONE,
    "ledger.disavow": _NONE,
    "site.init": _NONE,
    "site.document-key": _NONE,  # the key that signs the papers, created
    "db.copy": _NONE,
}

OPERATION_NAMES: Mapping[Operation, str] = {
    Operation.CONSULTATION: N_("consultation"),
    Operation.EXTRACTION: N_("extraction"),
    Operation.DELETION: N_("deletion"),
    Operation.OTHER: N_("other"),
}
DESIGNATIONS = ("agent.add", "agent.rename")
REGISTER = "requisition.register"


def operation(action: str) -> Operation:
    """The operation of an action (one scelle does not know, from a newer version: other)."""
    return OPERATIONS.get(action, Operation.OTHER)


@dataclass(frozen=True)
class Designation:
    """Who a login was, from one `agent.add` or `agent.rename` entry (seq)."""

    seq: int
    surname: str
    first_name: str
    role: str

    @property
    def full_name(self) -> str:
        """`Marie DURAND`; the surname alone when no first name was recorded."""
        return f"{self.first_name} {self.surname}".strip()


@dataclass(frozen=True)
class Recording:
    """Which recordings: a camera and a window, its times as the entry wrote them (local
    with the camera's offset, or UTC with a Z)."""

    camera: str
    start: str
    end: str

    def text(self, zone: str | None = None) -> str:
        """`C-012 2026-11-24T14:00:00+01:00 → 2026-11-24T14:05:00+01:00`; with `zone`,
        UTC times are shown in it."""
        return f"{self.camera} {_in(self.start, zone)} → {_in(self.end, zone)}"


def _in(moment: str, zone: str | None) -> str:
    if zone is None or not moment.endswith("Z"):
        return moment
    try:
        parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return moment
    return parsed.astimezone(ZoneInfo(zone)).isoformat()


@dataclass(frozen=True)
class Registration:
    """What a requisition's `requisition.register` entry says of its recipient and footage."""

    seq: int
    officer: str | None
    unit: str | None
    recordings: tuple[Recording, ...]


class RecipientKind(StrEnum):
    OFFICER = "officer"  # the officer and unit the images go to
    DESTROYED = "destroyed"  # a deletion: nobody
    AGENT = "agent"  # a consultation: the consulting agent
    UNKNOWN = "unknown"  # a requisition whose registration these entries do not hold


@dataclass(frozen=True)
class Recipient:
    """Who receives the images of an entry (the décret's destinataire)."""

    kind: RecipientKind
    name: str | None = None  # the officer, or the consulting agent
    unit: str | None = None
    requisition: str | None = None  # UNKNOWN: the requisition not registered here

    def as_json(self) -> dict[str, Any]:
        out = {"kind": self.kind.value, "name": self.name, "unit": self.unit}
        return out | ({"requisition": self.requisition} if self.requisition else {})

    def text(self) -> str:
        """In the user's language; never empty."""
        if self.kind is RecipientKind.DESTROYED:
            return _("none (destroyed)")
        if self.kind is RecipientKind.AGENT:
            return _("{agent}, the consulting agent (consultation, no copy made)").format(
                agent=self.name
            )
        if self.kind is RecipientKind.UNKNOWN:
            return _(
                "unknown: the registration of requisition {requisition} is not in these entries"
            ).format(requisition=self.requisition)
        if self.name and self.unit:
            return f"{self.name}, {self.unit}"
        return self.name or self.unit or _("unknown")


@dataclass
class Context:
    """What earlier entries say that later ones rely on: designations and registrations.

    Learned from entries in any order; `at` answers as of a given seq."""

    designations: dict[str, list[Designation]] = field(default_factory=dict)
    registrations: dict[str, Registration] = field(default_factory=dict)

    def learn(self, entry: Mapping[str, Any]) -> None:
        action, subject, data = entry.get("action"), entry.get("subject"), entry.get("data")
        if not isinstance(subject, Mapping) or not isinstance(data, Mapping):
            return
        seq = entry.get("seq")
        if not isinstance(seq, int):
            return
        if action in DESIGNATIONS and _text(subject.get("agent")):
            found = _designation(seq, data)
            if found is not None:
                history = self.designations.setdefault(subject["agent"], [])
                history.append(found)
                history.sort(key=lambda d: d.seq)
        elif action == REGISTER and _text(subject.get("requisition")):
            earlier = self.registrations.get(subject["requisition"])
            if earlier is None or earlier.seq > seq:  # the first registration stands
                self.registrations[subject["requisition"]] = Registration(
                    seq,
                    _text(data.get("officer_name")),
                    _text(data.get("officer_unit")),
                    _windows(data),
                )

    def at(self, login: str, seq: int) -> Designation | None:
        """The designation of `login` as entry `seq` was written (None: not designated)."""
        before = [d for d in self.designations.get(login, []) if d.seq < seq]
        return before[-1] if before else None


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def _designation(seq: int, data: Mapping[str, Any]) -> Designation | None:
    """From `agent.add` or `agent.rename` data. Entries written before surnames and first
    names were recorded apart hold one `name`: it is the surname, with no first name (as
    the schema migration kept it: splitting a name would be a guess)."""
    surname = _text(data.get("surname")) or _text(data.get("name"))
    role = _text(data.get("role"))
    if surname is None or role is None:
        return None
    return Designation(seq, surname, _text(data.get("first_name")) or "", role)


def _windows(data: Mapping[str, Any]) -> tuple[Recording, ...]:
    """The recordings an entry's data names: its `windows`, or itself as one window."""
    windows = data.get("windows")
    if not isinstance(windows, list):
        windows = [data] if {"camera", "from", "to"} <= data.keys() else []
    out = []
    for w in windows:
        if isinstance(w, Mapping) and {"camera", "from", "to"} <= w.keys():
            out.append(Recording(str(w["camera"]), str(w["from"]), str(w["to"])))
    return tuple(out)


@dataclass(frozen=True)
class Access:
    """One entry as the décret's log reads it."""

    operation: Operation
    designation: Designation | None  # None: the login was not a designated agent then
    recipient: Recipient | None  # None for an operation other than the décret's three
    recordings: tuple[Recording, ...]
    cameras: tuple[str, ...]
    summary: str | None = None  # which recordings, when the entry names no window


def describe(entry: Mapping[str, Any], context: Context) -> Access:
    """The décret's fields of one decoded entry, from it and what `context` learned."""
    action = str(entry.get("action"))
    kind = operation(action)
    seq = int(entry["seq"])
    actor = str(entry.get("actor"))
    subject = entry.get("subject")
    subject = subject if isinstance(subject, Mapping) else {}
    data = entry.get("data")
    data = data if isinstance(data, Mapping) else {}
    designation = context.at(actor, seq)
    rid = _text(subject.get("requisition"))
    registration = context.registrations.get(rid) if rid else None
    recordings = _windows(data)
    summary = None
    if action == "footage.destroy":
        # reference time where the entry gives it (recorder time in entries made before)
        camera = subject.get("camera")
        first = data.get("first_reference_utc", data.get("first_utc"))
        last = data.get("last_end_reference_utc", data.get("last_end_utc"))
        if isinstance(camera, str) and isinstance(first, str) and isinstance(last, str):
            recordings = (Recording(camera, first, last),)
        elif data.get("segments") is not None:  # before destroyed spans were recorded
            summary = _("{segments} segments of camera {camera} (purge {run})").format(
                segments=data.get("segments"), camera=camera, run=subject.get("purge")
            )
    if not recordings and registration is not None and kind is not Operation.OTHER:
        recordings = registration.recordings
    named = {r.camera for r in recordings}
    for key in ("camera", "cameras"):
        value = subject.get(key)
        named |= {value} if isinstance(value, str) else set()
        named |= {c for c in value if isinstance(c, str)} if isinstance(value, list) else set()
    return Access(
        kind,
        designation,
        _recipient(kind, action, data, rid, registration, designation, actor),
        recordings,
        tuple(sorted(c for c in named if c)),
        summary,
    )


def _recipient(
    kind: Operation,
    action: str,
    data: Mapping[str, Any],
    rid: str | None,
    registration: Registration | None,
    designation: Designation | None,
    actor: str,
) -> Recipient | None:
    if kind is Operation.DELETION:
        return Recipient(RecipientKind.DESTROYED)
    if kind is Operation.CONSULTATION:
        return Recipient(RecipientKind.AGENT, designation.full_name if designation else actor)
    if kind is not Operation.EXTRACTION:
        return None
    officer, unit = _text(data.get("officer")), _text(data.get("unit"))
    if action == "requisition.handover" and (officer or unit):  # who received it in person
        grade = _text(data.get("grade"))
        named = f"{officer} ({grade})" if grade and officer else officer
        return Recipient(RecipientKind.OFFICER, named, unit)
    if registration is not None:
        return Recipient(RecipientKind.OFFICER, registration.officer, registration.unit)
    return Recipient(RecipientKind.UNKNOWN, requisition=rid or "?")


def operation_text(kind: Operation) -> str:
    """consultation, extraction, suppression, autre: in the user's language."""
    return _(OPERATION_NAMES[kind])


def role_text(designation: Designation | None) -> str:
    """The role in the user's language; plainly unknown for a login nobody designated.

    The roles are the agents register's (requisition/words.py labels them): their stored
    names are messages of the one catalog, so `_` translates them here, below the layer
    that defines them."""
    if designation is None:
        return _("unknown: not a designated agent at that time")
    return _(designation.role)


def surname_text(designation: Designation | None, login: str) -> str:
    if designation is None:
        return _("unknown (login {login})").format(login=login)
    return designation.surname


def first_name_text(designation: Designation | None) -> str:
    if designation is None:
        return _("unknown")
    return designation.first_name or _("not recorded")
