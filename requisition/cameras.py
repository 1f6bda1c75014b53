"""The camera register: what each camera is, where it records, how far its clock is off.

Every change is written in the same transaction as its ledger entry: a camera is never
in the register without the entry that says who put it there. A CSV import is all or
nothing, and a bad row is named by its line number.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import Session, select

from custody import text
from custody.db import Cursor
from custody.entry import Record, utc_now
from custody.errors import InputError, IntegrityError, InvalidStateError
from custody.site import Site
from custody.timewindow import parse_time, stored_utc, to_us
from exporters.index import ScanReport, scan_camera
from exporters.models import Camera
from exporters.stores import StoreKind

MAX_RETENTION_DAYS = 30  # CSI L252-5: never more than one month
CameraRow = dict[str, Any]  # a checked camera: its column values, as the table holds them
TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
REQUIRED = ("id", "name", "location", "commune", "authorisation_ref", "authorisation_expires")
OPTIONAL = {
    "retention_days": "30",
    "timezone": "Europe/Paris",
    "store_kind": StoreKind.SCELLE.value,
    "store_path": "footage",
    "store_camera": "",
    "clock_offset_ms": "0",
    "clock_measured_at": "",
    "clock_method": "",
}


def check_token(value: str, what: str) -> str:
    """Identifiers that become path components: no separators, no dots in front."""
    if not TOKEN.fullmatch(value) or ".." in value:
        raise InputError(
            f"invalid {what} {text.shown(value)}: letters, digits, '.', '_' and '-' only, "
            "starting with a letter or digit"
        )
    return value


def store_root(store_path: str, home: Path) -> Path:
    """A store directory: absolute, or relative to the site; never through `..`."""
    path = Path(store_path)
    if not store_path.strip() or ".." in path.parts:
        raise InputError(f"invalid store path {text.shown(store_path)}: '..' is not allowed")
    return path if path.is_absolute() else home / path


def store_problem(root: Path) -> str | None:
    """Why `root` cannot be a footage store, or None: it must be a directory, or not exist
    yet (the recorder creates it). A file there (`/etc/passwd`) would break every scan."""
    try:
        if root.exists() and not root.is_dir():
            return f"store {root} exists and is not a directory"
    except OSError as exc:  # a path too long, a component that is a file
        return f"store {root} cannot be used: {exc.strerror or exc}"
    return None


@dataclass(frozen=True)
class CameraSpec:
    """A camera as typed by an operator or read from a CSV row: all text, unchecked."""

    id: str
    name: str
    location: str
    commune: str
    authorisation_ref: str
    authorisation_expires: str
    retention_days: str = OPTIONAL["retention_days"]
    timezone: str = OPTIONAL["timezone"]
    store_kind: str = OPTIONAL["store_kind"]
    store_path: str = OPTIONAL["store_path"]
    store_camera: str = OPTIONAL["store_camera"]
    clock_offset_ms: str = OPTIONAL["clock_offset_ms"]
    clock_measured_at: str = OPTIONAL["clock_measured_at"]
    clock_method: str = OPTIONAL["clock_method"]

    def to_camera(self, home: Path) -> Camera:
        """Validate every field; InputError names the camera and the first bad field."""
        return Camera(**self.row(home))

    def row(self, home: Path, created_at: str | None = None) -> CameraRow:
        """The camera's column values once every field is valid (InputError naming the
        camera and the first bad field). An import builds rows, not ORM objects: pydantic's
        validation and SQLAlchemy's instrumentation cost more than all the checks here.

        `created_at` (default: now) lets an import stamp all its cameras with one time."""
        check_token(self.id, "camera id")
        label = f"camera {self.id}: "
        for name in _FIELDS:
            check = text.path_text if name == "store_path" else text.line
            check(getattr(self, name), label + name)
        for name in ("name", "location", "commune", "authorisation_ref"):
            if not getattr(self, name).strip():
                raise InputError(f"camera {self.id}: {name} is empty")
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InputError(
                f"camera {self.id}: unknown time zone {text.shown(self.timezone)}"
            ) from exc
        try:
            expires = date.fromisoformat(self.authorisation_expires.strip())
        except ValueError as exc:
            raise InputError(
                f"camera {self.id}: authorisation_expires must be a date (YYYY-MM-DD), "
                f"not {text.shown(self.authorisation_expires)}"
            ) from exc
        if expires < datetime.now(zone).date():
            raise InputError(
                f"camera {self.id}: authorisation {self.authorisation_ref.strip()} expired on "
                f"{expires.isoformat()}: a camera is registered under an authorisation in force"
            )
        retention = text.whole_number(
            self.retention_days, f"camera {self.id}: retention_days", high=10**6
        )
        if not 1 <= retention <= MAX_RETENTION_DAYS:
            raise InputError(
                f"camera {self.id}: retention of {retention} days is not allowed: between 1 "
                f"and {MAX_RETENTION_DAYS} (CSI L252-5: never more than one month)"
            )
        try:
            kind = StoreKind(self.store_kind)
        except ValueError as exc:
            kinds = ", ".join(k.value for k in StoreKind)
            raise InputError(f"camera {self.id}: store_kind must be one of {kinds}") from exc
        root = store_root(self.store_path, home)
        problem = store_problem(root)
        if problem:
            raise InputError(f"camera {self.id}: {problem}")
        store_camera = check_token(self.store_camera or self.id, "store camera name")
        offset = text.whole_number(
            self.clock_offset_ms,
            f"camera {self.id}: clock_offset_ms",
            signed=True,
            low=-(10**12),
            high=10**12,
        )
        if abs(offset) > 86_400_000:
            raise InputError(f"camera {self.id}: a clock offset over a day is not credible")
        measured = None
        if self.clock_measured_at.strip():
            measured = stored_utc(to_us(parse_time(self.clock_measured_at, self.timezone)))
        return {
            "id": self.id,
            "name": self.name.strip(),
            "location": self.location.strip(),
            "commune": self.commune.strip(),
            "authorisation_ref": self.authorisation_ref.strip(),
            "authorisation_expires": expires.isoformat(),
            "retention_days": retention,
            "timezone": self.timezone,
            "store_kind": kind.value,
            "store_path": str(root),
            "store_camera": store_camera,
            "clock_offset_ms": offset,
            "clock_measured_at": measured,
            "clock_method": self.clock_method.strip() or None,
            "created_at": created_at or utc_now(),
        }


_FIELDS = tuple(f.name for f in fields(CameraSpec))


def camera_record(camera: Camera | CameraRow, action: str, reason: str) -> Record:
    row = camera.model_dump() if isinstance(camera, Camera) else camera
    data = {k: v for k, v in row.items() if k != "created_at"}
    return Record(action, {"camera": row["id"]}, reason, data=data)


def _insert(cur: Cursor, rows: Sequence[CameraRow]) -> None:
    columns = list(Camera.model_fields)
    cur.insert(f"camera ({', '.join(columns)})", [[r[name] for name in columns] for r in rows])


def _existing(cur: Cursor, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        cur.execute(f"SELECT id FROM camera WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
        found |= {row[0] for row in cur.fetchall()}
    return found


def add_cameras(site: Site, cameras: Sequence[Camera], actor: str, reason: str) -> None:
    """Register cameras and their ledger entries in one transaction."""
    add_rows(site, [c.model_dump() for c in cameras], actor, reason)


def add_rows(site: Site, rows: Sequence[CameraRow], actor: str, reason: str) -> None:
    """Register checked cameras (`CameraSpec.row`) and one `camera.add` entry each, in one
    transaction: all of them, or none."""
    records = [camera_record(r, "camera.add", reason) for r in rows]
    with site.db.write() as cur:
        taken = _existing(cur, [r["id"] for r in rows])
        if taken:
            raise InvalidStateError(f"camera {sorted(taken)[0]} is already registered")
        _insert(cur, rows)
        site.ledger.append_in(cur, actor, records)


def read_csv(path: Path, home: Path) -> list[CameraRow]:
    """Parse a camera inventory; one bad row rejects the file, naming its line."""
    try:
        content = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise InputError(f"no file {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    # newline="": the csv module splits lines itself (str.splitlines would also split
    # at \x1c-\x1e and U+2028, inside a field).
    reader = csv.reader(io.StringIO(content, newline=""))
    try:
        header = next(reader, [])
    except csv.Error as exc:
        raise InputError(f"{path} line 1: {exc}") from exc
    doubled = [c for i, c in enumerate(header) if c in header[:i]]
    if doubled:
        raise InputError(f"{path} line 1: column {text.shown(doubled[0])} appears twice")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError(f"{path} line 1: missing column {missing[0]!r}")
    known = {f.name for f in fields(CameraSpec)}
    unknown = [c for c in header if c not in known]
    if unknown:
        raise InputError(f"{path} line 1: unknown column {text.shown(unknown[0])}")
    cameras: list[CameraRow] = []
    seen: set[str] = set()
    created_at = utc_now()
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InputError(f"{path} line {reader.line_num}: {exc}") from exc
        line = reader.line_num
        if not row:
            continue  # a blank line, as DictReader skips it
        if len(row) != len(header):
            raise InputError(f"{path} line {line}: wrong number of fields")
        values: dict[str, Any] = {
            k: v for k, v in zip(header, row, strict=True) if v != "" or k in REQUIRED
        }
        try:
            camera = CameraSpec(**values).row(home, created_at)
        except InputError as exc:
            raise InputError(f"{path} line {line}: {exc.message}") from exc
        if camera["id"] in seen:
            raise InputError(f"{path} line {line}: camera {camera['id']} appears twice")
        seen.add(camera["id"])
        cameras.append(camera)
    if not cameras:
        raise InputError(f"{path}: no camera in the file")
    return cameras


def import_csv(site: Site, path: Path, actor: str) -> list[str]:
    """Import a CSV inventory: every camera or none. Returns the ids imported."""
    rows = read_csv(path, site.settings.home)
    try:
        add_rows(site, rows, actor, f"imported from {path.name}")
    except InvalidStateError as exc:
        raise InvalidStateError(f"{path}: {exc.message}; nothing imported") from exc
    return [r["id"] for r in rows]


def scan_all(
    site: Site,
    cameras: Sequence[Camera],
    actor: str,
    progress: Callable[[Camera], None] | None = None,
) -> tuple[ScanReport, list[tuple[str, str]]]:
    """Index every camera whose store can be read, and name the others with why (a file
    where the store directory should be, a directory scelle may not read): one unusable
    store must not stop the night's scan of all the other cameras."""
    report = ScanReport()
    skipped: list[tuple[str, str]] = []
    for camera in cameras:
        problem = store_problem(Path(camera.store_path))
        if problem is None:
            try:
                scan_camera(site, camera, actor, report)
            except OSError as exc:  # nothing of this camera was written (its transaction)
                where = f" ({exc.filename})" if exc.filename else ""
                problem = f"store {camera.store_path} cannot be read: {exc.strerror}{where}"
        if problem is not None:
            skipped.append((camera.id, problem))
        if progress:
            progress(camera)
    return report, skipped


