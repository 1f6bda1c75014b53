"""`scelle db copy`: move a site's database (SQLite to PostgreSQL, usually), losing nothing.

The source ledger is verified first, the target is migrated to the current schema and
must be empty, every table is copied in one target transaction (foreign keys first,
the ledger's own triggers checking every entry is appended in order), sequences are
moved past the copied ids, and the target ledger is verified in full: same size, same
root. The source is left as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import MetaData, Table, func, insert, select, text

from custody.config import Settings
from custody.db import Database
from custody.errors import IntegrityError, InvalidStateError
from custody.i18n import _
from custody.text import shown
from custody.verify import verify_ledger

BATCH = 5000


@dataclass(frozen=True)
class Copied:
    rows: dict[str, int]
    entries: int
    root: bytes


def _tables(metadata: MetaData) -> list[Table]:
    """Every table, in foreign-key order, the entries first (the tree's nodes and the
    audit index may only follow them); the target's own schema version and ledger
    policy (written by its upgrade) are not copied."""
    own = {"schema_version", "ledger_policy"}
    tables = [t for t in metadata.sorted_tables if t.name not in own]
    return sorted(tables, key=lambda t: t.name != "ledger_entry")


def _storable_in_postgresql(table: Table, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL text cannot hold a NUL character, which SQLite stores (scelle refuses it
    at input now; a row written before may hold one): name the row in one line rather than
    fail deep in the driver. The target's transaction is rolled back: it stays empty."""
    for row in rows:
        for column, value in row.items():
            if isinstance(value, str) and "\x00" in value:
                key = ", ".join(
                    f"{c.name}={shown(str(row[c.name]), 40)}" for c in table.primary_key.columns
                )
                raise InvalidStateError(
                    _(
                        "table {table}, row {key}: {column} holds a NUL character, which "
                        "PostgreSQL cannot store; nothing was copied"
                    ).format(table=table.name, key=key, column=column),
                    hint=_("correct that value in the source database, then copy again"),
                )


def copy_database(
    source: Database,
    target: Database,
    settings: Settings,
    *,
    upgrade: Callable[[Database], object],
    metadata: MetaData,
    progress: Callable[[str, int], None] | None = None,
) -> Copied:
    """Copy every row of `source` into the empty database `target` (brought to the
    current schema by `upgrade`; `metadata` names every table); verify both ledgers."""
    before = verify_ledger(source, settings)
    upgrade(target)
    with target.engine.connect() as conn:
        if conn.execute(text("SELECT COUNT(*) FROM ledger_entry")).scalar():
            raise InvalidStateError(
                _("the target database already holds a ledger"),
                hint=_("copy into an empty database"),
            )
    rows: dict[str, int] = {}
    with source.engine.connect() as src, target.engine.begin() as dst:
        for table in _tables(metadata):
            order = list(table.primary_key.columns) or list(table.columns)
            result = src.execution_options(stream_results=True).execute(
                select(table).order_by(*order)
            )
            count = 0
            while batch := result.fetchmany(BATCH):
                values = [dict(r._mapping) for r in batch]
                if not target.is_sqlite:
                    _storable_in_postgresql(table, values)
                dst.execute(insert(table), values)
                count += len(batch)
                if progress is not None:
                    progress(table.name, count)
            rows[table.name] = count
            if target.is_sqlite:
                continue
            for column in table.primary_key.columns:
                if column.autoincrement is True or (
                    column.autoincrement == "auto"
                    and len(table.primary_key.columns) == 1
                    and column.type.python_type is int
                ):
                    sequence = dst.execute(
                        select(func.pg_get_serial_sequence(table.name, column.name))
                    ).scalar()
                    if sequence and count:
                        dst.execute(
                            select(
                                func.setval(sequence, select(func.max(column)).scalar_subquery())
                            )
                        )
    after = verify_ledger(target, settings)
    if (after.entries, after.root) != (before.entries, before.root):
        raise IntegrityError(_("the copied ledger differs from the source"))
    return Copied(rows, after.entries, after.root)
