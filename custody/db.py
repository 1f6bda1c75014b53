"""The database: SQLite by default, PostgreSQL when the URL says so.

The ledger's hot paths (one durable append per transaction, streaming a million entries
for verification, auditors' queries) go straight to the DB-API driver through
`Database.write()` / `Database.read()`, which also hold the one rule that keeps the log
linear: writers are serialised (`BEGIN IMMEDIATE` on SQLite, a transaction-scoped
advisory lock on PostgreSQL). So do the workflow's queries, the camera register's and
the requisitions' included. SQLModel/SQLAlchemy only make the schema (migrations) and
copy a database (`db copy`), through `Database.engine`, made on first use: no everyday
command imports them (half a second of start-up here).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from custody.errors import (
    DatabaseError,
    InputError,
    IntegrityError,
    InvalidStateError,
    PermissionDeniedError,
    SiteError,
)
from custody.files import exclusive as file_lock
from custody.i18n import _

if TYPE_CHECKING:
    from sqlalchemy import Engine

# Arbitrary constant naming "the scelle ledger" for pg_advisory_xact_lock.
PG_LEDGER_LOCK = 0x5CE11E
LOCK_WAIT_SECONDS = 60  # as SQLite's busy_timeout
_USER = re.compile(r"[^:/?#@]*")


def hide_password(url: str) -> str:
    """The URL without its password or query (which may hold one: ?password=...).

    No part of a password is ever shown, whatever it holds: an unencoded '@', '/', '?'
    or '#' in it makes the URL ambiguous (libpq and SQLAlchemy split it differently), so
    everything from the ':' after the user name to the last '@' is hidden, and, when the
    hidden part holds one of '/?#', all that follows too (it may be the password's end)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    user = _USER.match(rest)
    assert user is not None  # the pattern matches the empty string
    name, after = user.group(), rest[user.end() :]
    if after.startswith("@"):  # a user and no password
        return f"{scheme}{sep}{name}@{_cut(after[1:])}"
    if after.startswith(":") and "@" in after:  # a password, or a port before an '@'
        secret, _at, host = after[1:].rpartition("@")
        shown = "***" if any(c in secret for c in "/?#") else _cut(host)
        return f"{scheme}{sep}{name}:***@{shown}"
    return f"{scheme}{sep}{_cut(rest)}"


def _cut(text: str) -> str:
    """Up to a query or a fragment, which may hold a password (?password=...)."""
    return re.split(r"[?#]", text, maxsplit=1)[0]


class Cursor:
    """A DB-API cursor that takes `?` placeholders whatever the driver's style."""

    def __init__(self, raw: Any, qmark: bool) -> None:
        self._raw = raw
        self._qmark = qmark

    def __iter__(self) -> Iterator[Any]:
        return iter(self._raw)

    @property
    def is_sqlite(self) -> bool:
        return self._qmark

    @property
    def raw(self) -> Any:
        """The driver's own cursor."""
        return self._raw

    def _sql(self, sql: str) -> str:
        return sql if self._qmark else sql.replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        self._raw.execute(self._sql(sql), params)
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._raw.executemany(self._sql(sql), rows)

    def insert(self, into: str, rows: Sequence[Sequence[Any]]) -> None:
        """`INSERT INTO <into> VALUES (...), (...)`: one statement (one round trip to a
        server) per 500 rows, where executemany would send one per row."""
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            marks = ", ".join(["(" + ", ".join("?" * len(chunk[0])) + ")"] * len(chunk))
            self.execute(f"INSERT INTO {into} VALUES {marks}", [v for row in chunk for v in row])

    def fetchone(self) -> Any:
        return self._raw.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._raw.fetchall())

    def fetchmany(self, n: int) -> list[Any]:
        return list(self._raw.fetchmany(n))


