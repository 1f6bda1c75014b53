"""Versioned schema: numbered migrations applied in one transaction, recorded in
`schema_version`.

We keep our own short runner rather than Alembic because each step is mostly
dialect-specific DDL that Alembic would not generate anyway (append-only triggers,
privileges) and the site must upgrade from the CLI with no migration directory to
ship. Rule: a migration, once released, is never edited; a model change adds a new
step. Steps that create tables do so from the models, in their current shape, so a
later step that alters a table first checks what is already there.

This module is the runner and custody's own steps (the ledger, its audit index, the
checks PostgreSQL makes on every append). The site's whole plan (every table, every
step, what the application role may write) is given by the layer that knows all of it:
requisition/migrations.py. `tests/test_schema.py` checks that the migrated schema equals
the models, both for a new database and for one migrated from v1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from custody.db import Cursor, Database
from custody.errors import DatabaseError
from custody.i18n import _
from custody.timewindow import stored_now

if TYPE_CHECKING:  # SQLAlchemy is imported only when the schema is changed
    from sqlalchemy import Connection, MetaData

APPEND_ONLY = ("ledger_entry", "ledger_node", "ledger_checkpoint")


Step = Callable[["Connection", "MetaData"], None]


@dataclass(frozen=True)
class Migration:
    """One schema step: the version it leads to, what it does (recorded in
    schema_version, read by `scelle db upgrade`), and the step itself."""

    version: int
    description: str
    step: Step


@dataclass(frozen=True)
class Plan:
    """A site's schema, as the layer that knows every table gives it to the runner."""

    migrations: tuple[Migration, ...]
    metadata: Callable[[], MetaData]  # every model's table (imported only when needed)
    app_writes: Mapping[str, Sequence[str]]  # PostgreSQL: what the application role may
    # change in the workflow's tables, beyond SELECT
    policy: Callable[[], Mapping[str, Sequence[str]]]  # each ledger action: who may record it
    functions: Sequence[str] = ()  # the workflow's own SECURITY DEFINER functions

    @property
    def latest(self) -> int:
        return self.migrations[-1].version


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


def create(conn: Connection, metadata: MetaData, *names: str) -> None:
    """Create tables from the models, in their current shape."""
    metadata.create_all(conn, tables=[metadata.tables[n] for n in names])


def add_columns(conn: Connection, table: str, columns: Mapping[str, str]) -> None:
    """Add the columns a table created by an earlier step lacks (name -> SQL type)."""
    from sqlalchemy import inspect

    have = {c["name"] for c in inspect(conn).get_columns(table)}
    for column, sql_type in columns.items():
        if column not in have:
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")


def raw_cursor(conn: Connection) -> Cursor:
    """The migration's own DB-API cursor (for steps that append or run plpgsql, whose
    '%' the driver must not read as a parameter); the caller closes `.raw`."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    return Cursor(raw.cursor(), conn.dialect.name == "sqlite")


def login(conn: Connection) -> str:
    """Who runs the upgrade (the OS login on SQLite, the session's role on PostgreSQL)."""
    if conn.dialect.name == "sqlite":
        import getpass

        return getpass.getuser()
    return str(conn.exec_driver_sql("SELECT session_user").scalar())


def ledger_core(conn: Connection, metadata: MetaData) -> None:
    """v1: the ledger's entries, tree nodes and checkpoints, append-only and gapless."""
    create(conn, metadata, *APPEND_ONLY)
    gapless = [_SQLITE_GAPLESS] if conn.dialect.name == "sqlite" else _PG_GAPLESS_AND_FUNCTIONS
    for statement in gapless:
        conn.exec_driver_sql(statement)
    _append_only_guards(conn, APPEND_ONLY)


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


def audit_index(conn: Connection, metadata: MetaData) -> None:
    """v5 (custody's part): the audit index, built from the entries, append-only; tree
    nodes only on entries that exist; on PostgreSQL, entries only in the session's name."""
    from custody import audit

    create(conn, metadata, *AUDIT_INDEX)
    cursor = raw_cursor(conn)
    try:
        audit.backfill(cursor)
    finally:
        cursor.raw.close()
    _append_only_guards(conn, AUDIT_INDEX)
    for statement in [_NODE_FOLLOWS_SQLITE] if conn.dialect.name == "sqlite" else _PG_V5:
        conn.exec_driver_sql(statement)


def cosignatures(conn: Connection, metadata: MetaData) -> None:
    """v10 (custody's part): witnesses' cosignatures on the checkpoints, append-only."""
    create(conn, metadata, "ledger_cosignature")
    _append_only_guards(conn, ("ledger_cosignature",))


def checkpoint_timestamps(conn: Connection, metadata: MetaData) -> None:
    """v11 (custody's part): RFC 3161 tokens on the checkpoints, append-only."""
    create(conn, metadata, "ledger_timestamp")
    _append_only_guards(conn, ("ledger_timestamp",))


def checked_appends(conn: Connection, metadata: MetaData) -> None:
    """v6 (custody's part): checkpoints name their station; the ledger policy; on
    PostgreSQL, appends and checkpoints only through the database's own checks."""
    from custody import pg_ledger

    add_columns(conn, "ledger_checkpoint", {"signed_by": "TEXT", "station": "TEXT"})
    create(conn, metadata, "ledger_policy")
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ledger_audit_camera_by_seq ON ledger_audit_camera (seq, camera)"
    )
    if conn.dialect.name == "postgresql":
        run_plpgsql(conn, [*pg_ledger.PG_LOCKS, *pg_ledger.PG_V6])


