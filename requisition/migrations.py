"""The site's schema: every table (custody's, the footage index's, the workflow's), the
numbered steps that build it, and what PostgreSQL's application role may write. Given
to custody/schema.py's runner, which knows only the ledger's own tables.

Rule: a migration, once released, is never edited; a model change adds a new step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from custody import schema
from custody.db import Database
from custody.schema import Migration, Plan, add_columns, create, raw_cursor, run_plpgsql
from requisition import purge_sql
from requisition.roles import action_roles

if TYPE_CHECKING:  # SQLAlchemy is imported only when the schema is changed
    from sqlalchemy import Connection, MetaData


def metadata() -> MetaData:
    """Every model's table (SQLModel is imported only when the schema is changed, which
    keeps it out of the start-up of ordinary commands)."""
    from sqlmodel import SQLModel

    import custody.tables  # noqa: F401 - registers the tables
    import exporters.tables  # noqa: F401
    import requisition.tables  # noqa: F401

    return SQLModel.metadata


def _v2_footage(conn: Connection, md: MetaData) -> None:
    create(conn, md, "camera", "ingest_batch", "segment", "scan_state")


def _v3_requisitions(conn: Connection, md: MetaData) -> None:
    create(conn, md, "requisition", "requisition_window", "hold")


def _v4_purge(conn: Connection, md: MetaData) -> None:
    add_columns(conn, "segment", {"purge_run": "BIGINT", "destroyed_at": "VARCHAR"})
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS segment_by_end ON segment (camera_id, end_us)")
    create(conn, md, "purge_run")


def _v5_agents_and_audit(conn: Connection, md: MetaData) -> None:
    create(conn, md, "agent")
    schema.audit_index(conn, md)


def _v6_guards(conn: Connection, md: MetaData) -> None:
    """The purge obeys the ledger; PostgreSQL checks every append and checkpoint."""
    from requisition.holds import restate
    from requisition.purge_rows import backfill_runs

    schema.checked_appends(conn, md)
    add_columns(conn, "purge_run", {"intent_seqs": "TEXT", "outcome_seqs": "TEXT", "tally": "TEXT"})
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS segment_by_batch ON segment (batch_id)")
    if conn.dialect.name == "postgresql":
        run_plpgsql(conn, purge_sql.PG_PURGE)
    # Holds placed before v6 were decided by the table: restate those in force in the
    # ledger, which the purge now reads (requisition/holds.py); runs recorded before v6
    # get their entries' seqs.
    login = schema.login(conn)
    cursor = raw_cursor(conn)
    try:
        restate(cursor, login)
        backfill_runs(cursor)
    finally:
        cursor.raw.close()


# Instants written before v7 in the short form (`…:20Z`, microseconds only when not
# zero), which sorts after `…:20.500000Z` though it is earlier. Camera rows keep theirs:
# each must equal its camera.add entry, which recorded them as they were.
SHORT_INSTANTS = {
    "hold": ("placed_at", "released_at"),
    "segment": ("destroyed_at",),
    "purge_run": ("started_at", "now_utc"),
    "requisition": ("received_at", "deadline", "registered_at", "decided_at", "handed_at"),
    "agent": ("added_at", "disabled_at"),
    "schema_version": ("applied_at",),
}


def _v7_instants(conn: Connection, md: MetaData) -> None:
    """One fixed-width form for every stored instant (custody.timewindow.stored_utc), so
    that text order is time order in every comparison and ORDER BY."""
    for table, columns in SHORT_INSTANTS.items():
        for column in columns:
            conn.exec_driver_sql(
                f"UPDATE {table} SET {column} = substr({column}, 1, 19) || '.000000Z' "
                f"WHERE length({column}) = 20 AND substr({column}, 20, 1) = 'Z'"
            )


def _v8_agent_names(conn: Connection, md: MetaData) -> None:
    """Décret 2023-1102 logs each agent's surname and first name apart. An agent
    designated before keeps their one name as their surname, with no first name:
    splitting it would guess ("Jean de La Fontaine", "DURAND Marie"), and a wrong guess
    would stand on legal papers; `scelle agent rename` records both, in the ledger."""
    text = "VARCHAR NOT NULL DEFAULT ''"
    add_columns(conn, "agent", {"surname": text, "first_name": text})
    conn.exec_driver_sql("UPDATE agent SET surname = name WHERE surname = ''")


def _v9_store_templates(conn: Connection, md: MetaData) -> None:
    """Any recorder's layout: a camera's path template, and whether its names are UTC or
    local time (exporters/stores/template.py); the cameras before keep their layout."""
    add_columns(
        conn,
        "camera",
        {
            "store_template": "VARCHAR NOT NULL DEFAULT ''",
            "store_time": "VARCHAR NOT NULL DEFAULT 'utc'",
        },
    )


# Partial indexes of the live rows (issue 19): a destroyed segment's row stays (the
# certificates and the register read it), but find, the purge's plan and the summaries
# walk only what is live, so their cost follows what is live, not the site's history.
LIVE_INDEXES = (
    "CREATE INDEX IF NOT EXISTS segment_live_by_time ON segment (camera_id, start_us) "
    "WHERE destroyed_at IS NULL",
    "CREATE INDEX IF NOT EXISTS segment_live_by_end ON segment (camera_id, end_us) "
    "WHERE destroyed_at IS NULL",
    # a run's rows: resuming a crashed purge, a certificate (was a scan of the table)
    "CREATE INDEX IF NOT EXISTS segment_by_run ON segment (purge_run) WHERE purge_run IS NOT NULL",
)


def _v12_live_index(conn: Connection, md: MetaData) -> None:
    """The footage index's live queries never walk the destroyed history."""
    for statement in LIVE_INDEXES:
        conn.exec_driver_sql(statement)


