"""Requisitions: registered as received, preserved at once, decided by a second person.

Registration places a hold on every requested window in the same transaction as the
ledger entry, before anyone approves anything: the nightly purge must never destroy
footage a procedure has asked for. A window whose footage expires within 72 hours is
flagged urgent; one already past retention with nothing kept is reported unavailable.
Approval and denial need a supervisor who is not the operator who registered it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from custody import text
from custody.db import Cursor
from custody.entry import Record, decode_entry
from custody.errors import InputError, InvalidStateError
from custody.i18n import _, os_error_text
from custody.site import Site
from custody.timewindow import (
    Window,
    from_us,
    local_text,
    now_us,
    parse_time,
    parse_window,
    people_text,
    people_time,
    stored_now,
    stored_utc,
    to_us,
    utc_text,
)
from exporters.legal import LEGAL_BASES
from exporters.models import Camera
from requisition.agents import get as get_agent
from requisition.agents import refuse, same_agent
from requisition.cameras import get_camera
from requisition.holds import (
    Hold,
    HoldBook,
    insert_hold,
    mark_released,
    of_requisition,
    place_entry,
    release_entries,
)
from requisition.models import REQUISITION_COLUMNS, Requisition, requisition_of
from requisition.purge_history import destroyed_periods
from requisition.roles import GRANTS, Permission, Role
from requisition.words import label, legal_basis, stored

RECEIVED_VIA = ("email", "letter", "fax", "phone", "in-person", "platform")
URGENT_US = 72 * 3_600_000_000
DAY_US = 86_400_000_000
_ID = re.compile(r"\d{4}-\d{5}")
_NUMBERED = re.compile(r"[0-9]{4}-[0-9]{5}")


class State(StrEnum):
    """The states peers' request workflows use (Genetec Clearance's, in our words)."""

    RECEIVED = "received"
    APPROVED = "approved"
    PROCESSING = "processing"
    COMPLETED = "completed"
    PARTIAL = "partially completed"
    DENIED = "denied"
    CANCELLED = "cancelled"
    UNAVAILABLE = "video unavailable"


def check_id(requisition_id: str) -> str:
    if not _ID.fullmatch(requisition_id):
        raise InputError(
            _("invalid requisition id {requisition!r}: expected YYYY-NNNNN").format(
                requisition=requisition_id
            )
        )
    return requisition_id


MAX_FILE_BYTES = 1_000_000  # a requisition is a page of text, not a megabyte
WINDOW_FIELDS = ("camera", "from", "to")
PROSE_FIELDS = frozenset({"reason"})  # may run over several lines; the others are one line
# A requisition file names its fields as the options of `requisition register` do (--pv:
# pv); files written for earlier versions used the names on the left, still read.
EARLIER_NAMES = {"pv_number": "pv", "officer_name": "officer", "officer_unit": "unit"}


def _file_name(field_name: str) -> str:
    """A RequisitionRequest field as the file (and the option) names it."""
    return EARLIER_NAMES.get(field_name, field_name)


class _DuplicateKeyError(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads keeps the last of two equal keys; a requisition must not say two things."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKeyError(key)
        seen[key] = value
    return seen


def _kind(value: Any) -> str:
    """What a JSON or TOML value is, in words (never the value: it may be megabytes; never
    Python's name for its type either)."""
    if isinstance(value, bool):
        return _("true or false")
    if isinstance(value, (int, float)):
        return _("a number")
    if isinstance(value, dict):
        return _("a table")
    if isinstance(value, list):
        return _("a list")
    if isinstance(value, (date, time)):  # TOML dates and times (datetime is a date)
        return _("a date or a time")
    if value is None:  # JSON null
        return _("null")
    return _("another kind of value")


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _fields_as_text(
    path: Path,
    window: int | None,
    doc: dict[str, Any],
    known: Collection[str],
    required: Collection[str],
) -> None:
    """Every field of `doc` (the requisition's, or its `window`-th window's) known,
    present if required, and acceptable text."""
    unknown = sorted(set(doc) - set(known))
    if unknown:
        raise InputError(
            (
                _("{path}: unknown field {field}")
                if window is None
                else _("{path}: window {number}: unknown field {field}")
            ).format(path=path, number=window, field=text.shown(unknown[0]))
        )
    missing = [name for name in required if name not in doc]
    if missing:
        raise InputError(
            (
                _("{path}: missing field {field!r}")
                if window is None
                else _("{path}: window {number}: missing field {field!r}")
            ).format(path=path, number=window, field=missing[0])
        )
    for name, value in doc.items():
        what = (
            _("{path}: {field}") if window is None else _("{path}: window {number}: {field}")
        ).format(path=path, number=window, field=name)
        if not isinstance(value, str):
            raise InputError(
                _("{what} must be text, not {kind}").format(what=what, kind=_kind(value))
            )
        (text.prose if name in PROSE_FIELDS else text.line)(value, what)


_TOML_AT = re.compile(r"\(at line ([0-9]+), column ([0-9]+)\)")


def _not_valid(path: Path, kind: str, exc: ValueError) -> InputError:
    """A file the JSON or TOML parser refused, said in our words: where it stopped
    reading, never the parser's own (English) wording."""
    if isinstance(exc, json.JSONDecodeError):
        at: tuple[Any, Any] | None = (exc.lineno, exc.colno)
    else:
        found = _TOML_AT.search(str(exc))
        at = (found[1], found[2]) if found else None
    if at is None:
        message = (
            _("{path}: not valid {kind} (at the end of the file)")
            if "at end of document" in str(exc)
            else _("{path}: not valid {kind}")
        )
        return InputError(message.format(path=path, kind=kind))
    return InputError(
        _("{path}: not valid {kind} (line {line}, column {column})").format(
            path=path, kind=kind, line=at[0], column=at[1]
        )
    )


@dataclass(frozen=True)
class WindowRequest:
    camera: str
    start: str  # local time of the camera, as the officer wrote it
    end: str


@dataclass(frozen=True)
class RequisitionRequest:
    """A requisition as received, all text, unchecked."""

    legal_basis: str
    pv_number: str
    officer_name: str
    officer_unit: str
    reason: str
    windows: tuple[WindowRequest, ...]
    received_via: str = "email"
    received_at: str | None = None  # local time; default: now
    deadline: str | None = None
    prosecutor_authorisation: str | None = None

    @classmethod
    def from_file(cls, path: Path) -> RequisitionRequest:
        """Read a requisition from TOML or JSON (requisitions arrive by any means).

        Whatever the file holds, the answer is this requisition or one InputError naming
        the file and the field as written there: a file too large to be a requisition, a
        structure nested without end (Python's parsers recurse), a key given twice (JSON
        would keep the last one silently), a field missing, unknown, or not text."""
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise InputError(
                _("cannot read {path}: {reason}").format(path=path, reason=os_error_text(exc))
            ) from exc
        if len(data) > MAX_FILE_BYTES:
            raise InputError(
                _("{path} is larger than {limit:,} bytes: not a requisition file").format(
                    path=path, limit=MAX_FILE_BYTES
                )
            )
        try:
            source = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(_("{path} is not UTF-8 text").format(path=path)) from exc
        kind = "JSON" if path.suffix == ".json" else "TOML"
        try:
            doc: Any = (
                json.loads(source, object_pairs_hook=_unique_keys)
                if kind == "JSON"
                else tomllib.loads(source)
            )
        except _DuplicateKeyError as exc:
            key = text.shown(exc.args[0])
            raise InputError(
                _("{path}: the key {key} is given twice").format(path=path, key=key)
            ) from exc
        except RecursionError as exc:
            raise InputError(
                _("{path}: not valid {kind}: nested too deeply").format(path=path, kind=kind)
            ) from exc
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise _not_valid(path, kind, exc) from exc
        if not isinstance(doc, dict):
            raise InputError(
                _("{path}: expected a table of fields, not {kind}").format(
                    path=path, kind=_kind(doc)
                )
            )
        windows = doc.pop("windows", [])
        if not isinstance(windows, list) or not all(isinstance(w, dict) for w in windows):
            raise InputError(
                _("{path}: windows must be a list of {{camera, from, to}}").format(path=path)
            )
        fields_ = {_file_name(f.name): f for f in dataclasses.fields(cls) if f.name != "windows"}
        for old_name, name in EARLIER_NAMES.items():  # files written for earlier versions
            fields_[old_name] = fields_[name]
            if old_name in doc and name in doc:
                raise InputError(
                    _("{path}: {old} and {new} are the same field: give {new} only").format(
                        path=path, old=old_name, new=name
                    )
                )
        given = {fields_[k].name for k in doc if k in fields_}
        missing = [n for n, f in fields_.items() if _required(f) and f.name not in given]
        # A field is checked, and named in messages, as the file writes it.
        _fields_as_text(path, None, doc, fields_, missing[:1])
        parsed = []
        for number, w in enumerate(windows, start=1):
            _fields_as_text(path, number, w, WINDOW_FIELDS, WINDOW_FIELDS)
            parsed.append(WindowRequest(w["camera"], w["from"], w["to"]))
        return cls(windows=tuple(parsed), **{fields_[k].name: v for k, v in doc.items()})


def requisition_template(zone: str, now: int | None = None) -> str:
    """A requisition file to fill in (TOML), commented in the user's language, with the
    same field names as `requisition register`'s options. Its example window is
    yesterday 14:00-14:10 in `zone`: the file registers as it is once camera C-012 exists."""
    day = (from_us(now or now_us()).astimezone(ZoneInfo(zone)) - timedelta(days=1)).date()
    shown = day.strftime("%d/%m/%Y")
    lines = [
        "# " + _("Requisition for 'scelle requisition register --file FILE'."),
        "# " + _("The field names are those of the options (--pv: pv)."),
        "",
        "# " + _("CPP article: 60-1, 77-1-1 or 99-3 ('art. 60-1' is read too)."),
        'legal_basis = "60-1"',
        "# " + _("PV or procedure number."),
        'pv = "PV 2026/004217"',
        "# " + _("Requesting officer (name, rank) and unit."),
        'officer = "{}"'.format(_("Captain Martin")),
        'unit = "{}"'.format(_("Police station, night brigade")),
        "# " + _("Why the footage is requested (several lines allowed)."),
        'reason = "{}"'.format(_("Theft from a vehicle, town hall square")),
        "# " + _("How it arrived: email, letter, fax, phone, in-person or platform."),
        'received_via = "email"',
        "# " + _("When it arrived (default: now), the officer's deadline, and the prosecutor's"),
        "# " + _("authorisation (required for 77-1-1): uncomment to give them."),
        f'# received_at = "{shown} 09:30"',
        f'# deadline = "{shown} 18:00"',
        '# prosecutor_authorisation = ""',
        "",
        "# " + _("One [[windows]] block per camera and time range, in local time:"),
        "# " + _("29/11/2026 14:00, 29/11/2026 14h00 or 2026-11-29T14:00."),
        "[[windows]]",
        'camera = "C-012"',
        f'from = "{shown} 14:00"',
        f'to = "{shown} 14:10"',
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class WindowStatus:
    camera: Camera
    window: Window
    expires_at: int  # when the first of its footage passes retention (UTC µs)
    urgent: bool
    unavailable: bool
    destroyed: tuple[tuple[str, str], ...] = ()  # (destroyed at, certificate) of purges


@dataclass(frozen=True)
class Registered:
    requisition: Requisition
    windows: tuple[WindowStatus, ...]


def nonempty(value: str | None, message: str) -> str:
    """`value` stripped; InputError(`message`, already translated) if there is none."""
    if value is None or not value.strip():
        raise InputError(message)
    return value.strip()


def _texts(request: RequisitionRequest) -> None:
    """Every text printable and of a sensible length, named as in a requisition file."""
    for f in dataclasses.fields(request):
        value = getattr(request, f.name)
        if isinstance(value, str):
            (text.prose if f.name in PROSE_FIELDS else text.line)(value, f.name)
    for number, w in enumerate(request.windows, start=1):
        for name, value in zip(WINDOW_FIELDS, (w.camera, w.start, w.end), strict=True):
            text.line(value, _("window {number}: {field}").format(number=number, field=name))


def _past(item: WindowRequest, camera: Camera, window: Window, now: int) -> None:
    """Footage is requested once recorded: a window ending after now cannot be held yet."""
    if window.end <= now:
        return
    zone = ZoneInfo(camera.timezone)
    end = now - now % 60_000_000  # the example ends at the last whole minute

    def shown(us: int) -> str:  # with its offset: valid even in the autumn's repeated hour
        return from_us(us).astimezone(zone).isoformat(timespec="minutes")

    example = f"{camera.id}={shown(end - 3_600_000_000)}/{shown(end)}"
    raise InputError(
        _(
            "the window {camera}={start}/{end} ends in the future: only footage already "
            "recorded can be requested, e.g. {example}"
        ).format(camera=item.camera, start=item.start, end=item.end, example=example)
    )


def _in_stored_words(request: RequisitionRequest) -> RequisitionRequest:
    """The request with its legal basis and way of receipt as stored (`art. 60-1` is
    60-1, `courriel` is email); a word nobody uses is refused, listing the accepted ones."""
    return dataclasses.replace(
        request,
        legal_basis=legal_basis(request.legal_basis),
        received_via=stored("received_via", request.received_via, RECEIVED_VIA),
    )


def _validate(site: Site, request: RequisitionRequest, now: int) -> list[tuple[Camera, Window]]:
    _texts(request)
    if request.legal_basis not in LEGAL_BASES:
        raise InputError(
            _("unknown legal basis {basis!r}: one of {bases}").format(
                basis=request.legal_basis, bases=", ".join(LEGAL_BASES)
            )
        )
    if request.legal_basis == "77-1-1" and not (request.prosecutor_authorisation or "").strip():
        raise InputError(
            _("the requisition has no prosecutor's authorisation (required by art. 77-1-1)"),
            hint=_(
                'add --prosecutor-authorisation "REFERENCE" (prosecutor_authorisation in a '
                "requisition file)"
            ),
        )
    nonempty(request.pv_number, _("the requisition has no PV or procedure number"))
    nonempty(request.officer_name, _("the requisition has no requesting officer"))
    nonempty(request.officer_unit, _("the requisition has no officer's unit"))
    nonempty(request.reason, _("the requisition has no reason"))
    if request.received_via not in RECEIVED_VIA:
        raise InputError(
            _("received via {via!r}: one of {choices}").format(
                via=request.received_via, choices=", ".join(RECEIVED_VIA)
            )
        )
    if not request.windows:
        raise InputError(_("the requisition names no camera and window"))
    pairs = []
    for item in request.windows:
        camera = get_camera(site, item.camera)
        window = parse_window(item.start, item.end, camera.timezone, site.settings.max_window_hours)
        _past(item, camera, window, now)
        pairs.append((camera, window))
    return pairs


def _registered_before(
    site: Site, pv_number: str, pairs: list[tuple[Camera, Window]]
) -> tuple[str, str] | None:
    """(id, state) of a requisition already registered with this PV number and these
    windows: the same file registered twice must not make a second requisition."""
    wanted = sorted((camera.id, w.start, w.end) for camera, w in pairs)
    found: dict[tuple[str, str], list[tuple[str, int, int]]] = {}
    with site.db.read() as cur:
        cur.execute(
            "SELECT r.id, r.state, w.camera_id, w.start_us, w.end_us FROM requisition r "
            "JOIN requisition_window w ON w.requisition_id = r.id WHERE r.pv_number = ? "
            "ORDER BY r.id",
            [pv_number.strip()],
        )
        for rid, state, camera_id, start, end in cur.fetchall():
            found.setdefault((rid, state), []).append((camera_id, int(start), int(end)))
    return next((key for key, got in found.items() if sorted(got) == wanted), None)


def _certificates(cur: Cursor, runs: Iterable[int]) -> dict[int, str | None]:
    ids = list(runs)
    if not ids:
        return {}
    cur.execute(
        f"SELECT id, certificate FROM purge_run WHERE id IN ({', '.join('?' * len(ids))})", ids
    )
    return {int(run): cert for run, cert in cur.fetchall()}


def _status(site: Site, camera: Camera, window: Window, now: int) -> WindowStatus:
    expires = window.start + camera.retention_days * DAY_US
    with site.db.read() as cur:
        offset = camera.clock_offset_ms * 1000
        kept = cur.execute(
            "SELECT COUNT(*) FROM segment WHERE camera_id = ? AND start_us < ? AND end_us > ? "
            "AND destroyed_at IS NULL",
            [camera.id, window.end + offset, window.start + offset],
        ).fetchone()[0]
        lo, hi = window.start + offset, window.end + offset
        cur.execute(
            "SELECT purge_run, MIN(destroyed_at) FROM segment WHERE camera_id = ? "
            "AND start_us < ? AND end_us > ? AND destroyed_at IS NOT NULL GROUP BY purge_run",
            [camera.id, hi, lo],
        )
        rows = cur.fetchall()
        periods = destroyed_periods(cur, camera.id, lo, hi)
        runs: dict[int, str] = {}
        for run, at in [*rows, *((d.purge_run, d.destroyed_at) for d in periods)]:
            runs[int(run)] = min(at, runs.get(int(run), at))
        certificates = _certificates(cur, runs)
        destroyed = tuple(
            (at, certificates.get(run) or _("no certificate"))
            for run, at in sorted(runs.items(), key=lambda r: (r[1], r[0]))
        )
    gone = window.end + camera.retention_days * DAY_US <= now and not kept
    urgent = not gone and expires - now < URGENT_US
    return WindowStatus(camera, window, expires, urgent, gone, destroyed if gone else ())


CLOCK_SKEW_US = 5 * 60_000_000  # a workstation's clock may be a few minutes off


def not_in_the_future(stored: str | None, zone: str, what: str) -> None:
    """What is recorded as having happened did not happen later than now: a typo in a
    year (2030) would otherwise stand on a legal paper and move the purge of an export."""
    if stored is not None and stored > stored_utc(now_us() + CLOCK_SKEW_US):
        raise InputError(
            _("{what} cannot be in the future ({at})").format(
                what=what, at=people_text(stored, zone)
            ),
            hint=_("check the date and time: 29/11/2026 14:00"),
        )


def typed_time(text: str | None, zone: str, default: int | None) -> str | None:
    """A time an officer or operator typed (local), as stored."""
    if text is None or not text.strip():
        return None if default is None else stored_utc(default)
    return stored_utc(to_us(parse_time(text, zone)))


def register(
    site: Site, request: RequisitionRequest, actor: str, *, force: bool = False
) -> Registered:
    """Record a requisition, hold its footage, and say what is urgent or already gone.

    One already registered with the same PV number and windows is refused (InvalidStateError,
    naming it) unless `force`: a file registered twice must not be two requisitions."""
    now = now_us()
    request = _in_stored_words(request)
    pairs = _validate(site, request, now)
    earlier = None if force else _registered_before(site, request.pv_number, pairs)
    if earlier is not None:
        raise InvalidStateError(
            _(
                "requisition {requisition} ({state}) already has PV number {pv!r} and the same "
                "windows"
            ).format(
                requisition=earlier[0],
                state=label("state", earlier[1]),
                pv=request.pv_number.strip(),
            ),
            hint=_("if this really is a second requisition, register it with --force"),
        )
    statuses = tuple(_status(site, camera, window, now) for camera, window in pairs)
    zone = site.settings.timezone
    received_at = typed_time(request.received_at, zone, now)
    not_in_the_future(received_at, zone, _("the receipt"))
    deadline = typed_time(request.deadline, zone, None)
    if deadline is not None and received_at is not None and deadline < received_at:
        raise InputError(
            _("the deadline ({deadline}) is before the receipt ({received})").format(
                deadline=people_text(deadline, zone), received=people_text(received_at, zone)
            )
        )
    year = from_us(now).astimezone(ZoneInfo(zone)).year
    with site.db.write() as cur:
        # The highest well-formed number of the year (a row planted with another shape,
        # '2026-zzzzz', must not stop every registration).
        cur.execute("SELECT id FROM requisition WHERE id LIKE ?", [f"{year}-%"])
        numbers = [int(i[5:]) for (i,) in cur.fetchall() if _NUMBERED.fullmatch(i)]
        number = max(numbers, default=0) + 1
        requisition = Requisition(
            id=f"{year}-{number:05d}",
            legal_basis=request.legal_basis,
            prosecutor_authorisation=(request.prosecutor_authorisation or "").strip() or None,
            pv_number=request.pv_number.strip(),
            officer_name=request.officer_name.strip(),
            officer_unit=request.officer_unit.strip(),
            received_via=request.received_via,
            received_at=received_at or stored_utc(now),
            deadline=deadline,
            reason=request.reason.strip(),
            state=State.UNAVAILABLE if all(s.unavailable for s in statuses) else State.RECEIVED,
            registered_by=actor,
            registered_at=stored_utc(now),
        )
        _insert(cur, "requisition", requisition.row())
        records = [
            Record(
                "requisition.register",
                {"requisition": requisition.id},
                requisition.reason,
                requisition.pv_number,
                data={
                    **{k: v for k, v in requisition.row().items() if v is not None},
                    "windows": [_window_json(s) for s in statuses],
                },
            )
        ]
        for position, status in enumerate(statuses):
            _insert(
                cur,
                "requisition_window",
                {
                    "requisition_id": requisition.id,
                    "position": position,
                    "camera_id": status.camera.id,
                    "start_us": status.window.start,
                    "end_us": status.window.end,
                },
            )
            if status.unavailable:
                continue
            reason = _("requisition {requisition}").format(requisition=requisition.id)
            hold_id = insert_hold(
                cur,
                status.camera.id,
                status.window,
                reason,
                requisition.pv_number,
                actor,
                stored_utc(now),
                requisition.id,
            )
            records.append(
                place_entry(
                    hold_id,
                    status.camera.id,
                    status.window,
                    status.camera.timezone,
                    _("preservation for requisition {requisition}").format(
                        requisition=requisition.id
                    ),
                    requisition.pv_number,
                    requisition.id,
                )
            )
        site.ledger.append_in(cur, actor, records)
    return Registered(requisition, statuses)


def _window_json(status: WindowStatus) -> dict[str, Any]:
    zone = status.camera.timezone
    return {
        "camera": status.camera.id,
        "from": local_text(status.window.start, zone),
        "to": local_text(status.window.end, zone),
        "from_utc": utc_text(status.window.start),
        "to_utc": utc_text(status.window.end),
        "expires_utc": utc_text(status.expires_at),
        "urgent": status.urgent,
        "unavailable": status.unavailable,
        "destroyed": [{"at": at, "certificate": cert} for at, cert in status.destroyed],
    }


def _insert(cur: Any, table: str, row: dict[str, Any]) -> None:
    columns = list(row)
    placeholders = ", ".join("?" * len(columns))
    cur.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})",
        [row[c] for c in columns],
    )


