"""Versioned schema: numbered migrations applied in one transaction, recorded in
`schema_version`.

We keep our own short runner rather than Alembic because each step is mostly
dialect-specific DDL that Alembic would not generate anyway (append-only triggers,
privileges) and the site must upgrade from the CLI with no migration directory to
ship. Rule: a migration, once released, is never edited; a model change adds a new
step. Steps that create tables do so from the models, in their current shape, so a
later step that alters a table first checks what is already there.
`tests/test_schema.py` checks that the migrated schema equals the models, both for a
new database and for one migrated from v1.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from custody.db import Database
from custody.errors import DatabaseError

if TYPE_CHECKING:  # SQLAlchemy is imported only when the schema is changed
    from sqlalchemy import Connection, MetaData

APPEND_ONLY = ("ledger_entry", "ledger_node", "ledger_checkpoint")


def _metadata() -> MetaData:
    """Every model's table (SQLModel is imported only when the schema is changed, which
    keeps it out of the start-up of ordinary commands)."""
    from sqlmodel import SQLModel

    import custody.models  # noqa: F401 - registers the tables
    import exporters.models  # noqa: F401
    import requisition.models  # noqa: F401

    return SQLModel.metadata


_SQLITE_GAPLESS = (
    "CREATE TRIGGER ledger_entry_gapless BEFORE INSERT ON ledger_entry "
    "WHEN NEW.seq != (SELECT COALESCE(MAX(seq) + 1, 0) FROM ledger_entry) "
    "BEGIN SELECT RAISE(ABORT, 'ledger_entry seq must be gapless'); END"
)

_PG_GAPLESS_AND_FUNCTIONS = [
    """CREATE FUNCTION scelle_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only'; END $$""",
    """CREATE FUNCTION scelle_gapless() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.seq <> (SELECT COALESCE(MAX(seq) + 1, 0) FROM ledger_entry) THEN
        RAISE EXCEPTION 'ledger_entry seq must be gapless';
      END IF;
      RETURN NEW;
    END $$""",
    "CREATE TRIGGER ledger_entry_gapless BEFORE INSERT ON ledger_entry "
    "FOR EACH ROW EXECUTE FUNCTION scelle_gapless()",
]


def _append_only_guards(conn: Connection, tables: tuple[str, ...]) -> None:
    """Triggers refusing UPDATE and DELETE (and TRUNCATE on PostgreSQL) on `tables`."""
    for t in tables:
        if conn.dialect.name == "sqlite":
            for op in ("UPDATE", "DELETE"):
                conn.exec_driver_sql(
                    f"CREATE TRIGGER {t}_no_{op.lower()} BEFORE {op} ON {t} "
                    f"BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END"
                )
        else:
            conn.exec_driver_sql(
                f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {t} "
                "FOR EACH STATEMENT EXECUTE FUNCTION scelle_append_only()"
            )


def _v1_custody_core(conn: Connection) -> None:
    tables = [_metadata().tables[name] for name in APPEND_ONLY]
    _metadata().create_all(conn, tables=tables)
    gapless = [_SQLITE_GAPLESS] if conn.dialect.name == "sqlite" else _PG_GAPLESS_AND_FUNCTIONS
    for statement in gapless:
        conn.exec_driver_sql(statement)
    _append_only_guards(conn, APPEND_ONLY)


def _v2_footage(conn: Connection) -> None:
    names = ("camera", "ingest_batch", "segment", "scan_state")
    _metadata().create_all(conn, tables=[_metadata().tables[n] for n in names])


def _v3_requisitions(conn: Connection) -> None:
    names = ("requisition", "requisition_window", "hold")
    _metadata().create_all(conn, tables=[_metadata().tables[n] for n in names])


def _v4_purge(conn: Connection) -> None:
    from sqlalchemy import inspect

    have = {c["name"] for c in inspect(conn).get_columns("segment")}
    if "purge_run" not in have:
        conn.exec_driver_sql("ALTER TABLE segment ADD COLUMN purge_run BIGINT")
    if "destroyed_at" not in have:
        conn.exec_driver_sql("ALTER TABLE segment ADD COLUMN destroyed_at VARCHAR")
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS segment_by_end ON segment (camera_id, end_us)")
    _metadata().create_all(conn, tables=[_metadata().tables["purge_run"]])


AUDIT_INDEX = ("ledger_audit", "ledger_audit_camera")