def _v13_run_index(conn: Connection, md: MetaData) -> None:
    """A run's rows in the order the purge records them (camera, then time): the intent,
    the outcome, the certificate and the deleting batches stream them from the index
    instead of sorting a night's million rows."""
    conn.exec_driver_sql("DROP INDEX IF EXISTS segment_by_run")
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS segment_by_run_time ON segment "
        "(purge_run, camera_id, start_us) WHERE purge_run IS NOT NULL"
    )


def _v14_periods(conn: Connection, md: MetaData) -> None:
    """Certified destructions leave the footage index for per-period records (the rows
    themselves are moved by requisition/purge_history.py, which knows the site's zone:
    at the next purge, or by `scelle db upgrade` right after this step)."""
    create(conn, md, "destroyed_period")
    if conn.dialect.name == "postgresql":
        run_plpgsql(conn, purge_sql.PG_COMPACT)


# What the application role may change in the workflow's tables: only the columns scelle
# changes, never a row's identity, times or paths; no DELETE but of the scan's bookkeeping.
# The purge's own rows and marks go through SECURITY DEFINER functions (purge_sql) that
# only a purging role may call. What decides what is kept is read from the ledger anyway
# (requisition/purge_rows.py).
APP_WRITES = {
    "camera": ["INSERT"],
    "ingest_batch": ["INSERT"],
    # a scan's columns only: a row born claimed by a purge run or destroyed would be counted
    # in that run's outcome and certificate, then compacted away (purge_history)
    "segment": ["INSERT (camera_id, path, start_us, end_us, size, sha256, batch_id)"],
    "scan_state": ["INSERT", "DELETE"],
    "ledger_cosignature": ["INSERT"],  # verified against the policy whenever read
    "ledger_timestamp": ["INSERT"],  # verified against the TSA's CA whenever read
    "requisition": [
        "INSERT",
        "UPDATE (state, decided_by, decided_at, decision_reason, export_path, "
        "manifest_sha256, handed_to, handed_at, medium, seal_number)",
    ],
    "requisition_window": ["INSERT"],
    "hold": ["INSERT", "UPDATE (released_by, released_at, release_reason)"],
}

PLAN = Plan(
    migrations=(
        Migration(1, "custody core: ledger entries, tree nodes, checkpoints", schema.ledger_core),
        Migration(2, "camera register and footage index", _v2_footage),
        Migration(3, "requisitions, their windows, holds", _v3_requisitions),
        Migration(4, "retention purge: runs, destroyed segments", _v4_purge),
        Migration(5, "designated agents; audit index of the ledger", _v5_agents_and_audit),
        Migration(
            6, "holds and approvals read from the ledger; appends checked by PostgreSQL", _v6_guards
        ),
        Migration(7, "every stored instant in one fixed-width form", _v7_instants),
        Migration(8, "agents' surnames and first names apart", _v8_agent_names),
        Migration(9, "footage stores described by a path template", _v9_store_templates),
        Migration(10, "witnesses' cosignatures on the checkpoints", schema.cosignatures),
        Migration(11, "RFC 3161 timestamps on the checkpoints", schema.checkpoint_timestamps),
        Migration(12, "live segments indexed apart from the destroyed history", _v12_live_index),
        Migration(13, "a purge run's segments indexed in time order", _v13_run_index),
        Migration(14, "destroyed footage kept by periods, out of the index", _v14_periods),
        Migration(15, "the database's checks read their text one way", schema.pinned_literals),
        Migration(
            16, "PostgreSQL appends queued and grouped, many to a commit", schema.grouped_appends
        ),
        Migration(17, "PostgreSQL appends checked with less work", schema.leaner_appends),
        Migration(18, "PostgreSQL's ledger queue read through its indexes", schema.queue_plans),
        Migration(19, "PostgreSQL's queued appends in one round trip", schema.queued_calls),
    ),
    metadata=metadata,
    app_writes=APP_WRITES,
    policy=action_roles,
    functions=purge_sql.FUNCTIONS,
)


def upgrade(db: Database) -> list[int]:
    """Apply every missing migration (one transaction); the versions applied."""
    return schema.upgrade(db, PLAN)


def require_current(db: Database) -> None:
    schema.require_current(db, PLAN.latest)