_SELECT = f"SELECT {', '.join(REQUISITION_COLUMNS)} FROM requisition"


def get(site: Site, requisition_id: str) -> Requisition:
    check_id(requisition_id)
    with site.db.read() as cur:
        found = cur.execute(f"{_SELECT} WHERE id = ?", [requisition_id]).fetchone()
    if found is None:
        raise InputError(_("unknown requisition {requisition}").format(requisition=requisition_id))
    return requisition_of(found)


def windows(site: Site, requisition_id: str) -> list[tuple[Camera, Window]]:
    with site.db.read() as cur:
        rows = cur.execute(
            "SELECT camera_id, start_us, end_us FROM requisition_window "
            "WHERE requisition_id = ? ORDER BY position",
            [requisition_id],
        ).fetchall()
    return [(get_camera(site, camera), Window(start, end)) for camera, start, end in rows]


def holds(site: Site, requisition_id: str) -> list[Hold]:
    """The requisition's holds, as the ledger states them."""
    return of_requisition(site, requisition_id)


def list_all(site: Site) -> list[Requisition]:
    with site.db.read() as cur:
        return [requisition_of(row) for row in cur.execute(f"{_SELECT} ORDER BY id").fetchall()]


_DECISIONS = {
    "approve": (State.APPROVED, "requisition.approve"),
    "deny": (State.DENIED, "requisition.deny"),
    "cancel": (State.CANCELLED, "requisition.cancel"),
}