def _recorded(cur: Cursor, camera_id: str | None = None) -> dict[str, dict[str, Any]]:
    """What each camera's `camera.add` entry recorded (its bytes are proven by
    `ledger verify`; here they are only read)."""
    where, params = "a.action = 'camera.add'", []
    if camera_id is not None:
        where += " AND c.camera = ?"
        params.append(camera_id)
    cur.execute(
        "SELECT c.camera, e.body FROM ledger_audit_camera c JOIN ledger_audit a ON a.seq = c.seq "
        f"JOIN ledger_entry e ON e.seq = a.seq WHERE {where} ORDER BY a.seq",
        params,
    )
    found: dict[str, dict[str, Any]] = {}
    for named, body in cur.fetchall():
        data = json.loads(bytes(body)).get("data")
        if isinstance(data, dict) and data.get("id") == named:
            found[named] = data
    return found


def _vouched(camera: Camera, recorded: dict[str, dict[str, Any]]) -> Camera:
    """The camera, if its register row is what its ledger entry recorded: a row planted
    or edited around scelle (another store, another authorisation) is never used."""
    data = recorded.get(camera.id)
    if data is None:
        raise IntegrityError(
            f"camera {camera.id} is in the register but no camera.add entry of the ledger "
            "put it there: a row planted around scelle",
            hint="the database owner removes it; run 'scelle ledger verify'",
        )
    row = {k: v for k, v in camera.model_dump().items() if k != "created_at"}
    differs = sorted(k for k in row if row[k] != data.get(k))
    if differs:
        raise IntegrityError(
            f"camera {camera.id}: its register row differs from its camera.add ledger entry "
            f"({', '.join(differs)}): edited around scelle",
            hint="the database owner restores it; run 'scelle ledger verify'",
        )
    return camera


def list_cameras(site: Site, problems: list[str] | None = None) -> list[Camera]:
    """The register: cameras whose row is what their camera.add entry recorded. A row
    planted or edited around scelle is left out, and said in `problems`."""
    with Session(site.db.engine) as session:
        cameras = list(session.exec(select(Camera).order_by(Camera.id)))
    with site.db.read() as cur:
        recorded = _recorded(cur)
    vouched = []
    for camera in cameras:
        try:
            vouched.append(_vouched(camera, recorded))
        except IntegrityError as exc:
            if problems is not None:
                problems.append(exc.message)
    return vouched


def get_camera(site: Site, camera_id: str) -> Camera:
    check_token(camera_id, "camera id")
    with Session(site.db.engine) as session:
        camera = session.get(Camera, camera_id)
    if camera is None:
        raise InputError(f"unknown camera {camera_id!r}", hint="see 'scelle camera list'")
    with site.db.read() as cur:
        return _vouched(camera, _recorded(cur, camera_id))
