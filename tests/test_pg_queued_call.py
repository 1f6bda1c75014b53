"""Schema v19 under attack and at its edges (custody/pg_queue.py PG_V19): the procedure
scelle_queued_append (session settings, transaction control, durability of what it
says) and scelle_entry_shape's fast path, against a real server."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from custody.entry import Record
from custody.ledger import pieces
from tests.conftest import OPERATOR, SUPERVISOR, SiteEnv, raw_connection
from tests.test_pg_queue import (
    CALL,
    caller,
    entries_by,
    lock_held,
    pending_rows,
    wait_until_queued,
)

pytestmark = pytest.mark.backends("postgresql")


def _args(login: str, subject: str) -> list[Any]:
    head, mid = pieces(login, Record("ledger.note", subject, "queued"))
    return [[head], [mid]]


def test_a_caller_at_repeatable_read_is_told_what_the_ledger_holds(
    site_env: SiteEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller whose sessions default to REPEATABLE READ (PGOPTIONS, or a database's
    ALTER DATABASE ... SET default_transaction_isolation), queued behind the lock. In
    57ea57d its wait (the procedure's second transaction) ran at REPEATABLE READ,
    scelle_drain refused it, the error left the procedure, the client said "the database
    refused the write", and the row, committed by the procedure's COMMIT, was appended by
    the next group. (Before v19 the client withdrew its row on any error.)"""
    monkeypatch.setenv("PGOPTIONS", "-c default_transaction_isolation=repeatable\\ read")
    before = site_env.site.ledger.size()
    with lock_held(site_env):
        proc = caller(site_env, OPERATOR, "ledger.note", "told")
        wait_until_queued(site_env, 1)
    out, err = proc.communicate(timeout=60)
    monkeypatch.delenv("PGOPTIONS")
    site_env.site.ledger.append(SUPERVISOR, Record("ledger.note", "next", "group"))
    subjects = [e["subject"] for s, e in entries_by(site_env).items() if s >= before]
    if proc.returncode == 0:
        assert int(out) == before and subjects == ["told 0", "next"]
    else:
        assert subjects == ["next"], f"told {out + err!r}, yet appended: {subjects}"


def test_a_repeatable_read_wait_is_told_what_a_group_appended(site_env: SiteEnv) -> None:
    """The same when another session's group appends the row: in 57ea57d the caller's
    wait (REPEATABLE READ, its snapshot older than the group's commit) still saw it
    queued, drained, was refused, and the procedure raised "refused" for an entry in the
    ledger (before v19 the client read the outcome again and returned its seq)."""
    conn = raw_connection(site_env, OPERATOR)
    conn.execute("SET default_transaction_isolation = 'repeatable read'")
    group = raw_connection(site_env)
    group.autocommit = False
    group.execute("SELECT scelle_lock('ledger', true)")
    before = site_env.site.ledger.size()
    thread, done = _call_in_thread(conn, _args(OPERATOR, "held"))
    wait_until_queued(site_env, 1)
    time.sleep(0.3)  # the caller waits for the lock
    group.execute("SELECT * FROM scelle_drain(NULL, NULL, NULL)")
    group.commit()
    thread.join(timeout=30)
    group.close()
    conn.close()
    assert [e["subject"] for s, e in entries_by(site_env).items() if s >= before] == ["held"]
    assert "row" in done, f"told {done}, yet appended"
    assert done["row"][1] == before and done["row"][3] is None


def _sync_rep(pg_server: Any, on: bool) -> None:
    """A synchronous standby that never comes: a commit at synchronous_commit = on
    waits in SyncRep, one at off does not (how the tests see a commit's durability)."""
    value = "'never_connects'" if on else "''"
    pg_server.execute(
        f"ALTER SYSTEM SET synchronous_standby_names = {value}", "SELECT pg_reload_conf()"
    )
    time.sleep(0.3)


def _waits_in_sync_rep(pg_server: Any, pid: int, seconds: float = 3.0) -> bool:
    owner = psycopg.connect(
        f"host=127.0.0.1 port={pg_server.port} user=postgres dbname=postgres", autocommit=True
    )
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            row = owner.execute(
                "SELECT wait_event FROM pg_stat_activity WHERE pid = %s", [pid]
            ).fetchone()
            if row and row[0] == "SyncRep":
                return True
            time.sleep(0.05)
        return False
    finally:
        owner.close()