def pinned_literals(conn: Connection, metadata: MetaData) -> None:
    """v15 (and after every upgrade): the owner's functions whose text holds a backslash
    read it as the standard says, whatever the calling session set. A function's body is
    compiled in the caller's session: with `standard_conforming_strings = off`, an
    agent's session read the regular expression '^\\s*$' as '^s*$' and the byte '\\x00'
    as a zero character. CREATE OR REPLACE forgets the setting, hence every upgrade."""
    if conn.dialect.name != "postgresql":
        return
    functions = conn.exec_driver_sql(
        "SELECT p.oid::regprocedure::text FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace "
        "JOIN pg_language l ON l.oid = p.prolang "
        "WHERE n.nspname = 'public' AND p.proowner = (SELECT relowner FROM pg_class "
        "WHERE oid = 'ledger_entry'::regclass) AND l.lanname IN ('plpgsql', 'sql') "
        "AND strpos(p.prosrc, chr(92)) > 0 AND NOT COALESCE("
        "'standard_conforming_strings=on' = ANY (p.proconfig), false) ORDER BY 1"
    ).scalars()
    for function in list(functions):
        conn.exec_driver_sql(f"ALTER FUNCTION {function} SET standard_conforming_strings = on")


def _queue_statements(conn: Connection, version: str) -> None:
    """custody/pg_queue.py's statements for `version` (PG_V16, ...), on PostgreSQL only;
    that module is read only when a migration needs it."""
    from custody import pg_queue

    if conn.dialect.name == "postgresql":
        run_plpgsql(conn, getattr(pg_queue, version))


def grouped_appends(conn: Connection, metadata: MetaData) -> None:
    """v16 (custody's part): on PostgreSQL, appends are queued and grouped, many to a
    commit (custody/pg_queue.py); SQLite's one writer has nothing to group."""
    _queue_statements(conn, "PG_V16")


def leaner_appends(conn: Connection, metadata: MetaData) -> None:
    """v17 (custody's part): on PostgreSQL, the same checks of each append with less
    work (custody/pg_queue.py PG_V17)."""
    _queue_statements(conn, "PG_V17")


def queue_plans(conn: Connection, metadata: MetaData) -> None:
    """v18 (custody's part): on PostgreSQL, the ledger queue's functions read it through
    its indexes whatever its statistics say, and compile no plan (custody/pg_queue.py
    QUEUE_PLANS)."""
    _queue_statements(conn, "PG_V18")


def queued_calls(conn: Connection, metadata: MetaData) -> None:
    """v19 (custody's part): on PostgreSQL, a queued append in one round trip, the
    procedure `scelle_queued_append` (custody/pg_queue.py PG_V19)."""
    _queue_statements(conn, "PG_V19")


def run_plpgsql(conn: Connection, statements: Sequence[str]) -> None:
    """Statements with no parameters: '%' in them is plpgsql's, not the driver's."""
    cursor = raw_cursor(conn)
    try:
        for statement in statements:
            cursor.raw.execute(statement)  # no parameters at all: nothing is read as one
    finally:
        cursor.raw.close()


# The application role: every agent's PostgreSQL role is a member of it. It may read
# and append to the ledger and its index, never rewrite them; the owner of the tables
# (who runs `scelle db upgrade`) is the only one who can change the schema.
APP_ROLE = "scelle_app"


