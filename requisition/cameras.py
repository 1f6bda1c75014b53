"""The camera register: what each camera is, where it records, how far its clock is off.

Every change is written in the same transaction as its ledger entry: a camera is never
in the register without the entry that says who put it there. A CSV import is all or
nothing, and a bad row is named by its line number.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import Session, select

from custody.db import Cursor
from custody.errors import InputError, InvalidState
from custody.ledger import Record, utc_now
from custody.site import Site
from exporters.stores import StoreKind
from requisition.models import Camera
from requisition.timewindow import parse_time, to_us, utc_text

MAX_RETENTION_DAYS = 30  # CSI L252-5: never more than one month
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
            f"invalid {what} {value!r}: letters, digits, '.', '_' and '-' only, "
            "starting with a letter or digit"
        )
    return value


def store_root(store_path: str, home: Path) -> Path:
    """A store directory: absolute, or relative to the site; never through `..`."""
    path = Path(store_path)
    if not store_path.strip() or ".." in path.parts:
        raise InputError(f"invalid store path {store_path!r}: '..' is not allowed")
    return path if path.is_absolute() else home / path


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
        """Validate every field; InputError names the first bad one."""
        check_token(self.id, "camera id")
        for name in ("name", "location", "commune", "authorisation_ref"):
            if not getattr(self, name).strip():
                raise InputError(f"camera {self.id}: {name} is empty")
        try:
            expires = date.fromisoformat(self.authorisation_expires.strip()).isoformat()
        except ValueError as exc:
            raise InputError(
                f"camera {self.id}: authorisation_expires must be a date (YYYY-MM-DD), "
                f"not {self.authorisation_expires!r}"
            ) from exc
        retention = _int(self.retention_days, "retention_days", self.id)
        if not 1 <= retention <= MAX_RETENTION_DAYS:
            raise InputError(
                f"camera {self.id}: retention of {retention} days is not allowed: between 1 "
                f"and {MAX_RETENTION_DAYS} (CSI L252-5: never more than one month)"
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InputError(f"camera {self.id}: unknown time zone {self.timezone!r}") from exc
        try:
            kind = StoreKind(self.store_kind)
        except ValueError as exc:
            kinds = ", ".join(k.value for k in StoreKind)
            raise InputError(f"camera {self.id}: store_kind must be one of {kinds}") from exc
        root = store_root(self.store_path, home)
        store_camera = check_token(self.store_camera or self.id, "store camera name")
        offset = _int(self.clock_offset_ms, "clock_offset_ms", self.id)
        if abs(offset) > 86_400_000:
            raise InputError(f"camera {self.id}: a clock offset over a day is not credible")
        measured = None
        if self.clock_measured_at.strip():
            measured = utc_text(to_us(parse_time(self.clock_measured_at, self.timezone)))
        return Camera(
            id=self.id,
            name=self.name.strip(),
            location=self.location.strip(),
            commune=self.commune.strip(),
            authorisation_ref=self.authorisation_ref.strip(),
            authorisation_expires=expires,
            retention_days=retention,
            timezone=self.timezone,
            store_kind=kind.value,
            store_path=str(root),
            store_camera=store_camera,
            clock_offset_ms=offset,
            clock_measured_at=measured,
            clock_method=self.clock_method.strip() or None,
            created_at=utc_now(),
        )


def _int(text: str, name: str, camera: str) -> int:
    try:
        return int(text.strip())
    except ValueError as exc:
        raise InputError(f"camera {camera}: {name} must be a whole number, not {text!r}") from exc


def camera_record(camera: Camera, action: str, reason: str) -> Record:
    data = {k: v for k, v in camera.model_dump().items() if k != "created_at"}
    return Record(action, {"camera": camera.id}, reason, data=data)


def _insert(cur: Cursor, cameras: Sequence[Camera]) -> None:
    columns = list(Camera.model_fields)
    sql = f"INSERT INTO camera ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    cur.executemany(sql, [[getattr(c, name) for name in columns] for c in cameras])


def _existing(cur: Cursor, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        cur.execute(f"SELECT id FROM camera WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
        found |= {row[0] for row in cur.fetchall()}
    return found


def add_cameras(site: Site, cameras: Sequence[Camera], actor: str, reason: str) -> None:
    """Register cameras and their ledger entries in one transaction."""
    with site.db.write() as cur:
        taken = _existing(cur, [c.id for c in cameras])
        if taken:
            raise InvalidState(f"camera {sorted(taken)[0]} is already registered")
        _insert(cur, cameras)
        site.ledger.append_in(cur, actor, [camera_record(c, "camera.add", reason) for c in cameras])


def read_csv(path: Path, home: Path) -> list[Camera]:
    """Parse a camera inventory; one bad row rejects the file, naming its line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise InputError(f"no file {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError(f"{path} line 1: missing column {missing[0]!r}")
    known = {f.name for f in fields(CameraSpec)}
    unknown = [c for c in header if c not in known]
    if unknown:
        raise InputError(f"{path} line 1: unknown column {unknown[0]!r}")
    cameras: list[Camera] = []
    seen: set[str] = set()
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InputError(f"{path} line {reader.line_num}: {exc}") from exc
        line = reader.line_num
        if None in row or any(v is None for v in row.values()):
            raise InputError(f"{path} line {line}: wrong number of fields")
        values: dict[str, Any] = {k: v for k, v in row.items() if v != "" or k in REQUIRED}
        try:
            camera = CameraSpec(**values).to_camera(home)
        except InputError as exc:
            raise InputError(f"{path} line {line}: {exc.message}") from exc
        if camera.id in seen:
            raise InputError(f"{path} line {line}: camera {camera.id} appears twice")
        seen.add(camera.id)
        cameras.append(camera)
    if not cameras:
        raise InputError(f"{path}: no camera in the file")
    return cameras


def import_csv(site: Site, path: Path, actor: str) -> list[Camera]:
    """Import a CSV inventory: every camera or none."""
    cameras = read_csv(path, site.settings.home)
    try:
        add_cameras(site, cameras, actor, f"imported from {path.name}")
    except InvalidState as exc:
        raise InvalidState(f"{path}: {exc.message}; nothing imported") from exc
    return cameras


def list_cameras(site: Site) -> list[Camera]:
    with Session(site.db.engine) as session:
        return list(session.exec(select(Camera).order_by(Camera.id)))


def get_camera(site: Site, camera_id: str) -> Camera:
    check_token(camera_id, "camera id")
    with Session(site.db.engine) as session:
        camera = session.get(Camera, camera_id)
    if camera is None:
        raise InputError(f"unknown camera {camera_id!r}", hint="see 'scelle camera list'")
    return camera