# A stored tree node must sit on entries that exist: nobody can plant the node of a
# future entry (which would make every later append fail on its primary key).
_NODE_FOLLOWS_SQLITE = (
    "CREATE TRIGGER ledger_node_follows BEFORE INSERT ON ledger_node "
    "WHEN NOT EXISTS (SELECT 1 FROM ledger_entry WHERE seq = ((NEW.idx + 1) << NEW.level) - 1) "
    "BEGIN SELECT RAISE(ABORT, 'ledger_node ahead of the log'); END"
)
_PG_V5 = [
    """CREATE FUNCTION scelle_node_follows() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM ledger_entry
                     WHERE seq = ((NEW.idx + 1) * (1::bigint << NEW.level)) - 1) THEN
        RAISE EXCEPTION 'ledger_node ahead of the log';
      END IF;
      RETURN NEW;
    END $$""",
    "CREATE TRIGGER ledger_node_follows BEFORE INSERT ON ledger_node "
    "FOR EACH ROW EXECUTE FUNCTION scelle_node_follows()",
    # An agent's session appends only in its own name: the entry's actor is the role the
    # server authenticated. Only the tables' owner (who creates and migrates the site)
    # may write for someone else.
    """CREATE FUNCTION scelle_entry_author() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF session_user <> (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID)
         AND (convert_from(NEW.body, 'UTF8')::jsonb ->> 'actor') IS DISTINCT FROM session_user
      THEN
        RAISE EXCEPTION USING MESSAGE =
          'a ledger entry must name the session''s own role (' || session_user || ')';
      END IF;
      RETURN NEW;
    END $$""",
    "CREATE TRIGGER ledger_entry_author BEFORE INSERT ON ledger_entry "
    "FOR EACH ROW EXECUTE FUNCTION scelle_entry_author()",
]


def _v5_agents_and_audit(conn: Connection) -> None:
    from custody import audit
    from custody.db import Cursor

    names = ("agent", *AUDIT_INDEX)
    _metadata().create_all(conn, tables=[_metadata().tables[n] for n in names])
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        audit.backfill(Cursor(cursor, conn.dialect.name == "sqlite"))
    finally:
        cursor.close()
    _append_only_guards(conn, AUDIT_INDEX)
    for statement in [_NODE_FOLLOWS_SQLITE] if conn.dialect.name == "sqlite" else _PG_V5:
        conn.exec_driver_sql(statement)


def _v6_guards(conn: Connection) -> None:
    """The purge obeys the ledger; PostgreSQL checks every append and checkpoint."""
    from sqlalchemy import inspect

    from custody import pg_ledger
    from custody.db import Cursor

    for table, columns in (
        ("purge_run", ("intent_seqs", "outcome_seqs", "tally")),
        ("ledger_checkpoint", ("signed_by", "station")),
    ):
        have = {c["name"] for c in inspect(conn).get_columns(table)}
        for column in columns:
            if column not in have:
                conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
    _metadata().create_all(conn, tables=[_metadata().tables["ledger_policy"]])
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS segment_by_batch ON segment (batch_id)")
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ledger_audit_camera_by_seq ON ledger_audit_camera (seq, camera)"
    )
    # Holds placed before v6 were decided by the table: restate those in force in the
    # ledger, which the purge now reads (requisition/holds.py).
    from requisition.holds import restate
    from requisition.purge_rows import backfill_runs

    login = _login(conn)
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        if conn.dialect.name == "postgresql":
            for statement in [*pg_ledger.PG_LOCKS, *pg_ledger.PG_V6, *pg_ledger.PG_PURGE]:
                cursor.execute(statement)
        restate(Cursor(cursor, conn.dialect.name == "sqlite"), login)
        backfill_runs(Cursor(cursor, conn.dialect.name == "sqlite"))
    finally:
        cursor.close()


def _login(conn: Connection) -> str:
    if conn.dialect.name == "sqlite":
        import getpass

        return getpass.getuser()
    return str(conn.exec_driver_sql("SELECT session_user").scalar())


# What the application role may change in the workflow's tables: only the columns scelle
# changes, never a row's identity, times or paths; no DELETE but of the scan's bookkeeping.
# The purge's own rows and marks go through SECURITY DEFINER functions (pg_ledger.PG_PURGE)
# that only a purging role may call. What decides what is kept is read from the ledger
# anyway (requisition/purge_rows.py).
_APP_WRITES = {
    "camera": ["INSERT"],
    "ingest_batch": ["INSERT"],
    "segment": ["INSERT"],  # the purge marks rows through scelle_purge_mark
    "scan_state": ["INSERT", "DELETE"],
    "requisition": [
        "INSERT",
        "UPDATE (state, decided_by, decided_at, decision_reason, export_path, "
        "manifest_sha256, handed_to, handed_at, medium, seal_number)",
    ],
    "requisition_window": ["INSERT"],
    "hold": ["INSERT", "UPDATE (released_by, released_at, release_reason)"],
}


