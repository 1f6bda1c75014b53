"""The database engine: SQLite by default, PostgreSQL when the URL says so.

SQLModel/SQLAlchemy own the schema and ordinary queries. The ledger's hot paths (one
durable append per transaction, streaming a million entries for verification) go to
the DB-API cursor through `Database.write()` / `Database.read()`, which also hold the
one rule that keeps the log linear: writers are serialised (`BEGIN IMMEDIATE` on SQLite,
a transaction-scoped advisory lock on PostgreSQL).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from custody.errors import DatabaseError, InputError, SiteError

# Arbitrary constant naming "the scelle ledger" for pg_advisory_xact_lock.
_PG_LEDGER_LOCK = 0x5CE11E


class Cursor:
    """A DB-API cursor that takes `?` placeholders whatever the driver's style."""

    def __init__(self, raw: Any, qmark: bool) -> None:
        self._raw = raw
        self._qmark = qmark

    def __iter__(self) -> Iterator[Any]:
        return iter(self._raw)

    def _sql(self, sql: str) -> str:
        return sql if self._qmark else sql.replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        self._raw.execute(self._sql(sql), params)
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._raw.executemany(self._sql(sql), rows)

    def fetchone(self) -> Any:
        return self._raw.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._raw.fetchall())

    def fetchmany(self, n: int) -> list[Any]:
        return list(self._raw.fetchmany(n))


def _sqlite_on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # We issue BEGIN ourselves (IMMEDIATE for writers); pysqlite's implicit BEGIN would
    # start deferred transactions that fail with SQLITE_BUSY when they later write.
    dbapi_connection.isolation_level = None
    dbapi_connection.execute("PRAGMA busy_timeout = 60000")
    dbapi_connection.execute("PRAGMA journal_mode = WAL")
    dbapi_connection.execute("PRAGMA synchronous = FULL")
    dbapi_connection.execute("PRAGMA foreign_keys = ON")


def _pg_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Our columns are all integers or text; PostgreSQL widens SUM(bigint) to numeric,
    # which would reach us as Decimal. Read numeric as int (it is always integral here).
    from psycopg.types.numeric import IntLoader

    dbapi_connection.adapters.register_loader("numeric", IntLoader)


def _sqlite_on_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """One site database. `create=False` refuses to conjure an empty SQLite file."""

    def __init__(self, url: str, *, create: bool = False) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise InputError(f"not a database URL: {url!r}") from exc
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, not psycopg2
        elif parsed.get_backend_name() not in ("sqlite", "postgresql"):
            raise InputError(
                f"unsupported database {parsed.get_backend_name()!r}: sqlite or postgresql"
            )
        self.url = url
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.path: Path | None = None
        if self.is_sqlite:
            if not parsed.database or parsed.database == ":memory:":
                raise InputError("the SQLite database must be a file")
            self.path = Path(parsed.database)
            if not create and not self.path.exists():
                raise SiteError(
                    f"no database at {self.path}", hint="run 'scelle init' or set SCELLE_HOME"
                )
        self.engine: Engine = create_engine(parsed)
        # The driver's own errors, which raw DB-API calls raise unwrapped.
        self._driver_errors: tuple[type[Exception], ...] = (sqlite3.DatabaseError,)
        self._integrity_errors: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)
        if not self.is_sqlite:
            import psycopg

            self._driver_errors = (psycopg.Error,)
            self._integrity_errors = (psycopg.IntegrityError, psycopg.errors.RaiseException)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
        else:
            event.listen(self.engine, "connect", _pg_on_connect)

    @property
    def display_url(self) -> str:
        """The URL without its password, for messages and records."""
        return self.engine.url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _transaction(self, begin: Sequence[str]) -> Iterator[Cursor]:
        connect_errors: tuple[type[Exception], ...] = (DBAPIError, *self._driver_errors)
        try:
            raw = self.engine.raw_connection()
        except connect_errors as exc:
            raise self._db_error(exc) from exc
        try:
            cur = raw.cursor()
            try:
                for statement in begin:
                    cur.execute(statement)
                yield Cursor(cur, self.is_sqlite)
                raw.commit()
            except BaseException:
                raw.rollback()
                raise
            finally:
                cur.close()
        except self._driver_errors as exc:
            if isinstance(exc, self._integrity_errors):  # a guard rail: the caller's to explain
                raise
            raise self._db_error(exc) from exc
        finally:
            raw.close()

    def write(self) -> Any:
        """A transaction holding the site's single writer lock (context manager)."""
        if self.is_sqlite:
            return self._transaction(["BEGIN IMMEDIATE"])
        return self._transaction(["BEGIN", f"SELECT pg_advisory_xact_lock({_PG_LEDGER_LOCK})"])

    def read(self) -> Any:
        """A read transaction with one consistent snapshot (context manager)."""
        if self.is_sqlite:
            return self._transaction(["BEGIN"])
        return self._transaction(["BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"])

    def login(self) -> str:
        """Who is acting, as authenticated by the system that holds the data.

        PostgreSQL: the session's role, which the server authenticated (password,
        certificate, peer). SQLite: the operating system login of this session
        (`getpass.getuser`: LOGNAME, USER, then the password database), which is as
        strong as the workstation's accounts and the database file's permissions.
        """
        if self.is_sqlite:
            import getpass

            return getpass.getuser()
        with self.read() as cur:
            return str(cur.execute("SELECT session_user").fetchone()[0])

    def _db_error(self, exc: BaseException) -> DatabaseError:
        where = self.path if self.path else "the database"
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return DatabaseError(f"cannot use {where}: {detail}")
