"""Attacks on a shared PostgreSQL site, as a designated operator and as an undesignated
login (`intruder`, a member of scelle_app that nobody designated).

Each attack is a direct SQL session (psql would do the same), never scelle itself. The
design under test (custody/pg_ledger.py, custody/schema.py `_pg_privileges`): agents
only read the ledger tables and append through `scelle_append`, record checkpoints
through `scelle_add_checkpoint`, write the workflow's tables only in the columns scelle
changes, and the purge decides what it keeps from the ledger. For every attack we check
that PostgreSQL refuses the write (or that it has no effect on what is kept) and that
the log stays usable by the others: `ledger verify` passes, an operator still appends,
`audit` still answers, and a checkpoint is still signed.

An attack that succeeds is a hole: its test asserts the safe behaviour and is marked
`xfail(strict=True, reason="hole: …")`, so that fixing the hole turns it into a pass
(and the strict marker into a reminder to remove it).

Refused attacks change nothing, so they share one site (module scope); attacks that
change something (a purge, a forged checkpoint row, a hole) each get their own.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import make_url

from custody.canonical import canonical_bytes
from custody.checkpoints import read_identity, station_id
from custody.db import PG_LEDGER_LOCK
from custody.entry import Record, entry_fields
from custody.note import key_id
from custody.timewindow import local_text, now_us, parse_time, to_us
from tests.conftest import (
    ADMIN,
    AUDITOR,
    OPERATOR,
    PASSPHRASE,
    SUPERVISOR,
    Result,
    SiteEnv,
    fresh_database,
    make_site,
    raw_connection,
    run_cli,
)
from tests.footage_helpers import camera, fake_segments
from tests.pgserver import SUPERUSER, PgServer

pytestmark = pytest.mark.backends("postgresql")

INTRUDER = "intruder"  # a member of scelle_app that nobody designated
ATTACKERS = (OPERATOR, INTRUDER)
ZONE = "Europe/Paris"
MIN = 60_000_000
DAY = 86_400_000_000


# -- the site, its footage, and the checks made after every attack ---------------------


def local(us: int) -> str:
    return local_text(us, ZONE)


def film(env: SiteEnv, camera_id: str = "C-1", retention: str = "1", ago: int = 2 * DAY) -> int:
    """Camera `camera_id` with six indexed one-minute segments from `ago` ago (two days:
    past the one-day retention); returns their start."""
    cam = camera(env.site, camera_id, retention_days=retention)
    start = now_us() // MIN * MIN - ago
    fake_segments(env.site, cam, start, 6)
    return start


def present(env: SiteEnv, start: int, camera_id: str = "C-1") -> set[int]:
    """The minutes (from `start`) whose segment file is still in the store."""
    found = set()
    for path in (env.settings.home / "footage" / camera_id).rglob("*.mp4"):
        s = path.name.split("Z_")[0]  # 20261128T013700.000
        iso = f"{s[:4]}-{s[4:6]}-{s[6:8]}T{s[9:11]}:{s[11:13]}:{s[13:15]}Z"
        found.add((to_us(parse_time(iso, "UTC")) - start) // MIN)
    return found


def cli(env: SiteEnv, login: str, *args: str, extra: dict[str, str] | None = None) -> Result:
    """The CLI as `login`; a crash (a traceback) is a result too, exit 1."""
    try:
        return run_cli(list(args), env={**env.env_as(login), **(extra or {})})
    except Exception as exc:  # a crash (a traceback) is what some holes produce
        return Result(1, "", f"crashed: {exc!r}")


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.stderr
    return result


def register(env: SiteEnv, login: str, start: int, end: int, camera_id: str = "C-1") -> str:
    result = cli(
        env,
        login,
        "requisition",
        "register",
        "--legal-basis",
        "60-1",
        "--pv",
        f"PV 2026/{login}",
        "--officer",
        "Brigadier Durand",
        "--unit",
        "BSU Villeurbanne",
        "--reason",
        "rixe",
        "--window",
        f"{camera_id}={local(start)}/{local(end)}",
        "--force",
    )
    return ok(result).stdout.split()[1]  # "requisition 2026-00001 registered …"


def place_hold(env: SiteEnv, login: str, start: int, end: int) -> int:
    result = cli(
        env,
        login,
        "hold",
        "place",
        "--camera",
        "C-1",
        "--from",
        local(start),
        "--to",
        local(end),
        "--reason",
        "procédure en cours",
    )
    return int(ok(result).stdout.split()[1])  # "hold 3 placed on camera C-1"


def purge(env: SiteEnv) -> Result:
    return cli(env, SUPERVISOR, "purge")  # the cron account: a supervisor


def usable(env: SiteEnv) -> None:
    """The others still use the log: verify, append, audit, sign a checkpoint."""
    ok(cli(env, AUDITOR, "ledger", "verify"))
    ok(cli(env, OPERATOR, "ledger", "note", "after an attack", "--reason", "still appends"))
    assert json.loads(ok(cli(env, AUDITOR, "audit", "--agent", OPERATOR, "--json")).stdout)
    assert ok(cli(env, OPERATOR, "ledger", "checkpoint")).stdout.count("\n\n") == 1
    ok(cli(env, AUDITOR, "ledger", "verify"))


def connect(env: SiteEnv, login: str) -> Any:
    return raw_connection(env, login=login)


def refused(conn: Any, sql: str, params: Any = (), match: str = "") -> None:
    """PostgreSQL refuses the statement on its privileges (before any trigger)."""
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=match):
        conn.execute(sql, params)


def attempt(conn: Any, sql: str, params: Any = ()) -> psycopg.Error | None:
    """Run `sql`; the error if PostgreSQL refused it."""
    try:
        conn.execute(sql, params)
    except psycopg.Error as exc:
        return exc
    return None


def ledger_size(env: SiteEnv) -> int:
    return env.site.ledger.size()


def checkpoint_rows(env: SiteEnv) -> int:
    conn = connect(env, AUDITOR)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM ledger_checkpoint").fetchone()[0])
    finally:
        conn.close()


def actions(env: SiteEnv) -> list[str]:
    conn = connect(env, AUDITOR)
    try:
        return [a for (a,) in conn.execute("SELECT action FROM ledger_audit ORDER BY seq")]
    finally:
        conn.close()


@pytest.fixture
def filmed(site_env: SiteEnv) -> Iterator[tuple[SiteEnv, int]]:
    """A site of its own with expired footage on C-1 (for attacks that change things)."""
    yield site_env, film(site_env)


@dataclass
class Shared:
    """One site for the attacks PostgreSQL refuses (they leave nothing behind)."""

    env: SiteEnv
    start: int
    requisition: str  # registered by the supervisor
    hold: int  # placed by the supervisor
    database: str


@pytest.fixture(scope="module")
def shared(
    pg_server: Any, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Shared]:
    root = tmp_path_factory.mktemp("guarded")
    url = fresh_database("postgresql", request, root)
    env = make_site(root, database_url=url)
    start = film(env)
    requisition = register(env, SUPERVISOR, start, start + 2 * MIN)
    hold = place_hold(env, SUPERVISOR, start + 4 * MIN, start + 5 * MIN)
    name = str(make_url(url).database)
    yield Shared(env, start, requisition, hold, name)
    env.site.close()
    pg_server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# -- building ledger entries as an attacker would --------------------------------------


def head(conn: Any) -> tuple[int, str]:
    """The next seq and the server's time, as scelle itself asks them."""
    size, at = conn.execute("SELECT size, at FROM scelle_ledger_head()").fetchone()
    return int(size), str(at)


