"""SQLModel tables of the workflow: the camera register."""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class Camera(SQLModel, table=True):
    """A camera as its prefectoral authorisation and its recorder describe it."""

    __tablename__ = "camera"

    id: str = Field(primary_key=True)
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
    clock_offset_ms: int  # recorder clock minus reference clock
    clock_measured_at: str | None = None  # UTC, when the offset was measured
    clock_method: str | None = None  # how: NTP query, reference clock in view, ...
    created_at: str