def _pg_privileges(conn: Connection, plan: Plan) -> None:
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
                _("the role {role} does not exist and cannot be created here").format(
                    role=APP_ROLE
                ),
                hint=_("as a PostgreSQL administrator: CREATE ROLE {role} NOLOGIN").format(
                    role=APP_ROLE
                ),
            ) from exc
    present = set(inspect(conn).get_table_names()) & set(plan.metadata().tables)
    statements = [
        f"REVOKE ALL ON {', '.join(sorted(present))} FROM PUBLIC, {APP_ROLE}",
        f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}",
        f"GRANT SELECT ON {', '.join(sorted(present))} TO {APP_ROLE}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}",
    ]
    for table, rights in plan.app_writes.items():
        if table in present:
            statements += [f"GRANT {right} ON {table} TO {APP_ROLE}" for right in rights]
    if "ledger_policy" in present:
        from custody import pg_ledger, pg_queue

        present_functions = [  # a step not yet applied has not made its functions
            f
            for f in [*pg_queue.FUNCTIONS, *plan.functions]
            if conn.exec_driver_sql(f"SELECT to_regprocedure('{f}')").scalar() is not None
        ]
        statements += pg_ledger.grant_statements(APP_ROLE, present_functions)
        statements.append("DELETE FROM ledger_policy")
        statements += [
            f"INSERT INTO ledger_policy (action, roles) VALUES ('{a}', '{','.join(r)}')"
            for a, r in sorted(plan.policy().items())
        ]
    # The owner's SECURITY DEFINER functions resolve names through `public`: a login
    # able to create objects there (PostgreSQL <= 14's default for PUBLIC) could place a
    # better-matching function and have it run with the owner's rights.
    statements.append(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC, {APP_ROLE}")
    for statement in statements:
        conn.exec_driver_sql(statement)
    pinned_literals(conn, plan.metadata())
    creators = (
        conn.exec_driver_sql(
            "SELECT rolname FROM pg_roles WHERE has_schema_privilege(oid, 'public', 'CREATE') "
            "AND NOT rolsuper AND rolname <> current_user AND (rolname = %(app)s "
            "OR pg_has_role(oid, %(app)s, 'MEMBER')) ORDER BY rolname",
            {"app": APP_ROLE},
        )
        .scalars()
        .all()
    )
    if creators:  # granted by someone else (the schema's owner): REVOKE could not take it
        raise DatabaseError(
            _(
                "agents may create objects in the schema public ({roles}): the site's "
                "functions would run theirs as the owner; nothing was changed"
            ).format(roles=", ".join(creators)),
            hint=_("as the schema's owner: REVOKE CREATE ON SCHEMA public FROM PUBLIC"),
        )


def upgrade(db: Database, plan: Plan) -> list[int]:
    """Apply every missing migration in one transaction; returns the versions applied."""
    from sqlalchemy import insert, select

    metadata = plan.metadata()
    table = metadata.tables["schema_version"]
    applied: list[int] = []
    with db.engine.begin() as conn:
        table.create(conn, checkfirst=True)
        have = set(conn.execute(select(table.c.version)).scalars())
        if have and max(have) > plan.latest:
            raise DatabaseError(_newer(max(have), plan.latest))
        for migration in plan.migrations:
            version, description = migration.version, migration.description
            if version in have:
                continue
            migration.step(conn, metadata)
            now = stored_now()
            conn.execute(
                insert(table).values(version=version, applied_at=now, description=description)
            )
            applied.append(version)
        if conn.dialect.name == "postgresql":
            _pg_privileges(conn, plan)
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


def require_current(db: Database, latest: int) -> None:
    """Refuse to work on a database whose schema this scelle does not speak."""
    found = version(db)
    if found == 0:
        if db.path:
            raise DatabaseError(_("{path} is not a scelle database").format(path=db.path))
        raise DatabaseError(_("the database is not a scelle database"))
    if found < latest:
        raise DatabaseError(
            _("database schema v{found} is older than this scelle's v{latest}").format(
                found=found, latest=latest
            ),
            hint=_("run 'scelle db upgrade'"),
        )
    if found > latest:
        raise DatabaseError(_newer(found, latest))


def _newer(found: int, latest: int) -> str:
    return _(
        "database schema v{found} is newer than this scelle (v{latest}): upgrade scelle"
    ).format(found=found, latest=latest)