@dataclass(frozen=True)
class Decision:
    """A decision, and what became of the requisition's holds."""

    requisition: Requisition
    released: tuple[Hold, ...] = ()
    kept: tuple[Hold, ...] = ()
    kept_because: str | None = None


def _may_release(site: Site, actor: str, holds_: list[Hold]) -> str | None:
    """Why `actor` may not release these holds, or None: the same rule as
    `scelle hold release` (the role may, and someone other than who placed them)."""
    agent = get_agent(site, actor)
    grants = GRANTS.get(Role(agent.role)) if agent and agent.role in GRANTS else None
    if not grants or Permission.HOLD_RELEASE not in grants:
        return _(
            "{actor} may not release holds: a supervisor releases them (scelle hold release)"
        ).format(actor=actor)
    if any(same_agent(actor, h.placed_by) for h in holds_):
        return _(
            "{actor} placed them: another supervisor releases them (scelle hold release)"
        ).format(actor=actor)
    return None


def decide(site: Site, requisition_id: str, decision: str, actor: str, reason: str) -> Decision:
    """Approve, deny or cancel a received requisition; approve and deny need four eyes.

    A denied or cancelled requisition no longer needs its footage: its holds are released
    in the same transaction (recorded), when the decider may release them (a supervisor who
    did not place them); otherwise they are kept and the decision says so and why."""
    state, action = _DECISIONS[decision]
    nonempty(reason, _("the requisition has no reason for the decision"))
    requisition = get(site, requisition_id)
    if decision != "cancel" and same_agent(actor, requisition.registered_by):
        why = (
            _(
                "{actor} registered requisition {requisition} and cannot also approve it: "
                "a second person (a supervisor) must"
            )
            if decision == "approve"
            else _(
                "{actor} registered requisition {requisition} and cannot also deny it: "
                "a second person (a supervisor) must"
            )
        )
        refuse(
            site,
            actor,
            f"requisition {decision}",
            why.format(actor=actor, requisition=requisition_id),
        )
    ending = decision in ("deny", "cancel")
    active = [h for h in holds(site, requisition_id) if h.active] if ending else []
    blocked = _may_release(site, actor, active) if active else None
    now = stored_now()
    with site.db.write() as cur:
        # Checked again under the writer lock: a concurrent decision must not be overwritten
        # while the ledger records a decision that never took effect.
        (current,) = cur.execute(
            "SELECT state FROM requisition WHERE id = ?", [requisition_id]
        ).fetchone()
        if current != State.RECEIVED:
            raise InvalidStateError(
                _("requisition {requisition} is {state}, not received").format(
                    requisition=requisition_id, state=label("state", current)
                )
            )
        cur.execute(
            "UPDATE requisition SET state = ?, decided_by = ?, decided_at = ?, "
            "decision_reason = ? WHERE id = ? AND state = ?",
            [state.value, actor, now, reason, requisition_id, State.RECEIVED.value],
        )
        kept = [
            h
            for h in (HoldBook().refresh(cur).active() if ending else [])
            if h.requisition_id == requisition_id
        ]
        data: dict[str, Any] = {}
        if kept and blocked:
            data = {"holds_kept": [h.id for h in kept], "holds_kept_because": blocked}
        subject = {"requisition": requisition_id}
        records = [Record(action, subject, reason, requisition.pv_number, data=data)]
        released: list[Hold] = []
        if kept and not blocked:
            why = (
                _("requisition {requisition} denied: {reason}")
                if state is State.DENIED
                else _("requisition {requisition} cancelled: {reason}")
            ).format(requisition=requisition_id, reason=reason)
            mark_released(cur, kept, actor, why)
            records += release_entries(kept, why, requisition.pv_number)
            released, kept = kept, []
        site.ledger.append_in(cur, actor, records)
    return Decision(
        get(site, requisition_id), tuple(released), tuple(kept), blocked if kept else None
    )