def _call_in_thread(conn: Any, args: list[Any]) -> tuple[threading.Thread, dict[str, Any]]:
    done: dict[str, Any] = {}

    def call() -> None:
        try:
            done["row"] = conn.execute(CALL, args).fetchone()
        except psycopg.Error as exc:
            done["error"] = exc

    thread = threading.Thread(target=call)
    thread.start()
    return thread, done


@pytest.mark.parametrize(
    ("setting", "code", "ending"),
    [
        ("statement_timeout", "57014", "nothing was written"),  # the procedure's withdraw
        ("lock_timeout", "55P03", "lock timeout"),  # scelle_await's own, older than v19
    ],
)
def test_nothing_was_written_is_said_after_a_durable_commit(
    site_env: SiteEnv, pg_server: Any, setting: str, code: str, ending: str
) -> None:
    """A caller's session at synchronous_commit = off (as a site may set it), its wait
    ended by a timeout: "nothing was written" is said only once the withdrawal's commit
    is durable (it waits here for a synchronous standby that never comes); at off, a
    crash could bring the queued row back for the next group to append."""
    conn = raw_connection(site_env, OPERATOR)
    pid = conn.info.backend_pid
    conn.execute("SET synchronous_commit = off")
    conn.execute(f"SET {setting} = '500ms'")
    try:
        with lock_held(site_env):
            started = time.monotonic()
            _sync_rep(pg_server, True)
            thread, done = _call_in_thread(conn, _args(OPERATOR, "withdrawn"))
            durable = _waits_in_sync_rep(pg_server, pid)
            _sync_rep(pg_server, False)
            thread.join(timeout=30)
            assert time.monotonic() - started < 30
        assert done["row"][4] == code and done["row"][3].endswith(ending), done
        assert pending_rows(site_env) == []
        assert durable, "the withdrawal was committed at synchronous_commit = off"
    finally:
        _sync_rep(pg_server, False)
        conn.close()


@pytest.mark.parametrize("queued", [False, True])
def test_appended_is_said_after_a_durable_commit(
    site_env: SiteEnv, pg_server: Any, queued: bool
) -> None:
    """Sound: both ways to "appended" (at once; queued, then appended by this caller
    once the lock is free) commit at synchronous_commit = on, whatever the session's."""
    conn = raw_connection(site_env, OPERATOR)
    pid = conn.info.backend_pid
    conn.execute("SET synchronous_commit = off")
    try:
        if queued:
            with lock_held(site_env):
                thread, done = _call_in_thread(conn, _args(OPERATOR, "queued"))
                wait_until_queued(site_env, 1)
                _sync_rep(pg_server, True)
        else:
            _sync_rep(pg_server, True)
            thread, done = _call_in_thread(conn, _args(OPERATOR, "at once"))
        durable = _waits_in_sync_rep(pg_server, pid)
        _sync_rep(pg_server, False)
        thread.join(timeout=30)
        assert done["row"][1] is not None, done
        assert durable
    finally:
        _sync_rep(pg_server, False)
        conn.close()


def test_a_call_in_a_transaction_block(site_env: SiteEnv) -> None:
    """Sound: inside BEGIN, a queued call cannot COMMIT (2D000) and its row goes with
    the block; a call appended at once is the block's to commit or roll back."""
    conn = raw_connection(site_env, OPERATOR)
    before = site_env.site.ledger.size()
    with lock_held(site_env):
        conn.execute("BEGIN")
        with pytest.raises(psycopg.errors.InvalidTransactionTermination):
            conn.execute(CALL, _args(OPERATOR, "in a block"))
        conn.execute("ROLLBACK")
        assert pending_rows(site_env) == []
    conn.execute("BEGIN")
    row = conn.execute(CALL, _args(OPERATOR, "rolled back")).fetchone()
    assert row[1] is not None
    conn.execute("ROLLBACK")
    assert site_env.site.ledger.size() == before
    conn.close()


