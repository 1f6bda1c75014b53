"""SQLModel tables of the custody core: the ledger, its tree, its checkpoints, the schema.

The ledger's entry bytes are the record; `ledger_node` holds the hash of every perfect
subtree (see custody/merkle.py) so that roots and proofs never read the whole log.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, LargeBinary, Text
from sqlmodel import Field, SQLModel

# INTEGER PRIMARY KEY is SQLite's rowid; BIGINT there would add a second index.
BigId = BigInteger().with_variant(Integer(), "sqlite")


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


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "schema_version"

    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    applied_at: str = Field(nullable=False)
    description: str = Field(nullable=False)
