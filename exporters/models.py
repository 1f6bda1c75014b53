"""A camera of the register, as the code passes it around: a plain dataclass of the
`camera` table's columns (exporters/tables.py holds the table itself, from which only
the schema is made). Read through the driver (requisition/cameras.py), so that
everyday commands never import SQLModel and SQLAlchemy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Camera:
    """A camera as its prefectoral authorisation and its recorder describe it."""

    id: str
    name: str
    location: str
    commune: str
    authorisation_ref: str
    authorisation_expires: str  # ISO date
    retention_days: int  # 1..30 (CSI L252-5)
    timezone: str
    store_kind: str  # exporters.stores.StoreKind
    store_path: str  # absolute path of the store root
    store_camera: str  # the camera's name inside the store
    # StoreKind.TEMPLATE: the segments' path template, and names in UTC or local time
    # (NameClock); rows written before v9, or by hand, read as the layouts that fix both.
    store_template: str = ""
    store_time: str = "utc"
    clock_offset_ms: int  # recorder clock minus reference clock
    clock_measured_at: str | None = None  # UTC, when the offset was measured
    clock_method: str | None = None  # how: NTP query, reference clock in view, ...
    created_at: str

    def row(self) -> dict[str, Any]:
        """The camera's column values, in the table's order."""
        return asdict(self)


# The `camera` table's columns, in order (tests/test_schema.py checks them against it).
CAMERA_COLUMNS = tuple(f.name for f in fields(Camera))


def camera_of(row: Sequence[Any]) -> Camera:
    """A camera from a row of `SELECT <CAMERA_COLUMNS> FROM camera`."""
    return Camera(**dict(zip(CAMERA_COLUMNS, row, strict=True)))


# Camera fields a `camera.add` entry written before them lacks, and what their absence
# means (the register row and the purge compare each camera with its entry).
ADDED_LATER = {"store_template": "", "store_time": "utc"}
