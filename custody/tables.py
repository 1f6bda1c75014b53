"""SQLModel tables of the custody core: the ledger, its tree, its checkpoints, the schema.

The ledger's entry bytes are the record; `ledger_node` holds the hash of every perfect
subtree (see custody/merkle.py) so that roots and proofs never read the whole log.
Only the schema is made from them (requisition/migrations.py): the ledger reads and
writes its tables through the driver (custody/db.py).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, Text
from sqlmodel import Field, SQLModel

# INTEGER PRIMARY KEY is SQLite's rowid; BIGINT there would add a second index.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# Text compared by bytes (SQLite's default; PostgreSQL's follows the database locale).
Ordered = String().with_variant(String(collation="C"), "postgresql")


class LedgerEntry(SQLModel, table=True):
    __tablename__ = "ledger_entry"

    seq: int = Field(sa_type=BigId, primary_key=True, sa_column_kwargs={"autoincrement": False})
    body: bytes = Field(sa_type=LargeBinary, nullable=False)


class LedgerNode(SQLModel, table=True):
    __tablename__ = "ledger_node"
    __table_args__ = {"sqlite_with_rowid": False}

    level: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    idx: int = Field(
        sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    hash: bytes = Field(sa_type=LargeBinary, nullable=False)


class LedgerCheckpoint(SQLModel, table=True):
    __tablename__ = "ledger_checkpoint"

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    tree_size: int = Field(sa_type=BigInteger, nullable=False)
    root: bytes = Field(sa_type=LargeBinary, nullable=False)
    note: str = Field(sa_type=Text, nullable=False)
    signed_at: str = Field(nullable=False)
    signed_by: str | None = None  # the login that added it (v6)
    station: str | None = None  # the workstation's checkpoint file it was written to (v6)


class LedgerCosignature(SQLModel, table=True):
    """A witness's cosignature line on one of this site's checkpoints (v10), as the
    witness answered it; checked against the witness policy whenever it is read, so a row
    planted around scelle proves nothing."""

    __tablename__ = "ledger_cosignature"

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    tree_size: int = Field(sa_type=BigInteger, nullable=False)
    root: bytes = Field(sa_type=LargeBinary, nullable=False)
    witness: str = Field(nullable=False)  # its key name
    line: str = Field(sa_type=Text, nullable=False)  # "— <name> <base64>"
    received_at: str = Field(nullable=False)


class LedgerTimestamp(SQLModel, table=True):
    """An RFC 3161 token on one of this site's checkpoints (v11): the TSA's answer on the
    checkpoint's body, as it came; checked against the TSA's CA whenever it is read."""

    __tablename__ = "ledger_timestamp"

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    tree_size: int = Field(sa_type=BigInteger, nullable=False)
    root: bytes = Field(sa_type=LargeBinary, nullable=False)
    tsa: str = Field(nullable=False)  # the URL it was asked of
    token: bytes = Field(sa_type=LargeBinary, nullable=False)  # DER TimeStampResp
    received_at: str = Field(nullable=False)


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "schema_version"

    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    applied_at: str = Field(nullable=False)
    description: str = Field(nullable=False)


class LedgerAudit(SQLModel, table=True):
    """Index of the ledger for auditors' queries: one row per entry, derived from it in
    the same transaction and append-only like it (custody/audit.py)."""

    __tablename__ = "ledger_audit"
    __table_args__ = (
        Index("ledger_audit_by_actor", "actor", "seq"),
        Index("ledger_audit_by_action", "action", "seq"),
    )

    seq: int = Field(
        sa_type=BigId,
        primary_key=True,
        foreign_key="ledger_entry.seq",  # no index row ahead of the log
        sa_column_kwargs={"autoincrement": False},
    )
    # Byte order (C collation) for the range comparisons of periods and action families,
    # whatever the PostgreSQL database's locale.
    time: str = Field(sa_type=Ordered, nullable=False, index=True)
    actor: str = Field(nullable=False)
    action: str = Field(sa_type=Ordered, nullable=False)
    requisition: str | None = Field(default=None, index=True)
    procedure: str | None = Field(default=None, index=True)
    unit: str | None = None


class LedgerAuditCamera(SQLModel, table=True):
    """Which cameras an entry touched (an extraction may touch several)."""

    __tablename__ = "ledger_audit_camera"
    __table_args__ = (
        # Every `ledger verify` reads the index chunk by chunk of seq (v6).
        Index("ledger_audit_camera_by_seq", "seq", "camera"),
        {"sqlite_with_rowid": False},
    )

    camera: str = Field(primary_key=True)
    seq: int = Field(
        sa_type=BigInteger,
        primary_key=True,
        foreign_key="ledger_entry.seq",
        sa_column_kwargs={"autoincrement": False},
    )


class LedgerPolicy(SQLModel, table=True):
    """Which roles may record each ledger action: what PostgreSQL's `scelle_append`
    checks (custody/pg_ledger.py). Written by the tables' owner at each upgrade."""

    __tablename__ = "ledger_policy"

    action: str = Field(sa_type=Ordered, primary_key=True)
    roles: str = Field(nullable=False)  # comma-separated role names
