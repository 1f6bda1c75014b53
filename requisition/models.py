"""A requisition, as the code passes it around: a plain dataclass of the `requisition`
table's columns (requisition/tables.py holds the table itself, from which only the
schema is made). Read through the driver (requisition/requisitions.py), so that
everyday commands never import SQLModel and SQLAlchemy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Requisition:
    """A judicial requisition as received, and where it stands."""

    id: str  # 2026-00042
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

    def row(self) -> dict[str, Any]:
        """The requisition's column values, in the table's order."""
        return asdict(self)


# The `requisition` table's columns, in order (tests/test_schema.py checks them).
REQUISITION_COLUMNS = tuple(f.name for f in fields(Requisition))


def requisition_of(row: Sequence[Any]) -> Requisition:
    """A requisition from a row of `SELECT <REQUISITION_COLUMNS> FROM requisition`."""
    return Requisition(**dict(zip(REQUISITION_COLUMNS, row, strict=True)))