def test_search_path_changes_only_the_callers_own_message(
    site_env: SiteEnv, pg_server: Any
) -> None:
    """The procedure has no SET search_path, and names nothing a caller's own schema
    could shadow: an operator || of the caller's, first in its search_path, changes
    nothing of what it is told; the definer functions are untouched (their SET
    search_path). Without CREATE anywhere (scelle revokes it on public) an agent cannot
    even try."""
    name = site_env.settings.database_url.rsplit("/", 1)[1]
    pg_server.execute(f'CREATE SCHEMA mine AUTHORIZATION "{OPERATOR}"', database=name)
    conn = raw_connection(site_env, OPERATOR)
    conn.execute(
        "CREATE FUNCTION mine.cat(text, text) RETURNS text LANGUAGE sql "
        "AS $$ SELECT 'appended, honestly' $$"
    )
    conn.execute("CREATE OPERATOR mine.|| (FUNCTION = mine.cat, LEFTARG = text, RIGHTARG = text)")
    conn.execute("SET search_path = mine, pg_catalog, public")
    conn.execute("SET statement_timeout = '300ms'")
    with lock_held(site_env):
        row = conn.execute(CALL, _args(OPERATOR, "shadowed")).fetchone()
    assert row[3].endswith("statement timeout: nothing was written") and row[4] == "57014"
    assert pending_rows(site_env) == []
    conn.close()
    other = raw_connection(site_env, SUPERVISOR)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        other.execute("CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    other.close()


def test_an_undesignated_member_and_other_logins_rows(site_env: SiteEnv) -> None:
    """Sound: the procedure adds nothing to the functions' rights: a member of
    scelle_app who is not a designated agent queues nothing but its own refusal; nobody
    reads or withdraws another login's row through it."""
    intruder = raw_connection(site_env, "intruder")
    with pytest.raises(psycopg.errors.RaiseException, match="not an active designated"):
        intruder.execute(CALL, _args("intruder", "mine"))
    with pytest.raises(psycopg.errors.RaiseException, match="own role"):
        intruder.execute(CALL, _args(OPERATOR, "in another's name"))
    assert pending_rows(site_env) == []
    op = raw_connection(site_env, OPERATOR)
    op.autocommit = False
    with lock_held(site_env):
        row = op.execute("SELECT id FROM scelle_submit(%b, %b)", _args(OPERATOR, "op's")).fetchone()
        op.commit()
        assert intruder.execute("SELECT scelle_withdraw(%s)", [row[0]]).fetchone()[0] is False
        with pytest.raises(psycopg.errors.RaiseException, match="no entries queued"):
            intruder.execute("SELECT * FROM scelle_await(%s, '1s')", [row[0]])
        assert op.execute("SELECT scelle_withdraw(%s)", [row[0]]).fetchone()[0] is True
        op.commit()
    intruder.close()
    op.close()


def _fast_path_cases() -> tuple[bytes, list[bytes]]:
    import json

    from custody.canonical import canonical_bytes
    from custody.errors import InputError
    from custody.pg_queue import PLACEHOLDER_TIME

    base = {
        "v": 1,
        "seq": 0,
        "time": PLACEHOLDER_TIME,
        "actor": "x",
        "action": "ledger.note",
        "subject": "s",
        "reason": "r",
        "procedure": None,
        "data": {},
    }

    def canon(entry: dict[str, Any]) -> bytes:
        try:
            return canonical_bytes(entry)
        except InputError:  # numbers canonical_bytes refuses: sorted, unescaped
            return json.dumps(
                entry, separators=(",", ":"), sort_keys=True, ensure_ascii=False
            ).encode()

    values: list[Any] = [
        "s",
        "",
        "é",
        "\ue000",
        "\U0010ffff",
        'a"b\\c\n\t\x01\x7f\u2028',
        None,
        True,
        False,
        0,
        -1,
        5,
        2**53 - 1,
        2**53,
        1.5,
        [],
        [1, "a", None, {"b": 1}],
        {},
        {"\ue000": 1, "z": 2, "\U0001f600": 3, "a": {"\uffff": 1, "\ud7ff": 2}},
        {"a": []},
    ]
    cases = [canon({**base, field: v}) for field in base for v in values]
    good = canonical_bytes({**base, "data": {"n": 1, "s": "x"}, "subject": {"cameras": ["c"]}})
    swaps = [
        (b'"seq":0', b'"seq":0.0'),
        (b'"seq":0', b'"seq":-0'),
        (b'"seq":0', b'"seq":0e0'),
        (b'"v":1}', b'"v":1e0}'),
        (b'"v":1}', b'"v":1.0}'),
        (b'"n":1', b'"n":1e0'),
        (b'"n":1', b'"n":-0'),
        (b'"x"', b'"\\u0078"'),
        (b'"x"', b'"\\u0000"'),
        (b'{"action"', b'{"action":"dup","action"'),
        (b'"v":1}', b'"v":1,"v":1}'),
        (b'"seq":0', b'"seq":0,"seq":0'),
        (b',"time"', b',"zzz":1,"time"'),
        (b'"v":1}', b'"v":1} '),
        (b'"procedure":null', b'"procedure":"null"'),
        (b'"r"', b'"\\/"'),
        (b'"s":"x"', b'"s":"\\ud83d\\ude00"'),
        (b'"s":"x"', b'"s":"\\u001F"'),
        (b'"s":"x"', b'"s":"\\u0008"'),
        (b'"seq":0', b'"seq":"0"'),
        (b'"v":1}', b'"v":"1"}'),
        (b'"actor":"x"', b'"actor":["x"]'),
        (b'"data":{', b'"data":{"\xee\x80\x80":1,"z":2,'),
        (b'"data":{', b'"data":{"z":2,"\xee\x80\x80":1,'),
        (b'"data":{', b'"data":{"\xf0\x9f\x98\x80":1,"\xee\x80\x80":2,'),
    ]
    cases += [good.replace(a, b, 1) for a, b in swaps]
    cases += [b"null", b"[]", b'"x"', b"{}", b"\xff", good[:-1]]
    for depth in (100, 300, 600):
        cases.append(
            good.replace(
                b'"data":{', b'"data":{"a":' + b'{"a":' * depth + b"{}" + b"}" * depth + b",", 1
            )
        )
    return good, cases


def test_the_fast_path_says_what_the_whole_check_said(site_env: SiteEnv) -> None:
    """Sound, with one unreachable exception: scelle_entry_shape with the v19 fast path
    and with the whole-entry check it replaced (the same text, the CASE taken out) give
    the same verdict and message on adversarial spellings (duplicate keys, escapes, 0.0,
    1e0, -0, keys from U+E000, NUL, nesting, every JSON type, null and "null"), except a
    seq beyond 2^53-1, which the whole check refused and the fast path accepts."""
    import re

    from custody import pg_queue

    text = next(s for s in pg_queue.PG_V16 if "FUNCTION scelle_entry_shape(" in s)
    whole = re.sub(
        r"convert_to\(CASE.*?ELSE scelle_canonical\(e\) END, 'UTF8'\)",
        "convert_to(scelle_canonical(e), 'UTF8')",
        text,
        flags=re.S,
    )
    assert whole != text
    whole = whole.replace("FUNCTION scelle_entry_shape(", "FUNCTION pg_temp.whole_shape(")
    whole = whole.replace("STABLE SET", "STABLE SET standard_conforming_strings = on SET")
    owner = raw_connection(site_env)
    owner.execute(whole)

    def verdict(function: str, body: bytes, seq: int) -> tuple[str, ...]:
        try:
            row = owner.execute(
                f"SELECT {function}(%s, %s, 'x', false, 'e')::text", [body, seq]
            ).fetchone()
            return ("ok", row[0])
        except psycopg.Error as exc:
            return (exc.sqlstate or "", str(exc).splitlines()[0])

    good, cases = _fast_path_cases()
    for body in cases:
        for seq in (0, 7):
            spelt = body.replace(b'"seq":0', b'"seq":%d' % seq, 1) if seq else body
            assert verdict("pg_temp.whole_shape", spelt, seq) == verdict(
                "scelle_entry_shape", spelt, seq
            ), spelt
    for seq in (2**53, -(2**53)):
        body = good.replace(b'"seq":0', b'"seq":%d' % seq, 1)
        assert verdict("pg_temp.whole_shape", body, seq)[0] == "P0001"
        assert verdict("scelle_entry_shape", body, seq)[0] == "ok"
    owner.close()
