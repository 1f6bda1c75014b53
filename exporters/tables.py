"""SQLModel tables of the footage index: the cameras (where each records, its clock, its
authorisation), segments, their ingest batches, scan state.

Times are integer microseconds since the epoch, in the *recorder's* clock (as the
segment names say); a camera's clock offset turns them into reference time.

Only the schema is made from them (requisition/migrations.py): the code reads and
writes these tables through the driver (custody/db.py), and a camera travels as
exporters.models.Camera, a plain dataclass of the same columns, so that everyday
commands never import SQLModel and SQLAlchemy.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

BigId = BigInteger().with_variant(Integer(), "sqlite")


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
    # StoreKind.TEMPLATE: the segments' path template, and names in UTC or local time
    # (NameClock); the same defaults in the database as in a v9 upgrade (rows written
    # before, or by hand, read as the layouts that fix both).
    store_template: str = Field(default="", sa_column_kwargs={"server_default": ""})
    store_time: str = Field(default="utc", sa_column_kwargs={"server_default": "utc"})
    clock_offset_ms: int  # recorder clock minus reference clock
    clock_measured_at: str | None = None  # UTC, when the offset was measured
    clock_method: str | None = None  # how: NTP query, reference clock in view, ...
    created_at: str


class Segment(SQLModel, table=True):
    __tablename__ = "segment"
    __table_args__ = (
        UniqueConstraint("camera_id", "path"),
        Index("segment_by_time", "camera_id", "start_us"),
        Index("segment_by_end", "camera_id", "end_us"),
        Index("segment_by_batch", "batch_id"),  # the purge checks rows batch by batch (v6)
    )

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    camera_id: str = Field(foreign_key="camera.id")
    path: str  # relative to the store root
    start_us: int = Field(sa_type=BigInteger)
    end_us: int = Field(sa_type=BigInteger)
    size: int = Field(sa_type=BigInteger)
    sha256: str  # hex, computed at ingest
    batch_id: int = Field(sa_type=BigInteger, foreign_key="ingest_batch.id")
    purge_run: int | None = Field(default=None, sa_type=BigInteger)  # set at the intent
    destroyed_at: str | None = None  # UTC, once the file is gone


class IngestBatch(SQLModel, table=True):
    """One ledger entry's worth of ingest: a camera, an hour, the Merkle root of its
    segment records."""

    __tablename__ = "ingest_batch"

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    camera_id: str = Field(foreign_key="camera.id")
    hour_us: int = Field(sa_type=BigInteger)  # start of the UTC hour (recorder clock)
    segments: int
    bytes: int = Field(sa_type=BigInteger)
    merkle_root: str  # hex
    ledger_seq: int = Field(sa_type=BigInteger)


class ScanState(SQLModel, table=True):
    """A store directory's modification time at the last scan: unchanged, not re-listed."""

    __tablename__ = "scan_state"

    camera_id: str = Field(primary_key=True)
    directory: str = Field(primary_key=True)
    mtime_ns: int = Field(sa_type=BigInteger)