# The application role: every agent's PostgreSQL role is a member of it. It may read
# and append to the ledger and its index, never rewrite them; the owner of the tables
# (who runs `scelle db upgrade`) is the only one who can change the schema.
APP_ROLE = "scelle_app"


def _pg_privileges(conn: Connection) -> None:
    """Grant the application role what it needs, and no more (run after every upgrade)."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import DBAPIError

    exists = conn.exec_driver_sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}'").scalar()
    if not exists:
        try:
            with conn.begin_nested():
                conn.exec_driver_sql(f"CREATE ROLE {APP_ROLE} NOLOGIN")
        except DBAPIError as exc:
            raise DatabaseError(
                f"the role {APP_ROLE} does not exist and cannot be created here",
                hint=f"as a PostgreSQL administrator: CREATE ROLE {APP_ROLE} NOLOGIN",
            ) from exc
    present = set(inspect(conn).get_table_names()) & set(_metadata().tables)
    statements = [
        f"REVOKE ALL ON {', '.join(sorted(present))} FROM PUBLIC, {APP_ROLE}",
        f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}",
        f"GRANT SELECT ON {', '.join(sorted(present))} TO {APP_ROLE}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}",
    ]
    for table, rights in _APP_WRITES.items():
        if table in present:
            statements += [f"GRANT {right} ON {table} TO {APP_ROLE}" for right in rights]
    if "ledger_policy" in present:
        from custody import pg_ledger
        from requisition.roles import action_roles

        statements += pg_ledger.grant_statements(APP_ROLE)
        statements.append("DELETE FROM ledger_policy")
        statements += [
            f"INSERT INTO ledger_policy (action, roles) VALUES ('{a}', '{','.join(r)}')"
            for a, r in sorted(action_roles().items())
        ]
    for statement in statements:
        conn.exec_driver_sql(statement)


Migration = tuple[int, str, Callable[["Connection"], None]]
MIGRATIONS: list[Migration] = [
    (1, "custody core: ledger entries, tree nodes, checkpoints", _v1_custody_core),
    (2, "camera register and footage index", _v2_footage),
    (3, "requisitions, their windows, holds", _v3_requisitions),
    (4, "retention purge: runs, destroyed segments", _v4_purge),
    (5, "designated agents; audit index of the ledger", _v5_agents_and_audit),
    (6, "holds and approvals read from the ledger; appends checked by PostgreSQL", _v6_guards),
]
LATEST = MIGRATIONS[-1][0]


def upgrade(db: Database) -> list[int]:
    """Apply every missing migration in one transaction; returns the versions applied."""
    from sqlalchemy import insert, select

    table = _metadata().tables["schema_version"]
    applied: list[int] = []
    with db.engine.begin() as conn:
        table.create(conn, checkfirst=True)
        have = set(conn.execute(select(table.c.version)).scalars())
        if have and max(have) > LATEST:
            raise DatabaseError(_newer(max(have)))
        for version, description, step in MIGRATIONS:
            if version in have:
                continue
            step(conn)
            now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            conn.execute(
                insert(table).values(version=version, applied_at=now, description=description)
            )
            applied.append(version)
        if conn.dialect.name == "postgresql":
            _pg_privileges(conn)
    return applied


def version(db: Database) -> int:
    """The schema version of the database (0 if it is not a scelle database)."""
    with db.read() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'schema_version'"
            if db.is_sqlite
            else "SELECT COUNT(*) FROM information_schema.tables "
            "WHERE table_name = 'schema_version'"
        )
        if not cur.fetchone()[0]:
            return 0
        row = cur.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)


def require_current(db: Database) -> None:
    """Refuse to work on a database whose schema this scelle does not speak."""
    found = version(db)
    if found == 0:
        raise DatabaseError(f"{db.path or 'the database'} is not a scelle database")
    if found < LATEST:
        raise DatabaseError(
            f"database schema v{found} is older than this scelle's v{LATEST}",
            hint="run 'scelle db upgrade'",
        )
    if found > LATEST:
        raise DatabaseError(_newer(found))


def _newer(found: int) -> str:
    return f"database schema v{found} is newer than this scelle (v{LATEST}): upgrade scelle"