def allowed_refusal(login: str) -> Record:
    return Record(
        "access.refused",
        {"agent": login, "command": "ledger note"},
        "not a designated agent",
        data={"n": 1},
    )


def allowed(login: str) -> Record:
    """What `login` may record: a note for an agent; for the intruder, a refusal of
    itself (the one thing an undesignated login records)."""
    if login == INTRUDER:
        return allowed_refusal(INTRUDER)
    return Record("ledger.note", "an attack", "the attacked property only", data={"n": 1})


def fields(conn: Any, login: str, record: Record | None = None, **change: Any) -> dict[str, Any]:
    """A correct entry for `login` (next seq, server time), with `change` applied."""
    size, at = head(conn)
    entry = entry_fields(size, at, login, record or allowed(login))
    entry.update(change)
    return entry


def shifted(time: str, **delta: float) -> str:
    moment = datetime.strptime(time, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return (moment + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def append(conn: Any, *bodies: bytes) -> None:
    conn.execute("SELECT scelle_append(%s)", [list(bodies)])


def canon(entry: dict[str, Any]) -> bytes:
    return canonical_bytes(entry)


# -- 1. holds: the table is not what the purge obeys -----------------------------------


@pytest.mark.parametrize("login", ATTACKERS)
def test_hold_table_edits_release_nothing(filmed: tuple[SiteEnv, int], login: str) -> None:
    """`UPDATE hold SET released_at = …` (allowed: display columns) and `DELETE FROM
    hold` (refused): the footage under the hold survives the purge."""
    env, start = filmed
    hold = place_hold(env, OPERATOR, start + 2 * MIN, start + 4 * MIN)  # minutes 2 and 3
    conn = connect(env, login)
    attempt(  # the display columns may or may not be writable: either way, no effect
        conn,
        "UPDATE hold SET released_at = '2026-01-01T00:00:00Z', released_by = %s, "
        "release_reason = 'released by SQL'",
        [SUPERVISOR],
    )
    refused(conn, "DELETE FROM hold", match="permission denied for table hold")
    refused(conn, "TRUNCATE hold", match="permission denied for table hold")
    refused(conn, "UPDATE hold SET end_us = start_us", match="permission denied")
    refused(conn, "UPDATE hold SET camera_id = 'C-0'", match="permission denied")
    conn.close()
    result = ok(purge(env))
    assert "destroyed 4 segment(s)" in result.stdout
    assert present(env, start) == {2, 3}
    listed = json.loads(ok(cli(env, OPERATOR, "hold", "list", "--json")).stdout)
    assert [(h["id"], h["released_at"]) for h in listed] == [(hold, None)]
    usable(env)


# -- 2. checkpoints ----------------------------------------------------------------------


def _note(origin: str, size: int | str, root: bytes | str, *signatures: str) -> str:
    root_text = root if isinstance(root, str) else base64.b64encode(root).decode()
    return f"{origin}\n{size}\n{root_text}\n\n" + "".join(f"{s}\n" for s in signatures)


def _sig(name: str, blob: bytes) -> str:
    return f"\u2014 {name} {base64.b64encode(blob).decode()}"


@dataclass(frozen=True)
class Log:
    """What an attacker reads of the log to build a checkpoint note."""

    origin: str
    name: str
    key_id: bytes
    size: int
    root: Callable[[int], bytes]
    sign: Callable[[str], bytes]  # the site key's signature (the attacker lacks it)

    def body(self, size: int, root: bytes) -> str:
        return f"{self.origin}\n{size}\n{base64.b64encode(root).decode()}\n"

    def good(self, size: int | None = None, root: bytes | None = None) -> str:
        """A note with a true signature by the site key, of `size` entries."""
        size = self.size if size is None else size
        root = self.root(size) if root is None else root
        blob = self.key_id + self.sign(self.body(size, root))
        return _note(self.origin, size, root, _sig(self.name, blob))


def log_of(env: SiteEnv) -> Log:
    with env.site.db.read() as cur:
        identity = read_identity(cur)
    signer = env.site.signer(PASSPHRASE)
    size = env.site.ledger.size()
    return Log(
        identity.origin,
        identity.key_name,
        key_id(identity.key_name, identity.public_key),
        size,
        lambda n: env.site.ledger.root(n)[1],
        lambda body: signer.sign(body.encode()),
    )


def _other_key(log: Log) -> str:
    other = Ed25519PrivateKey.generate()
    body = log.body(log.size, log.root(log.size))
    blob = key_id(log.name, other.public_key()) + other.sign(body.encode())
    return _note(log.origin, log.size, log.root(log.size), _sig(log.name, blob))


WRONG_NOTES: dict[str, tuple[Callable[[Log], str], str]] = {
    "ahead of the log": (
        lambda g: g.good(g.size + 1, g.root(g.size)),
        r"not a checkpoint of this log \(origin .*, size \d+ of \d+\)",
    ),
    "of size zero": (
        lambda g: _note(g.origin, 0, hashlib.sha256(b"").digest(), _sig(g.name, g.key_id * 17)),
        r"origin, size and root lines",
    ),
    "with a size written with a leading zero": (
        lambda g: _note(g.origin, f"0{g.size}", g.root(g.size), _sig(g.name, g.key_id * 17)),
        r"origin, size and root lines",
    ),
    "of another log": (
        lambda g: _note("elsewhere/ledger", g.size, g.root(g.size), _sig(g.name, g.key_id * 17)),
        r"not a checkpoint of this log \(origin elsewhere/ledger",
    ),
    "with the root of an earlier size": (
        lambda g: g.good(g.size, g.root(g.size - 1)),
        r"the checkpoint's root is not the log's root",
    ),
    "with a root that is not base64": (
        lambda g: _note(g.origin, g.size, "not-base64!", _sig(g.name, g.key_id * 17)),
        r"root is not base64",
    ),
    "signed by another key under the site's name": (
        _other_key,
        r"carries no signature line of the site key",
    ),
    "signed under another name": (
        lambda g: g.good().replace(f"\u2014 {g.name} ", "\u2014 someone-else "),
        r"carries no signature line of the site key",
    ),
    "with a signature too short to be Ed25519": (
        lambda g: _note(g.origin, g.size, g.root(g.size), _sig(g.name, g.key_id + b"x" * 8)),
        r"carries no signature line of the site key",
    ),
    "with no signature line": (
        lambda g: _note(g.origin, g.size, g.root(g.size)),
        r"origin, size and root lines",
    ),
    "with a line that is not a signature": (
        lambda g: g.good() + "not a signature\n",
        r"carries the site key's signature line alone",
    ),
    "with its signature line twice": (
        lambda g: g.good() + g.good().split("\n\n", 1)[1],
        r"carries the site key's signature line alone",
    ),
}


def test_checkpoint_rows_are_not_written_directly(shared: Shared) -> None:
    env = shared.env
    log = log_of(env)
    for login in ATTACKERS:
        conn = connect(env, login)
        refused(
            conn,
            "INSERT INTO ledger_checkpoint (tree_size, root, note, signed_at, signed_by, station) "
            "VALUES (%s, %s, %s, '2026-01-01T00:00:00Z', %s, 'x')",
            [log.size, log.root(log.size), log.good(), login],
            match="permission denied for table ledger_checkpoint",
        )
        for sql in (
            "UPDATE ledger_checkpoint SET signed_by = 'someone'",
            "DELETE FROM ledger_checkpoint",
            "TRUNCATE ledger_checkpoint",
        ):
            refused(conn, sql, match="permission denied for table ledger_checkpoint")
        conn.close()
    usable(env)


@pytest.mark.parametrize("variant", WRONG_NOTES)
def test_the_server_refuses_a_checkpoint_that_is_not_the_logs(shared: Shared, variant: str) -> None:
    env = shared.env
    make, message = WRONG_NOTES[variant]
    log = log_of(env)
    before = checkpoint_rows(env)
    for login in ATTACKERS:
        conn = connect(env, login)
        # The intruder may not record any checkpoint; the operator, only the log's own.
        expected = "intruder may not record checkpoints" if login == INTRUDER else message
        with pytest.raises(psycopg.errors.RaiseException, match=expected):
            conn.execute("SELECT scelle_add_checkpoint(%s, %s)", [make(log), "attack:/x"])
        conn.close()
    assert checkpoint_rows(env) == before
    usable(env)


@pytest.mark.parametrize("login", [OPERATOR])  # the intruder may record no checkpoint
def test_a_garbage_signature_raises_the_alarm_until_disavowed(
    site_env: SiteEnv, login: str
) -> None:
    """The server cannot check Ed25519: it takes a right body with a junk signature.
    `verify` names who added it; signing and appending go on; once an administrator
    disavows the row, verify passes."""
    env = site_env
    log = log_of(env)
    note = _note(log.origin, log.size, log.root(log.size), _sig(log.name, log.key_id + bytes(64)))
    conn = connect(env, login)
    conn.execute("SELECT scelle_add_checkpoint(%s, %s)", [note, "elsewhere:/checkpoints.txt"])
    (row,) = conn.execute("SELECT id FROM ledger_checkpoint WHERE note = %s", [note]).fetchone()
    conn.close()
    alarm = cli(env, AUDITOR, "ledger", "verify")
    assert alarm.exit_code == 4
    assert f"(a forged row, added by {login})" in alarm.stderr
    assert f"scelle ledger disavow {row} --reason" in alarm.stderr
    # the others go on meanwhile
    ok(cli(env, OPERATOR, "ledger", "note", "meanwhile", "--reason", "still appends"))
    ok(cli(env, AUDITOR, "audit", "--agent", login, "--json"))
    ok(cli(env, OPERATOR, "ledger", "checkpoint"))
    assert cli(env, AUDITOR, "ledger", "verify").exit_code == 4  # until it is disavowed
    not_theirs = cli(env, OPERATOR, "ledger", "disavow", str(row), "--reason", "mine")
    assert not_theirs.exit_code == 5  # an administrator's act
    disavowed = ok(cli(env, ADMIN, "ledger", "disavow", str(row), "--reason", "junk, by SQL"))
    assert f"added by {login}) disavowed" in disavowed.stdout
    usable(env)


@pytest.mark.parametrize("login", ATTACKERS)
def test_a_valid_note_replayed_under_a_stations_name_breaks_nothing(
    site_env: SiteEnv, login: str
) -> None:
    env = site_env
    ok(cli(env, OPERATOR, "ledger", "checkpoint"))
    conn = connect(env, login)
    (note,) = conn.execute("SELECT note FROM ledger_checkpoint ORDER BY id DESC LIMIT 1").fetchone()
    signature = note.split("\n\n", 1)[1]  # "— <name> <sig>\n"
    victim = station_id(env.settings.checkpoint_file)  # readable in ledger_checkpoint anyway
    attempt(conn, "SELECT scelle_add_checkpoint(%s, %s)", [note + signature, victim])
    conn.close()
    verify = cli(env, AUDITOR, "ledger", "verify")
    assert verify.exit_code == 0, verify.stderr
    usable(env)


# -- 3. the ledger's tables, written directly ---------------------------------------------


def _ledger_inserts(conn: Any, login: str) -> dict[str, tuple[str, list[Any]]]:
    size, _at = head(conn)
    body = canon(fields(conn, login))
    leaf = hashlib.sha256(b"\x00" + body).digest()
    return {
        "ledger_entry without its tree nodes": (
            "INSERT INTO ledger_entry (seq, body) VALUES (%s, %s)",
            [size, body],
        ),
        "ledger_node": (
            "INSERT INTO ledger_node (level, idx, hash) VALUES (0, %s, %s)",
            [size, leaf],
        ),
        "ledger_audit": (
            "INSERT INTO ledger_audit (seq, time, actor, action) VALUES (%s, %s, %s, %s)",
            [size, "2026-01-01T00:00:00.000000Z", login, "hold.release"],
        ),
        "ledger_audit_camera": (
            "INSERT INTO ledger_audit_camera (camera, seq) VALUES ('C-1', %s)",
            [size - 1],
        ),
        "ledger_policy": (
            "INSERT INTO ledger_policy (action, roles) VALUES ('ledger.anything', 'operator')",
            [],
        ),
    }


LEDGER_TABLES = [
    "ledger_entry without its tree nodes",
    "ledger_node",
    "ledger_audit",
    "ledger_audit_camera",
    "ledger_policy",
]


@pytest.mark.parametrize("target", LEDGER_TABLES)
def test_the_ledger_tables_are_written_only_by_the_functions(shared: Shared, target: str) -> None:
    env = shared.env
    size = ledger_size(env)
    for login in ATTACKERS:
        conn = connect(env, login)
        sql, params = _ledger_inserts(conn, login)[target]
        refused(conn, sql, params, match="permission denied for table")
        conn.close()
    assert ledger_size(env) == size
    usable(env)


REWRITES = [
    "UPDATE ledger_entry SET body = body",
    "DELETE FROM ledger_entry WHERE seq = 0",
    "UPDATE ledger_node SET hash = hash",
    "DELETE FROM ledger_audit",
    "UPDATE ledger_audit SET actor = 'nobody'",
    "DELETE FROM ledger_audit_camera",
    "UPDATE ledger_policy SET roles = 'operator,supervisor,auditor,admin'",
    "DELETE FROM ledger_policy",
    "TRUNCATE ledger_entry",
    "TRUNCATE ledger_audit",
    "TRUNCATE ledger_policy",
]


def test_the_ledger_tables_are_never_rewritten(shared: Shared) -> None:
    env = shared.env
    for login in ATTACKERS:
        conn = connect(env, login)
        with (
            pytest.raises(psycopg.errors.InsufficientPrivilege),  # COPY FROM is an INSERT
            conn.cursor() as cur,
            cur.copy("COPY ledger_entry (seq, body) FROM STDIN") as cp,
        ):
            cp.write_row([ledger_size(env), b"{}"])
        conn.close()
    all_refused(env, REWRITES)


# -- 4. appends through scelle_append ------------------------------------------------------

TIME = r"is not the server's time"
CANONICAL = r"not canonical JSON \(RFC 8785\)"
NEXT = r"not a scelle ledger entry with the next seq"


def _before_previous(conn: Any, login: str) -> list[bytes]:
    append(conn, canon(fields(conn, login)))  # a correct entry: the previous one is now
    (last,) = conn.execute("SELECT time FROM ledger_audit ORDER BY seq DESC LIMIT 1").fetchone()
    return [canon(fields(conn, login, time=shifted(last, microseconds=-1)))]


def _same_seq_twice(conn: Any, login: str) -> list[bytes]:
    first = fields(conn, login)
    return [canon(first), canon(first | {"reason": "a second entry, same seq"})]


def _escaped(conn: Any, login: str) -> list[bytes]:
    entry = fields(conn, login, reason="caméra")
    return [json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()]


# Each: entries as `login` (an agent's note, the intruder's refusal of itself) where
# only one property is wrong.
GENERIC: dict[str, tuple[Callable[[Any, str], list[bytes]], str]] = {
    "dated before the previous entry": (_before_previous, TIME),
    "dated five seconds in the future": (
        lambda c, lg: [canon(fields(c, lg, time=shifted(head(c)[1], seconds=5)))],
        TIME,
    ),
    "dated in 2099": (
        lambda c, lg: [canon(fields(c, lg, time="2099-01-01T00:00:00.000000Z"))],
        TIME,
    ),
    "dated ten minutes ago": (
        lambda c, lg: [canon(fields(c, lg, time=shifted(head(c)[1], minutes=-10)))],
        TIME,
    ),
    "dated without microseconds": (
        lambda c, lg: [canon(fields(c, lg, time=head(c)[1][:19] + "Z"))],
        TIME,
    ),
    "in another agent's name": (
        lambda c, lg: [canon(fields(c, lg, actor=SUPERVISOR))],
        r"must name the session's own role",
    ),
    "in the owner's name": (
        lambda c, lg: [canon(fields(c, lg, actor=ADMIN))],
        r"must name the session's own role",
    ),
    "with spaces": (
        lambda c, lg: [json.dumps(fields(c, lg), sort_keys=True, ensure_ascii=False).encode()],
        CANONICAL,
    ),
    "with a duplicated key": (
        lambda c, lg: [b'{"action":"agent.add",' + canon(fields(c, lg))[1:]],
        CANONICAL,
    ),
    "with a float": (
        lambda c, lg: [canon(fields(c, lg)).replace(b'"n":1', b'"n":1.5')],
        r"number 1.5 is not an integer",
    ),
    "with an exponent": (
        lambda c, lg: [canon(fields(c, lg)).replace(b'"n":1', b'"n":1e0')],
        r"not canonical JSON|is not an integer",
    ),
    "with its keys out of order": (
        lambda c, lg: [json.dumps(fields(c, lg), separators=(",", ":")).encode()],
        CANONICAL,
    ),
    "with a needless escape": (_escaped, CANONICAL),
    "with a trailing newline": (lambda c, lg: [canon(fields(c, lg)) + b"\n"], CANONICAL),
    "with a byte-order mark": (
        lambda c, lg: [b"\xef\xbb\xbf" + canon(fields(c, lg))],
        r"not JSON text|not canonical",
    ),
    "not UTF-8": (
        lambda c, lg: [canon(fields(c, lg, reason="caméra")).replace("é".encode(), b"\xe9")],
        r"not JSON text",
    ),
    "with a seq ahead": (lambda c, lg: [canon(fields(c, lg, seq=head(c)[0] + 1))], NEXT),
    "with the previous seq": (lambda c, lg: [canon(fields(c, lg, seq=head(c)[0] - 1))], NEXT),
    "two with one seq in one call": (_same_seq_twice, NEXT),
    "of another version": (lambda c, lg: [canon(fields(c, lg, v=2))], NEXT),
    "with an extra field": (lambda c, lg: [canon(fields(c, lg, signed_by_court=True))], NEXT),
    "with an empty reason": (
        lambda c, lg: [canon(fields(c, lg, reason="  "))],
        r"bad action, empty reason or empty procedure",
    ),
}


@pytest.mark.parametrize("attack", GENERIC)
def test_an_entry_wrong_in_one_property_is_refused(shared: Shared, attack: str) -> None:
    """As the operator (a note) and as the intruder (a refusal of itself)."""
    env = shared.env
    make, message = GENERIC[attack]
    for login in ATTACKERS:
        conn = connect(env, login)
        bodies = make(conn, login)
        size = ledger_size(env)
        with pytest.raises(psycopg.errors.RaiseException, match=message):
            append(conn, *bodies)
        conn.close()
        assert ledger_size(env) == size
    usable(env)


def _entry_by(login: str, record: Callable[[Shared], Record]) -> Callable[[Any, Shared], bytes]:
    return lambda conn, s: canon(fields(conn, login, record(s)))


# Each: (who, the entry, why the server refuses it).
ROLES: dict[str, tuple[str, Callable[[Any, Shared], bytes], str]] = {
    "an operator approving a requisition": (
        OPERATOR,
        _entry_by(
            OPERATOR, lambda s: Record("requisition.approve", {"requisition": s.requisition}, "ok")
        ),
        r"test-operator \(operator\) may not record requisition.approve",
    ),
    "an operator releasing a hold": (
        OPERATOR,
        _entry_by(
            OPERATOR, lambda s: Record("hold.release", {"camera": "C-1", "hold": s.hold}, "done")
        ),
        r"may not record hold.release",
    ),
    "an operator designating an agent": (
        OPERATOR,
        _entry_by(OPERATOR, lambda s: Record("agent.add", {"agent": INTRUDER}, "designated")),
        r"may not record agent.add",
    ),
    "an operator restating holds as released": (
        OPERATOR,
        _entry_by(
            OPERATOR, lambda s: Record("hold.restate", {"holds": []}, "none", data={"holds": []})
        ),
        r"may not record hold.restate",
    ),
    "an operator disavowing a checkpoint": (
        OPERATOR,
        _entry_by(OPERATOR, lambda s: Record("ledger.disavow", {"checkpoint": 1}, "forged")),
        r"may not record ledger.disavow",
    ),
    "an operator adding a camera with one day's retention": (
        OPERATOR,
        _entry_by(
            OPERATOR,
            lambda s: Record("camera.add", {"camera": "C-1"}, "edit", data={"retention_days": 1}),
        ),
        r"may not record camera.add",
    ),
    "an operator recording a purge's intent": (
        OPERATOR,
        _entry_by(
            OPERATOR,
            lambda s: Record("footage.destroy.intent", {"camera": "C-1", "purge": 9}, "expired"),
        ),
        r"may not record footage.destroy.intent",
    ),
    "an operator recording an unknown action": (
        OPERATOR,
        _entry_by(OPERATOR, lambda s: Record("site.init", "again", "a second genesis")),
        r"may not record site.init",
    ),
    "a supervisor approving a requisition they registered": (
        SUPERVISOR,
        _entry_by(
            SUPERVISOR,
            lambda s: Record("requisition.approve", {"requisition": s.requisition}, "ok"),
        ),
        r"test-supervisor registered requisition .* another supervisor decides",
    ),
    "a supervisor denying a requisition they registered": (
        SUPERVISOR,
        _entry_by(
            SUPERVISOR, lambda s: Record("requisition.deny", {"requisition": s.requisition}, "no")
        ),
        r"test-supervisor registered requisition",
    ),
    "a supervisor approving an unknown requisition": (
        SUPERVISOR,
        _entry_by(
            SUPERVISOR, lambda s: Record("requisition.approve", {"requisition": "1999-00001"}, "ok")
        ),
        r"\(or it is unknown\)",
    ),
    "a supervisor releasing a hold they placed": (
        SUPERVISOR,
        _entry_by(
            SUPERVISOR, lambda s: Record("hold.release", {"camera": "C-1", "hold": s.hold}, "done")
        ),
        r"test-supervisor placed hold \d+ .*another supervisor releases it",
    ),
    "a supervisor releasing hold `true` (Python's 1)": (
        SUPERVISOR,
        _entry_by(
            SUPERVISOR, lambda s: Record("hold.release", {"camera": "C-1", "hold": True}, "done")
        ),
        r"a hold.release entry without the fields scelle reads",
    ),
    "the intruder adding a note": (
        INTRUDER,
        _entry_by(INTRUDER, lambda s: Record("ledger.note", "x", "hello")),
        r"intruder is not an active designated agent",
    ),
    "the intruder placing a hold": (
        INTRUDER,
        _entry_by(
            INTRUDER,
            lambda s: Record(
                "hold.place",
                {"camera": "C-1", "hold": 1},
                "keep",
                data={"from_utc": "2026-11-01T00:00:00Z", "to_utc": "2026-11-02T00:00:00Z"},
            ),
        ),
        r"intruder is not an active designated agent",
    ),
    "the intruder recording another agent's refusal": (
        INTRUDER,
        _entry_by(INTRUDER, lambda s: Record("access.refused", {"agent": OPERATOR}, "framed")),
        r"a refusal names the refused login itself",
    ),
    "the intruder recording a refusal of nobody": (
        INTRUDER,
        _entry_by(INTRUDER, lambda s: Record("access.refused", INTRUDER, "no subject")),
        r"a refusal names the refused login itself",
    ),
}


@pytest.mark.parametrize("attack", ROLES)
def test_an_action_the_role_may_not_record_is_refused(shared: Shared, attack: str) -> None:
    env = shared.env
    login, make, message = ROLES[attack]
    conn = connect(env, login)
    body = make(conn, shared)
    size = ledger_size(env)
    with pytest.raises(psycopg.errors.RaiseException, match=message):
        append(conn, body)
    conn.close()
    assert ledger_size(env) == size
    usable(env)


def test_entries_right_in_every_property_are_accepted(shared: Shared) -> None:
    """The controls: the attacks above differ from these in one property only."""
    env = shared.env
    size = ledger_size(env)
    for login in ATTACKERS:
        conn = connect(env, login)
        append(conn, canon(fields(conn, login)))
        conn.close()
    assert ledger_size(env) == size + 2
    refusals = json.loads(ok(cli(env, AUDITOR, "audit", "--agent", INTRUDER, "--json")).stdout)
    assert refusals and {r["action"] for r in refusals} == {"access.refused"}
    usable(env)


def _malformed_hold(env: SiteEnv, conn: Any) -> None:
    record = Record("hold.place", {"camera": "C-1", "hold": 99}, "keep", data={"from_utc": "x"})
    append(conn, canon(fields(conn, OPERATOR, record)))


def _handover_dated_garbage(env: SiteEnv, conn: Any) -> None:
    """A requisition shown as handed over (writable columns), with an export and a
    handover entry (an operator's actions) whose time is not one."""
    (rid,) = conn.execute("SELECT MAX(id) FROM requisition").fetchone()
    conn.execute(
        "UPDATE requisition SET handed_at = 'x', export_path = '/nowhere' WHERE id = %s", [rid]
    )
    subject = {"requisition": rid}
    export = Record("requisition.export", subject, "sealed", data={"manifest_sha256": "0" * 64})
    append(conn, canon(fields(conn, OPERATOR, export)))
    handover = Record("requisition.handover", subject, "handed over", data={"at": "garbage"})
    append(conn, canon(fields(conn, OPERATOR, handover)))


@pytest.mark.parametrize(
    "poison",
    [_malformed_hold, _handover_dated_garbage],
    ids=["hold.place without times", "requisition.handover dated garbage"],
)
def test_an_operators_malformed_entry_breaks_nothing(
    filmed: tuple[SiteEnv, int], poison: Callable[[SiteEnv, Any], None]
) -> None:
    env, start = filmed
    register(env, OPERATOR, start, start + 2 * MIN)
    conn = connect(env, OPERATOR)
    with contextlib.suppress(psycopg.errors.RaiseException):  # refused: the safe outcome
        poison(env, conn)
    conn.close()
    ok(cli(env, OPERATOR, "hold", "list"))
    result = purge(env)
    assert result.exit_code in (0, 8), result.stderr
    usable(env)


def test_a_disabled_agent_appends_nothing(filmed: tuple[SiteEnv, int]) -> None:
    """`scelle agent disable` is enough: the server refuses the agent's appends."""
    env, _start = filmed
    ok(cli(env, ADMIN, "agent", "disable", OPERATOR, "--reason", "left the service"))
    conn = connect(env, OPERATOR)
    with pytest.raises(psycopg.errors.RaiseException, match="not an active designated agent"):
        append(conn, canon(fields(conn, OPERATOR)))
    append(conn, canon(fields(conn, OPERATOR, allowed_refusal(OPERATOR))))  # still may
    conn.close()
    ok(cli(env, AUDITOR, "ledger", "verify"))
    ok(cli(env, SUPERVISOR, "ledger", "note", "after", "--reason", "still appends"))
    ok(cli(env, AUDITOR, "audit", "--agent", OPERATOR, "--json"))
    ok(cli(env, SUPERVISOR, "ledger", "checkpoint"))


# -- 5. the workflow's tables --------------------------------------------------------------

WORKFLOW = [
    "UPDATE camera SET retention_days = 30 WHERE id = 'C-1'",
    "UPDATE camera SET store_path = '/tmp' WHERE id = 'C-1'",
    "UPDATE camera SET clock_offset_ms = 86400000 WHERE id = 'C-1'",
    "UPDATE segment SET path = 'C-1/elsewhere.mp4'",
    "UPDATE segment SET start_us = start_us - 86400000000, end_us = end_us - 86400000000",
    "UPDATE segment SET sha256 = repeat('0', 64)",
    "UPDATE segment SET batch_id = batch_id",
    "UPDATE ingest_batch SET ledger_seq = 0",
    "UPDATE requisition SET registered_by = 'test-operator'",
    "UPDATE requisition_window SET start_us = 0",
    "UPDATE hold SET start_us = 0, end_us = 1",
    "UPDATE agent SET role = 'supervisor' WHERE login = session_user",
    "INSERT INTO agent (login, name, role, designation, active, added_by, added_at) "
    "VALUES (session_user, 'x', 'admin', 'x', true, 'x', 'x')",
    "DELETE FROM segment",
    "DELETE FROM requisition",
    "DELETE FROM requisition_window",
    "DELETE FROM camera",
    "DELETE FROM ingest_batch",
    "DELETE FROM purge_run",
    "TRUNCATE segment",
    "TRUNCATE requisition CASCADE",
    "TRUNCATE camera CASCADE",
]


def all_refused(env: SiteEnv, statements: list[str]) -> None:
    """Every statement refused by PostgreSQL's privileges, for both attackers (listed
    together: a refused statement changes nothing, so one check of the log follows)."""
    problems = []
    for login in ATTACKERS:
        conn = connect(env, login)
        for statement in statements:
            try:
                with conn.transaction():  # LOCK TABLE is only tried in a transaction
                    conn.execute(statement)
                error: psycopg.Error | None = None
            except psycopg.Error as exc:
                error = exc
            if not isinstance(error, psycopg.errors.InsufficientPrivilege):
                problems.append(f"{login}: {statement}: {error!r}")
        conn.close()
    assert not problems, "not refused:\n" + "\n".join(problems)
    usable(env)


def test_workflow_columns_outside_scelles_writes_are_refused(shared: Shared) -> None:
    all_refused(shared.env, WORKFLOW)


@pytest.mark.parametrize("login", ATTACKERS)
def test_a_requisition_approved_by_sql_is_not_extracted(
    filmed: tuple[SiteEnv, int], login: str, tmp_path: Path
) -> None:
    """The state column is writable (scelle changes it); the approval is the ledger's."""
    env, start = filmed
    rid = register(env, OPERATOR, start, start + 2 * MIN)
    conn = connect(env, login)
    conn.execute(
        "UPDATE requisition SET state = 'approved', decided_by = %s, "
        "decided_at = '2026-01-01T00:00:00Z', decision_reason = 'ok' WHERE id = %s",
        [SUPERVISOR, rid],
    )
    conn.close()
    out = tmp_path / "exports"
    extract = cli(env, OPERATOR, "requisition", "extract", rid, "--out", str(out))
    assert extract.exit_code == 5
    assert f"requisition {rid} has no approval in the ledger" in extract.stderr
    assert not (out / rid).exists()
    assert not {"footage.extract", "requisition.export"} & set(actions(env))
    usable(env)


@pytest.mark.parametrize("login", ATTACKERS)
def test_a_window_added_by_sql_is_not_extracted(
    filmed: tuple[SiteEnv, int], login: str, tmp_path: Path
) -> None:
    env, start = filmed
    other = camera(env.site, "C-2", retention_days="30")
    fake_segments(env.site, other, start, 3)
    rid = register(env, OPERATOR, start, start + 2 * MIN)
    ok(cli(env, SUPERVISOR, "requisition", "approve", rid))
    conn = connect(env, login)
    attempt(
        conn,
        "INSERT INTO requisition_window (requisition_id, position, camera_id, start_us, end_us) "
        "VALUES (%s, 1, 'C-2', %s, %s)",
        [rid, start, start + 3 * MIN],
    )
    conn.close()
    out = tmp_path / "exports"
    cli(env, OPERATOR, "requisition", "extract", rid, "--out", str(out), "--stream-copy")
    exported = [p.name for p in out.rglob("*.mp4")]
    assert not [name for name in exported if name.startswith("C-2")], exported
    usable(env)


@pytest.mark.parametrize("login", ATTACKERS)
def test_a_forged_interrupted_purge_destroys_nothing_within_retention(
    filmed: tuple[SiteEnv, int], login: str
) -> None:
    env, _start = filmed
    recent = film(env, "C-2", retention="30", ago=60 * MIN)  # within its 30 days
    conn = connect(env, login)
    forged = attempt(
        conn,
        "INSERT INTO purge_run (started_at, now_utc, actor, state, segments, bytes, failures) "
        "VALUES ('2000-01-01T00:00:00Z', '2000-01-01T00:00:00Z', 'cron', 'intent', 0, 0, 0)",
    )
    if forged is None:
        attempt(
            conn,
            "UPDATE segment SET purge_run = (SELECT MAX(id) FROM purge_run) "
            "WHERE camera_id = 'C-2'",
        )
    conn.close()
    purge(env)
    assert present(env, recent, "C-2") == set(range(6))
    usable(env)


@pytest.mark.parametrize("login", ATTACKERS)
def test_footage_marked_destroyed_by_sql_is_still_found(
    filmed: tuple[SiteEnv, int], login: str
) -> None:
    env, start = filmed
    conn = connect(env, login)
    (path,) = conn.execute(
        "SELECT path FROM segment WHERE camera_id = 'C-1' AND start_us = %s", [start + 2 * MIN]
    ).fetchone()
    attempt(
        conn,
        "UPDATE segment SET destroyed_at = '2026-01-01T00:00:00Z' WHERE path = %s",
        [path],
    )
    conn.close()
    found = ok(
        cli(
            env,
            OPERATOR,
            "footage",
            "find",
            "C-1",
            "--from",
            local(start),
            "--to",
            local(start + 6 * MIN),
            "--json",
        )
    )
    assert path in [s["path"] for s in json.loads(found.stdout)["segments"]]
    usable(env)


@pytest.mark.parametrize("login", ATTACKERS)
def test_a_hold_row_inserted_by_sql_does_not_merge_later_holds(
    filmed: tuple[SiteEnv, int], login: str
) -> None:
    env, start = filmed
    conn = connect(env, login)
    attempt(
        conn,
        "INSERT INTO hold (id, camera_id, start_us, end_us, reason, placed_by, placed_at) "
        "VALUES (1000000, 'C-1', 0, 1, 'x', 'x', 'x')",
    )
    conn.close()
    first = place_hold(env, OPERATOR, start, start + MIN)  # minute 0
    second = place_hold(env, OPERATOR, start + 3 * MIN, start + 4 * MIN)  # minute 3
    ok(cli(env, SUPERVISOR, "hold", "release", str(first), "--reason", "procedure closed"))
    purge(env)
    assert 3 in present(env, start), "the second hold was released with the first"
    assert first != second
    usable(env)


@pytest.mark.parametrize("login", ATTACKERS)
def test_a_requisition_row_inserted_by_sql_does_not_stop_registrations(
    filmed: tuple[SiteEnv, int], login: str
) -> None:
    env, start = filmed
    conn = connect(env, login)
    attempt(
        conn,
        "INSERT INTO requisition (id, legal_basis, pv_number, officer_name, officer_unit, "
        "received_via, received_at, reason, state, registered_by, registered_at) VALUES "
        "(%s, '60-1', 'x', 'x', 'x', 'email', 'x', 'x', 'cancelled', 'x', 'x')",
        [f"{local(now_us())[:4]}-zzzzz"],
    )
    conn.close()
    result = cli(
        env,
        OPERATOR,
        "requisition",
        "register",
        "--legal-basis",
        "60-1",
        "--pv",
        "PV 2026/1",
        "--officer",
        "Brigadier Durand",
        "--unit",
        "BSU Villeurbanne",
        "--reason",
        "rixe",
        "--window",
        f"C-1={local(start)}/{local(start + 2 * MIN)}",
    )
    assert result.exit_code == 0, result.stderr
    usable(env)


@pytest.mark.parametrize("login", ATTACKERS)
def test_a_camera_inserted_by_sql_is_not_in_the_register(
    filmed: tuple[SiteEnv, int], login: str
) -> None:
    env, _start = filmed
    conn = connect(env, login)
    (store,) = conn.execute("SELECT store_path FROM camera WHERE id = 'C-1'").fetchone()
    attempt(
        conn,
        "INSERT INTO camera (id, name, location, commune, authorisation_ref, "
        "authorisation_expires, retention_days, timezone, store_kind, store_path, store_camera, "
        "clock_offset_ms, created_at) VALUES ('C-9', 'Ghost', 'x', 'x', 'AP-FORGED', "
        "'2099-01-01', 30, 'Europe/Paris', 'scelle', %s, 'C-1', 0, '2026-01-01T00:00:00Z')",
        [store],
    )
    conn.close()
    listed = ok(cli(env, OPERATOR, "camera", "list", "--json"))
    assert "C-9" not in [c["id"] for c in json.loads(listed.stdout)]
    assert "warning: camera C-9 is in the register but no camera.add entry" in listed.stderr
    refused = cli(
        env,
        OPERATOR,
        "footage",
        "find",
        "C-9",
        "--from",
        "2026-11-01T10:00",
        "--to",
        "2026-11-01T10:05",
    )
    assert refused.exit_code == 4 and "a row planted around scelle" in refused.stderr
    usable(env)


@pytest.mark.parametrize("login", ATTACKERS)
def test_a_segment_row_inserted_by_sql_is_not_footage(
    filmed: tuple[SiteEnv, int], login: str
) -> None:
    env, start = filmed
    conn = connect(env, login)
    (batch,) = conn.execute("SELECT MIN(id) FROM ingest_batch").fetchone()
    attempt(
        conn,
        "INSERT INTO segment (camera_id, path, start_us, end_us, size, sha256, batch_id) "
        "VALUES ('C-1', 'C-1/phantom.mp4', %s, %s, 1, repeat('0', 64), %s)",
        [start + 7 * MIN, start + 8 * MIN, batch],
    )
    conn.close()
    found = json.loads(
        ok(
            cli(
                env,
                OPERATOR,
                "footage",
                "find",
                "C-1",
                "--from",
                local(start + 4 * MIN),
                "--to",
                local(start + 9 * MIN),
                "--json",
            )
        ).stdout
    )
    assert "C-1/phantom.mp4" not in [s["path"] for s in found["segments"]]
    assert "missing" not in [g["kind"] for g in found["gaps"]]
    assert found["index_rows_rejected"] == ["C-1/phantom.mp4"] and not found["complete"]
    usable(env)


# -- 6. everything else: roles, schema, search_path, locks ------------------------------

ESCALATIONS = [
    'SET ROLE "test-admin"',
    'SET SESSION AUTHORIZATION "test-admin"',
    'GRANT "test-admin" TO CURRENT_USER',
    'GRANT scelle_app TO "test-auditor"',
    "CREATE FUNCTION public.btrim(name) RETURNS text LANGUAGE sql AS $$ SELECT 'x' $$",
    "CREATE OR REPLACE FUNCTION scelle_append(bytea[]) RETURNS void LANGUAGE sql AS $$ SELECT $$",
    "CREATE FUNCTION public.scelle_append(text[]) RETURNS void LANGUAGE sql AS $$ SELECT $$",
    "CREATE TABLE public.hold_shadow (id int)",
    "CREATE VIEW public.agents_view AS SELECT 1",
    "CREATE SCHEMA shadow",
    "CREATE TRIGGER shadow BEFORE INSERT ON hold FOR EACH ROW EXECUTE FUNCTION scelle_gapless()",
    "ALTER TABLE ledger_entry DISABLE TRIGGER ALL",
    "ALTER TABLE hold DISABLE TRIGGER ALL",
    "ALTER TABLE hold ADD COLUMN shadow int",
    "ALTER FUNCTION scelle_append(bytea[]) SECURITY INVOKER",
    "ALTER FUNCTION scelle_append(bytea[]) SET search_path = pg_temp, public",
    "ALTER DATABASE {database} SET search_path = pg_temp, public",
    'ALTER ROLE "test-supervisor" SET search_path = pg_temp, public',
    "COMMENT ON TABLE hold IS 'x'",
    "DROP FUNCTION scelle_append(bytea[])",
    "DROP TABLE hold",
    "COPY ledger_entry TO '/tmp/scelle-leak'",
    "COPY hold FROM PROGRAM 'true'",
    "LOCK TABLE hold IN ACCESS EXCLUSIVE MODE",
    "LOCK TABLE ledger_entry IN EXCLUSIVE MODE",
    "LOCK TABLE segment IN SHARE ROW EXCLUSIVE MODE",
]


def test_no_way_around_the_owner(shared: Shared) -> None:
    all_refused(shared.env, [s.format(database=shared.database) for s in ESCALATIONS])


def test_a_grant_without_grant_option_grants_nothing(shared: Shared) -> None:
    env = shared.env
    for login in ATTACKERS:
        conn = connect(env, login)
        # PostgreSQL only warns: "no privileges were granted" / "could be revoked"
        conn.execute(f'GRANT INSERT, UPDATE ON ledger_entry, hold TO "{login}"')
        conn.execute("REVOKE EXECUTE ON FUNCTION scelle_append(bytea[]) FROM scelle_app")
        for table, right in (("ledger_entry", "INSERT"), ("hold", "UPDATE")):
            (has,) = conn.execute(
                "SELECT has_table_privilege(%s, %s, %s)", [login, table, right]
            ).fetchone()
            assert not has, (login, table, right)
        (can,) = conn.execute(
            "SELECT has_function_privilege('scelle_app', 'scelle_append(bytea[])', 'EXECUTE')"
        ).fetchone()
        assert can
        conn.close()
    usable(env)


def test_no_agent_ends_another_ones_session(shared: Shared) -> None:
    env = shared.env
    victim = connect(env, SUPERVISOR)
    (pid,) = victim.execute("SELECT pg_backend_pid()").fetchone()
    for login in ATTACKERS:
        conn = connect(env, login)
        for fn in ("pg_terminate_backend", "pg_cancel_backend"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT {fn}(%s)", [pid])
        conn.close()
    assert victim.execute("SELECT 1").fetchone() == (1,)
    victim.close()
    usable(env)


def test_temporary_shadows_do_not_reach_the_functions(shared: Shared) -> None:
    """TEMP objects are the attacker's own session's, and first on its search_path; the
    SECURITY DEFINER functions pin `public, pg_temp` (and PostgreSQL never looks functions
    up in pg_temp), so a shadow `agent`, `ledger_policy` or `ledger_audit`, or a shadow
    `btrim`/`lower`, changes nothing they decide."""
    env = shared.env
    conn = connect(env, INTRUDER)
    conn.execute("CREATE TEMP TABLE agent AS SELECT * FROM public.agent")
    conn.execute("UPDATE pg_temp.agent SET login = 'intruder' WHERE login = 'test-supervisor'")
    conn.execute("CREATE TEMP TABLE ledger_policy AS SELECT * FROM public.ledger_policy")
    conn.execute("UPDATE pg_temp.ledger_policy SET roles = 'operator,supervisor,admin'")
    assert conn.execute("SELECT role FROM agent WHERE login = 'intruder'").fetchone() == (
        "supervisor",
    )
    with pytest.raises(psycopg.errors.RaiseException, match="not an active designated agent"):
        append(conn, canon(fields(conn, INTRUDER, Record("ledger.note", "x", "shadowed"))))
    conn.close()
    conn = connect(env, SUPERVISOR)
    conn.execute("CREATE TEMP TABLE ledger_audit AS SELECT * FROM public.ledger_audit LIMIT 0")
    for fn, arg in (("btrim", "name"), ("btrim", "text"), ("lower", "text")):
        conn.execute(
            f"CREATE FUNCTION pg_temp.{fn}({arg}) RETURNS text LANGUAGE sql "
            "AS $$ SELECT md5(random()::text) $$"
        )
    record = Record("requisition.approve", {"requisition": shared.requisition}, "shadowed")
    with pytest.raises(psycopg.errors.RaiseException, match="registered requisition"):
        append(conn, canon(fields(conn, SUPERVISOR, record)))
    conn.close()
    usable(env)


def _purge_lock_key() -> int:
    digest = hashlib.sha256(b"scelle:purge").digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@pytest.mark.parametrize("login", ATTACKERS)
def test_the_ledger_lock_held_for_ever_stops_nobody(site_env: SiteEnv, login: str) -> None:
    env = site_env
    holder = connect(env, login)
    holder.execute("SELECT pg_advisory_lock(%s)", [PG_LEDGER_LOCK])
    try:  # the advisory key of old: scelle's writers no longer wait on it
        note = cli(
            env,
            OPERATOR,
            "ledger",
            "note",
            "x",
            "--reason",
            "y",
            extra={"PGOPTIONS": "-c lock_timeout=1000"},
        )
    finally:
        holder.close()
    assert note.exit_code == 0, note.stderr
    usable(env)


def test_the_purge_lock_held_by_an_intruder_stops_no_purge(
    filmed: tuple[SiteEnv, int],
) -> None:
    env, start = filmed
    holder = connect(env, INTRUDER)
    holder.execute("SELECT pg_advisory_lock(%s)", [_purge_lock_key()])
    try:
        result = purge(env)
    finally:
        holder.close()
    assert result.exit_code == 0, result.stderr
    assert present(env, start) == set()
    usable(env)


def test_row_locks_held_by_an_intruder_stop_no_purge(filmed: tuple[SiteEnv, int]) -> None:
    """Locking rows needs a right to change them: segment rows are changed only through
    the purge's own functions, so no member can lock them and make the purge wait."""
    env, start = filmed
    for login in ATTACKERS:
        holder = connect(env, login)
        holder.autocommit = False
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            holder.execute("SELECT id FROM segment FOR UPDATE")
        holder.close()
    result = cli(env, SUPERVISOR, "purge")
    assert result.exit_code == 0, result.stderr
    assert present(env, start) == set()
    usable(env)


def test_the_long_locks_are_an_agents_and_a_held_ledger_lock_is_one_line(
    filmed: tuple[SiteEnv, int],
) -> None:
    """What is left of lock abuse: the purge's and an extraction's locks are taken only
    through scelle_lock, by an active agent (the intruder is refused); the ledger's lock
    is every member's to wait for, and one who sits on it in an open transaction makes the
    others' writes fail after lock_timeout with one line, nothing written."""
    env, _start = filmed
    conn = connect(env, INTRUDER)
    with pytest.raises(psycopg.errors.RaiseException, match="not an active designated agent"):
        conn.execute("SELECT scelle_lock('purge', false)")
    conn.close()
    holder = connect(env, OPERATOR)
    holder.autocommit = False
    assert holder.execute("SELECT scelle_lock('ledger', true)").fetchone() == (True,)
    try:
        size = ledger_size(env)
        note = cli(
            env,
            SUPERVISOR,
            "ledger",
            "note",
            "x",
            "--reason",
            "y",
            extra={"PGOPTIONS": "-c lock_timeout=1000"},
        )
        assert note.exit_code == 6
        assert note.stderr.startswith(
            "scelle: error: another session held the site's write lock past the wait allowed "
            "(lock_timeout, 60 s unless set): nothing was written\n"
        )
        assert ledger_size(env) == size
    finally:
        holder.close()
    usable(env)


def test_agents_may_not_create_objects_where_the_owners_functions_look(
    site_env: SiteEnv, pg_server: PgServer
) -> None:
    """PostgreSQL <= 14 let PUBLIC create objects in `public`, where the owner's SECURITY
    DEFINER functions resolve names: an agent's better-matching function would run as
    the owner. Every upgrade takes that right back, or refuses when it cannot."""
    database = make_url(site_env.settings.database_url).database
    assert database
    pg_server.execute("GRANT CREATE ON SCHEMA public TO PUBLIC", database=database)
    upgraded = run_cli(["db", "upgrade"], env=site_env.env_as(ADMIN))
    assert upgraded.exit_code == 0, upgraded.stderr
    with raw_connection(site_env, login=OPERATOR) as conn, pytest.raises(Exception) as refused:
        conn.execute(
            "CREATE FUNCTION public.convert_from(bytea, text) RETURNS text "
            "LANGUAGE sql AS 'SELECT 1::text'"
        )
    assert type(refused.value).__name__ == "InsufficientPrivilege"
    # Granted by the schema's owner (here the superuser), the site's owner cannot take
    # it back: the upgrade refuses, naming who could create, and changes nothing.
    pg_server.execute(
        f"ALTER SCHEMA public OWNER TO {SUPERUSER}",
        "GRANT CREATE ON SCHEMA public TO PUBLIC",
        database=database,
    )
    refused_upgrade = run_cli(["db", "upgrade"], env=site_env.env_as(ADMIN))
    assert refused_upgrade.exit_code != 0
    assert "public" in refused_upgrade.stderr and OPERATOR in refused_upgrade.stderr
    assert "Traceback" not in refused_upgrade.stderr


# -- 9. session settings: the owner's functions read their own text one way ------------


@pytest.mark.parametrize("login", ATTACKERS)
def test_a_session_without_standard_strings_changes_no_check(shared: Shared, login: str) -> None:
    """`SET standard_conforming_strings = off` makes a backslash in a string literal an
    escape: the owner's functions, compiled in the agent's session, would read '^\\s*$'
    as '^s*$' and '\\x00' as a zero byte. They carry the setting themselves: with it off,
    a correct entry is appended (its leaf hashed as everywhere) and a blank procedure or
    a time of another form is still refused."""
    env = shared.env

    def append(conn: Any, body: bytes) -> None:  # binary: psycopg escapes text for literals
        conn.execute("SELECT scelle_append(%b)", [[body]])

    for entry, message in (
        (lambda c: fields(c, login, procedure="   "), r"empty procedure"),
        (
            lambda c: fields(c, login, time=head(c)[1].replace(".", "x")),
            r"is not the server's time",
        ),
        (lambda c: fields(c, login), None),
    ):
        conn = connect(env, login)
        conn.execute("SET standard_conforming_strings = off")
        size = ledger_size(env)
        if message is None:
            append(conn, canon(entry(conn)))
            assert ledger_size(env) == size + 1
        else:
            with pytest.raises(psycopg.errors.RaiseException, match=message):
                append(conn, canon(entry(conn)))
            assert ledger_size(env) == size
        conn.close()
    usable(env)