def set_state(site: Site, requisition_id: str, state: State, **fields: str | None) -> None:
    """Record where an extraction stands (its ledger entries are written by the caller)."""
    sets = ", ".join(f"{name} = ?" for name in ["state", *fields])
    with site.db.write() as cur:
        cur.execute(
            f"UPDATE requisition SET {sets} WHERE id = ?",
            [state.value, *fields.values(), requisition_id],
        )


def last_entry_data(site: Site, requisition_id: str, action: str) -> dict[str, Any] | None:
    """The data of the requisition's last `action` entry, as the ledger holds it."""
    with site.db.read() as cur:
        row = cur.execute(
            "SELECT e.body FROM ledger_audit a JOIN ledger_entry e ON e.seq = a.seq "
            "WHERE a.requisition = ? AND a.action = ? ORDER BY a.seq DESC",
            [requisition_id, action],
        ).fetchone()
    if row is None:
        return None
    data = decode_entry(bytes(row[0])).get("data")
    return data if isinstance(data, dict) else None


def as_json(site: Site, requisition: Requisition) -> dict[str, Any]:
    """`requisition show --json`: the state, the windows, the holds, the export's path."""
    return {
        **requisition.row(),
        "legal_basis_text": LEGAL_BASES[requisition.legal_basis],
        "windows": [
            {
                "camera": camera.id,
                "from": local_text(w.start, camera.timezone),
                "to": local_text(w.end, camera.timezone),
                "from_utc": utc_text(w.start),
                "to_utc": utc_text(w.end),
            }
            for camera, w in windows(site, requisition.id)
        ],
        "holds": [
            {
                "id": h.id,
                "camera": h.camera_id,
                "from_utc": utc_text(h.start_us),
                "to_utc": utc_text(h.end_us),
                "released": h.released_at is not None,
            }
            for h in holds(site, requisition.id)
        ],
    }


def registered_summary(reg: Registered) -> list[str]:
    """Lines an operator must see at registration: urgency and unavailability."""
    lines = []
    for s in reg.windows:
        zone = s.camera.timezone
        when = {
            "camera": s.camera.id,
            "start": people_time(s.window.start, zone),
            "end": people_time(s.window.end, zone),
        }
        if s.unavailable:
            lines.append(
                _("UNAVAILABLE {camera} {start} to {end}: past retention, not kept").format(**when)
            )
            for at, cert in s.destroyed:
                lines.append(
                    "  "
                    + _("destroyed on schedule at {at}: certificate {certificate}").format(
                        at=people_text(at, zone), certificate=cert
                    )
                )
        elif s.urgent:
            lines.append(
                _("URGENT {camera} {start} to {end}: footage expires {expires}").format(
                    **when, expires=people_time(s.expires_at, zone)
                )
            )
        else:
            lines.append(_("held {camera} {start} to {end}").format(**when))
    return lines