def _sqlite_setup(conn: sqlite3.Connection) -> None:
    # We issue BEGIN ourselves (IMMEDIATE for writers); pysqlite's implicit BEGIN would
    # start deferred transactions that fail with SQLITE_BUSY when they later write.
    conn.isolation_level = None
    conn.execute(f"PRAGMA busy_timeout = {LOCK_WAIT_SECONDS * 1000}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    # 64 MB of page cache (the default is 2 MB): an audit query's random reads over a
    # million-entry ledger stay in memory once read.
    conn.execute("PRAGMA cache_size = -65536")


def _pg_setup(conn: Any) -> None:
    # Our columns are all integers or text; PostgreSQL widens SUM(bigint) to numeric,
    # which would reach us as Decimal. Read numeric as int (it is always integral here).
    from psycopg.types.numeric import IntLoader

    conn.adapters.register_loader("numeric", IntLoader)


class Database:
    """One site database. `create=False` refuses to conjure an empty SQLite file."""

    def __init__(self, url: str, *, create: bool = False) -> None:
        scheme, _sep, rest = url.partition("://")
        backend, _plus, driver = scheme.partition("+")
        if not rest:
            raise InputError(_("not a database URL: {url!r}").format(url=hide_password(url)))
        if backend not in ("sqlite", "postgresql") or driver not in ("", "pysqlite", "psycopg"):
            raise InputError(
                _("unsupported database {scheme!r}: sqlite or postgresql").format(scheme=scheme)
            )
        self.url = url
        self.is_sqlite = backend == "sqlite"
        self.path: Path | None = None
        if self.is_sqlite:
            database = unquote(urlsplit(url).path)[1:]  # sqlite:///relative, sqlite:////abs
            if not database or database == ":memory:":
                raise InputError(_("the SQLite database must be a file"))
            self.path = Path(database)
            if not create and not self.path.exists():
                raise SiteError(
                    _("no database at {path}").format(path=self.path),
                    hint=_("run 'scelle init' or set SCELLE_HOME"),
                )
            self._driver_errors: tuple[type[Exception], ...] = (sqlite3.DatabaseError,)
            self._integrity_errors: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)
        else:
            import psycopg

            self._driver_errors = (psycopg.Error,)
            self._integrity_errors = (psycopg.IntegrityError, psycopg.errors.RaiseException)
        self._local = threading.local()  # one driver connection per thread, reused
        self._has_locks: bool | None = None  # PostgreSQL: scelle_lock exists (v6)

    @property
    def display_url(self) -> str:
        return hide_password(self.url)

    @cached_property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for the schema and `db copy`."""
        from sqlalchemy import create_engine, event
        from sqlalchemy.engine import make_url

        parsed = make_url(self.url)
        if not self.is_sqlite:
            parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, not psycopg2
        engine = create_engine(parsed)
        event.listen(engine, "handle_error", self._on_error)
        if self.is_sqlite:
            event.listen(engine, "connect", lambda conn, _record: _sqlite_setup(conn))
            event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        else:
            event.listen(engine, "connect", lambda conn, _record: _pg_setup(conn))
        return engine

    def dispose(self) -> None:
        self.close_thread()
        if "engine" in self.__dict__:
            self.engine.dispose()

    def close_thread(self) -> None:
        """Close the calling thread's connections: a worker thread's, before it ends
        (its thread-local ones would otherwise wait for the garbage collector)."""
        for raw in getattr(self._local, "idle", []):
            raw.close()
        self._local.idle = []
        self._drop_autocommit()

    def _connect(self) -> Any:
        """An idle driver connection of this thread, or a new one (a transaction opened
        inside another gets its own connection, as a pool would give)."""
        idle: list[Any] = self._local.__dict__.setdefault("idle", [])
        if idle:
            return idle.pop()
        raw: Any
        try:
            if self.is_sqlite:
                assert self.path is not None
                raw = sqlite3.connect(self.path, isolation_level=None)
                _sqlite_setup(raw)
                return raw
            import psycopg

            raw = psycopg.connect("postgresql://" + self.url.partition("://")[2])
            _pg_setup(raw)
            return raw
        except self._driver_errors as exc:
            raise self._db_error(exc) from exc

    @contextmanager
    def _transaction(self, statements: Sequence[str]) -> Iterator[Cursor]:
        """Run `statements` (the opening of the transaction), yield a cursor, commit."""
        raw = self._connect()
        healthy = True
        try:
            cur = raw.cursor()
            try:
                for statement in statements:
                    cur.execute(statement)
                yield Cursor(cur, self.is_sqlite)
                if self.is_sqlite:
                    cur.execute("COMMIT")
                else:
                    raw.commit()
            except BaseException:
                healthy = self._rollback(raw)
                raise
            finally:
                cur.close()
        except self._driver_errors as exc:
            raise self._refused(exc) from exc
        finally:
            if healthy:
                self._local.idle.append(raw)
            else:
                raw.close()

    def _refused(self, exc: Exception) -> Exception:
        """A driver's error as scelle reports it: one line, the exit code of its kind."""
        detail = str(exc).splitlines()[0]
        if isinstance(exc, self._integrity_errors):  # a guard rail refused the write
            return self.refusal("P0001", detail)
        return self.refusal(getattr(exc, "sqlstate", None) or "", detail, exc)

    def refusal(self, sqlstate: str, detail: str, exc: Exception | None = None) -> Exception:
        """What the server refused, by its SQLSTATE: from a driver error, or from a row
        the server refused for us (a queued ledger append, custody/ledger.py)."""
        if sqlstate == "P0001" or sqlstate.startswith("23"):
            return IntegrityError(
                _("the database refused the write: {detail}").format(detail=detail)
            )
        if sqlstate == "55P03":  # lock_not_available
            return DatabaseError(
                _(
                    "another session held the site's write lock past the wait allowed "
                    "(lock_timeout, {seconds} s unless set): nothing was written"
                ).format(seconds=LOCK_WAIT_SECONDS),
                hint=_("see pg_stat_activity for a session idle in a transaction"),
            )
        if sqlstate == "42501":  # insufficient_privilege: PostgreSQL's own refusal
            return PermissionDeniedError(
                _("the database refused: {detail}").format(detail=detail),
                hint=_("the agents register is changed by the database owner"),
            )
        return self._db_error(exc or Exception(detail))

    def call(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """One statement in a transaction of its own (PostgreSQL autocommit: one round
        trip, commit included), without the writer lock; its first row. For functions
        and procedures that take the lock themselves (the ledger's queue,
        custody/pg_queue.py; a procedure's own COMMIT needs autocommit). Each
        thread keeps one connection in autocommit for them. Placeholders: `?`, or
        psycopg's own `%b` for a value sent in binary."""
        assert not self.is_sqlite, "PostgreSQL only"
        raw = self._local.__dict__.get("autocommit")
        if raw is None:
            raw = self._connect()
            raw.autocommit = True
            self._local.autocommit = raw
        try:
            return raw.execute(sql.replace("?", "%s"), params).fetchone()
        except self._driver_errors as exc:
            if raw.broken:
                self._drop_autocommit()
            raise self._refused(exc) from exc
        except BaseException:
            self._drop_autocommit()  # interrupted mid-statement: its state is unknown
            raise

    def _drop_autocommit(self) -> None:
        raw = self._local.__dict__.pop("autocommit", None)
        if raw is not None:
            raw.close()

    def _rollback(self, raw: Any) -> bool:
        """Roll back; False if the connection is unusable (it is then closed)."""
        try:
            if not self.is_sqlite:
                raw.rollback()
            elif raw.in_transaction:
                raw.execute("ROLLBACK")
            return True
        except self._driver_errors:
            return False

    def write(self) -> Any:
        """A transaction holding the site's single writer lock (context manager)."""
        if self.is_sqlite:
            return self._transaction(["BEGIN IMMEDIATE"])
        # psycopg opens the transaction itself, at the first statement. A session that
        # holds the lock and never lets go (an idle transaction) makes every writer fail
        # after a minute (unless the session set a shorter wait), instead of hanging.
        if self._has_locks is None:
            with self.read() as cur:
                self._pg_locks(cur)
        return self._transaction(
            [
                f"SELECT set_config('lock_timeout', '{LOCK_WAIT_SECONDS}s', true) "
                "WHERE current_setting('lock_timeout') = '0'",
                "SELECT scelle_lock('ledger', true)"
                if self._has_locks
                else f"SELECT pg_advisory_xact_lock({PG_LEDGER_LOCK})",
            ]
        )

    def read(self) -> Any:
        """A read transaction with one consistent snapshot (context manager)."""
        if self.is_sqlite:
            return self._transaction(["BEGIN"])
        return self._transaction(["SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"])

    @contextmanager
    def exclusive(self, name: str, busy: str) -> Iterator[None]:
        """One holder of `name` at a time among every process using this database, on
        every workstation: a PostgreSQL session advisory lock, or, for a SQLite file
        (which only one machine uses), an flock beside it. Either dies with its holder.
        InvalidStateError(`busy`) at once if someone holds it."""
        if self.path is not None:
            with file_lock(self.path.with_name(f"{self.path.name}.{name}.lock"), busy):
                yield
            return
        raw = self._connect()  # its own session: closing it releases the lock
        try:
            try:
                with raw.cursor() as cur:
                    if self._pg_locks(cur):
                        # A row lock only scelle's function can take, held by this
                        # transaction (left open) until the work is done; the row is
                        # made ready and committed first, so nobody waits on its insert.
                        cur.execute("SELECT scelle_lock_ready(%s)", [name])
                        raw.commit()
                        cur.execute("SELECT scelle_lock(%s, false)", [name])
                        held, holder = bool(cur.fetchone()[0]), None
                    else:  # a database older than v6 (during its upgrade)
                        digest = hashlib.sha256(f"scelle:{name}".encode()).digest()
                        key = int.from_bytes(digest[:8], "big", signed=True)
                        cur.execute("SELECT pg_try_advisory_lock(%s)", [key])
                        held = bool(cur.fetchone()[0])
                        holder = None if held else self._holder(raw, key)
                        raw.commit()
            except self._driver_errors as exc:
                raise self._db_error(exc) from exc
            if not held:
                raise InvalidStateError(
                    _("{busy} ({holder})").format(busy=busy, holder=holder) if holder else busy,
                    hint=_("it may run on another workstation: wait for it"),
                )
            yield
        finally:
            self._release(raw)

    def _release(self, raw: Any) -> None:
        """Let go of a lock session and wait until the server has: ending the transaction
        frees the row lock and an advisory unlock the session lock before the reply comes
        back, whereas a bare close returns before the server has ended the session, and a
        purge started at once (the next cron run, a retry) would find the lock still held."""
        try:
            raw.rollback()
            with raw.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock_all()")
            raw.commit()
        except self._driver_errors:
            pass  # the session is gone already: so is its lock
        finally:
            raw.close()

    def _pg_locks(self, cur: Any) -> bool:
        """Whether the database has scelle's own locks (PostgreSQL, schema v6)."""
        if self._has_locks is None:
            cur.execute("SELECT to_regprocedure('scelle_lock(text,boolean)') IS NOT NULL")
            self._has_locks = bool(cur.fetchone()[0])
        return self._has_locks

    def _holder(self, raw: Any, key: int) -> str | None:
        """Who holds the advisory lock `key` (PostgreSQL): for the message, so that an
        administrator can see a session that holds it and will not let go."""
        unsigned = key & 0xFFFFFFFFFFFFFFFF
        try:
            with raw.cursor() as cur:
                cur.execute(
                    "SELECT a.usename, a.pid, a.state, a.xact_start, a.backend_start "
                    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s "
                    "AND l.objid = %s AND l.objsubid = 1",
                    [unsigned >> 32, unsigned & 0xFFFFFFFF],
                )
                row = cur.fetchone()
            raw.commit()
        except self._driver_errors:
            return None
        if row is None:
            return None
        user, pid, state, _xact, started = row
        return _("held by {user}, session {pid} ({state}) since {started}").format(
            user=user, pid=pid, state=state, started=f"{started:%Y-%m-%d %H:%M:%S %Z}"
        )

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

    def _on_error(self, context: Any) -> None:
        """ORM paths too: a server gone or a file locked is one line and exit 6."""
        from sqlalchemy.exc import OperationalError

        if context.is_disconnect or isinstance(context.sqlalchemy_exception, OperationalError):
            raise self._db_error(context.original_exception)

    def _db_error(self, exc: BaseException) -> DatabaseError:
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        if self.path:
            return DatabaseError(
                _("cannot use {path}: {detail}").format(path=self.path, detail=detail)
            )
        return DatabaseError(_("cannot use the database: {detail}").format(detail=detail))
