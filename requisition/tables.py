"""SQLModel tables of the workflow: requisitions and their windows, holds, agents, purge
runs, destroyed periods (the camera register is the footage index's: exporters/tables.py).

Only the schema is made from them (requisition/migrations.py): the code reads and
writes these tables through the driver (custody/db.py); a requisition travels as
requisition.models.Requisition, a plain dataclass of the same columns."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer
from sqlmodel import Field, SQLModel

BigId = BigInteger().with_variant(Integer(), "sqlite")


class Requisition(SQLModel, table=True):
    """A judicial requisition as received, and where it stands."""

    __tablename__ = "requisition"

    id: str = Field(primary_key=True)  # 2026-00042
    legal_basis: str  # CPP article: 60-1, 77-1-1, 99-3
    prosecutor_authorisation: str | None = None  # required for 77-1-1
    pv_number: str
    officer_name: str
    officer_unit: str
    received_via: str  # email, letter, fax, phone, in person, platform
    received_at: str  # UTC
    deadline: str | None = None  # UTC
    reason: str
    state: str
    registered_by: str
    registered_at: str  # UTC
    decided_by: str | None = None  # the supervisor who approved or denied
    decided_at: str | None = None
    decision_reason: str | None = None
    export_path: str | None = None
    manifest_sha256: str | None = None
    handed_to: str | None = None  # officer and unit
    handed_at: str | None = None
    medium: str | None = None  # USB key, DVD, download
    seal_number: str | None = None


class RequisitionWindow(SQLModel, table=True):
    """One (camera, window) pair of a requisition; times are reference UTC µs."""

    __tablename__ = "requisition_window"

    requisition_id: str = Field(primary_key=True, foreign_key="requisition.id")
    position: int = Field(primary_key=True)
    camera_id: str = Field(foreign_key="camera.id")
    start_us: int = Field(sa_type=BigInteger)
    end_us: int = Field(sa_type=BigInteger)


class Hold(SQLModel, table=True):
    """Footage kept past its retention because a procedure needs it."""

    __tablename__ = "hold"

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    camera_id: str = Field(foreign_key="camera.id")
    start_us: int = Field(sa_type=BigInteger)
    end_us: int = Field(sa_type=BigInteger)
    reason: str
    procedure: str | None = None
    requisition_id: str | None = Field(default=None, foreign_key="requisition.id")
    placed_by: str
    placed_at: str
    released_by: str | None = None
    released_at: str | None = None
    release_reason: str | None = None


class Agent(SQLModel, table=True):
    """An individually designated agent (CSI L252-2): who may act, in which role.

    The row says who may act now; its history (designation, disabling) is in the ledger.
    """

    __tablename__ = "agent"

    login: str = Field(primary_key=True)  # OS login (SQLite) or PostgreSQL role
    name: str
    role: str  # requisition.agents.Role
    designation: str  # reference of the designation order (arrêté, décision)
    active: bool
    added_by: str
    added_at: str  # UTC
    disabled_by: str | None = None
    disabled_at: str | None = None
    disabled_reason: str | None = None
    # Décret 2023-1102 logs the surname and first name apart; `name` is the two as people
    # read them ("Marie DURAND"). Agents designated before (schema v8) keep their one
    # name as their surname, with no first name.
    surname: str = ""
    first_name: str = ""


class PurgeRun(SQLModel, table=True):
    """One retention purge: its intent is recorded before any file is deleted."""

    __tablename__ = "purge_run"

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    started_at: str  # the system clock when it started (UTC)
    now_utc: str  # the purge's "as of" (now, or earlier with the library's as_of)
    actor: str
    state: str  # intent, done, partial
    segments: int
    bytes: int = Field(sa_type=BigInteger)
    failures: int = 0
    certificate: str | None = None
    intent_seqs: str | None = None  # JSON list of the intent's ledger entries
    outcome_seqs: str | None = None  # JSON list of the outcome's ledger entries
    tally: str | None = None  # JSON: absent and spared per camera, failures, batch by batch


class DestroyedPeriod(SQLModel, table=True):
    """What a purge run destroyed of a camera, once certified and compacted out of the
    footage index (v14): a stretch of segments without a gap, starting within one day of
    the site's zone, with what the register and a requisition's status read of them.
    Times are the recorder's clock, as the segment rows were."""

    __tablename__ = "destroyed_period"
    __table_args__ = (Index("destroyed_period_by_time", "camera_id", "start_us"),)

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    purge_run: int = Field(sa_type=BigInteger)
    camera_id: str
    start_us: int = Field(sa_type=BigInteger)  # the first segment's start
    end_us: int = Field(sa_type=BigInteger)  # the latest end among its segments
    segments: int
    bytes: int = Field(sa_type=BigInteger)
    destroyed_at: str  # UTC, the earliest of its segments'
    last_destroyed_at: str  # UTC, the latest
    cut_us: int = Field(sa_type=BigInteger)  # next midnight of the site's zone (recorder clock)
    tail_segments: int  # of its segments, those that end after `cut_us`
    tail_start_us: int | None = Field(default=None, sa_type=BigInteger)
    tail_destroyed_at: str | None = None
