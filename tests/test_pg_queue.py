"""PostgreSQL's grouped appends (custody/pg_queue.py): entries queued by several real
processes, each under its own login, appended many to a commit by whoever holds the
ledger's lock, each checked against the login that queued it.

To make a group for sure, the test holds the ledger's lock itself (as the site's owner,
as any writer may) while the callers queue, then lets go: one of them appends them all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from custody import audit, pg_queue
from custody.canonical import canonical_bytes
from custody.entry import Record, decode_entry, entry_fields
from custody.ledger import Ledger, pieces
from custody.verify import verify_ledger
from tests.conftest import AUDITOR, OPERATOR, SUPERVISOR, SiteEnv, raw_connection

pytestmark = pytest.mark.backends("postgresql")

ROOT = Path(__file__).resolve().parent.parent

# One caller: appends `count` entries (action, subject) as `actor`, prints each seq, or
# prints the refusal and exits with its code, as the CLI would. Ctrl-C interrupts it as
# in an operator's terminal, even when the tests run as a background job (whose children
# inherit SIGINT ignored).
APPENDER = textwrap.dedent(
    """
    import signal
    import sys
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from custody.db import Database
    from custody.entry import Record
    from custody.errors import ScelleError
    from custody.ledger import Ledger

    url, actor, action, subject, count = sys.argv[1:6]
    ledger = Ledger(Database(url))
    try:
        for i in range(int(count)):
            print(ledger.append(actor, Record(action, f"{subject} {i}", "grouped")).seq)
    except ScelleError as exc:
        print(exc.message)
        sys.exit(int(exc.exit_code))
    """
)


def url_as(env: SiteEnv, login: str) -> str:
    url = make_url(env.settings.database_url).set(username=login)
    return url.render_as_string(hide_password=False)


def caller(env: SiteEnv, login: str, action: str, subject: str, count: int = 1) -> Any:
    return subprocess.Popen(
        [sys.executable, "-c", APPENDER, url_as(env, login), login, action, subject, str(count)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def queued(env: SiteEnv) -> int:
    conn = raw_connection(env)
    try:
        return int(
            conn.execute(
                "SELECT COUNT(*) FROM ledger_pending WHERE seq IS NULL AND refusal IS NULL"
            ).fetchone()[0]
        )
    finally:
        conn.close()


def wait_until_queued(env: SiteEnv, rows: int) -> None:
    deadline = time.monotonic() + 60
    while queued(env) < rows:
        assert time.monotonic() < deadline, f"{queued(env)} rows queued, not {rows}"
        time.sleep(0.05)


@contextmanager
def lock_held(env: SiteEnv) -> Iterator[None]:
    """The ledger's lock held by another session (an idle writer): callers queue."""
    conn = psycopg.connect(
        host=make_url(env.settings.database_url).host,
        port=make_url(env.settings.database_url).port,
        dbname=make_url(env.settings.database_url).database,
        user=make_url(env.settings.database_url).username,
    )
    conn.execute("SELECT scelle_lock('ledger', true)")
    try:
        yield
    finally:
        conn.rollback()
        conn.close()


def sessions_of(env: SiteEnv, login: str) -> int:
    conn = raw_connection(env)
    try:
        query = "SELECT COUNT(*) FROM pg_stat_activity WHERE usename = %s"
        return int(conn.execute(query, [login]).fetchone()[0])
    finally:
        conn.close()


def entries_by(env: SiteEnv) -> dict[int, dict[str, Any]]:
    return {seq: decode_entry(body) for seq, body in Ledger(env.site.db).entries()}


def pending_rows(env: SiteEnv) -> list[tuple[Any, ...]]:
    conn = raw_connection(env)
    try:
        return list(conn.execute("SELECT login, seq, refusal FROM ledger_pending ORDER BY id"))
    finally:
        conn.close()


def test_agents_processes_append_gapless_one_tree(site_env: SiteEnv) -> None:
    """Six processes under three agents' logins, 60 entries each, at once."""
    before = site_env.site.ledger.size()
    procs = [
        caller(site_env, login, "ledger.note", f"{login} {k}", 60)
        for login in (OPERATOR, SUPERVISOR, AUDITOR)
        for k in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err for _out, err in outputs]
    seqs = sorted(int(s) for out, _err in outputs for s in out.split())
    assert seqs == list(range(before, before + 360))
    found = entries_by(site_env)
    assert sorted(found) == list(range(before + 360))
    for login in (OPERATOR, SUPERVISOR, AUDITOR):
        assert sum(e["actor"] == login for e in found.values()) == 120
    assert verify_ledger(site_env.site.db, site_env.settings).entries == before + 360
    audit.recompute(site_env.site.db)  # every index row is its entry's
    assert pending_rows(site_env) == []  # every caller read and dropped its row


def test_a_refused_entry_is_refused_to_its_caller_only(site_env: SiteEnv) -> None:
    """One group: a note, an approval the operator's role may not record, a note; the
    refused caller gets the server's reason and exit 4, the two notes are appended."""
    before = site_env.site.ledger.size()
    with lock_held(site_env):
        first = caller(site_env, OPERATOR, "ledger.note", "first")
        wait_until_queued(site_env, 1)
        refused = caller(site_env, OPERATOR, "requisition.approve", "2026-00001")
        wait_until_queued(site_env, 2)
        last = caller(site_env, SUPERVISOR, "ledger.note", "last")
        wait_until_queued(site_env, 3)
    out_first, _ = first.communicate(timeout=60)
    out_refused, _ = refused.communicate(timeout=60)
    out_last, _ = last.communicate(timeout=60)
    assert (first.returncode, last.returncode) == (0, 0)
    assert refused.returncode == 4
    assert out_refused.strip() == (
        "the database refused the write: test-operator (operator) may not record "
        "requisition.approve"
    )
    assert (int(out_first), int(out_last)) == (before, before + 1)  # one group, in order
    found = entries_by(site_env)
    assert sorted(found) == list(range(before + 2))
    assert [found[before]["subject"], found[before + 1]["subject"]] == ["first 0", "last 0"]
    assert [found[s]["actor"] for s in (before, before + 1)] == [OPERATOR, SUPERVISOR]
    verify_ledger(site_env.site.db, site_env.settings)
    assert pending_rows(site_env) == []


def test_a_caller_killed_after_queuing_blocks_nobody(site_env: SiteEnv, pg_server: Any) -> None:
    """Killed while waiting (and its session gone with it): its queued entry is appended
    by the next group (it was queued by an authenticated login, and checked), and its
    unread result is dropped once that session is gone."""
    before = site_env.site.ledger.size()
    database = make_url(site_env.settings.database_url).database
    with lock_held(site_env):
        doomed = caller(site_env, OPERATOR, "ledger.note", "killed")
        wait_until_queued(site_env, 1)
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=30)
        # The server ends a session whose client is gone when it next talks to it; a
        # session waiting for a lock would first append the queue itself (the same for
        # everyone else), so this one is ended now.
        pg_server.execute(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{OPERATOR}'",
            database=database,
        )
        deadline = time.monotonic() + 30
        while sessions_of(site_env, OPERATOR):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    later = site_env.site.ledger.append(SUPERVISOR, Record("ledger.note", "later", "goes on"))
    assert later.seq == before + 1
    found = entries_by(site_env)
    assert (found[before]["actor"], found[before]["subject"]) == (OPERATOR, "killed 0")
    verify_ledger(site_env.site.db, site_env.settings)
    assert pending_rows(site_env) == [(OPERATOR, before, None)]  # appended, unread
    conn = raw_connection(site_env)  # as if a minute had passed
    conn.execute(
        "UPDATE ledger_pending SET queued_at = queued_at - interval '2 minutes', "
        "done_at = done_at - interval '2 minutes'"
    )
    conn.close()
    site_env.site.ledger.append(SUPERVISOR, Record("ledger.note", "again", "goes on"))
    assert pending_rows(site_env) == []


def test_a_wait_past_lock_timeout_writes_nothing(site_env: SiteEnv) -> None:
    """The message says nothing was written: the row is withdrawn, not appended later."""
    before = site_env.site.ledger.size()
    conn = raw_connection(site_env, OPERATOR)
    conn.execute("SET lock_timeout = '200ms'")
    head, mid = pieces(OPERATOR, Record("ledger.note", "too late", "waited"))
    with lock_held(site_env):
        (queued_id,) = conn.execute(
            "SELECT id FROM scelle_submit(%s, %s)", [[head], [mid]]
        ).fetchone()
        assert queued_id is not None
        seq, _at, refusal, code = conn.execute(
            "SELECT * FROM scelle_await(%s, '60s')", [queued_id]
        ).fetchone()
    conn.close()
    assert (seq, code) == (None, "55P03") and "lock timeout" in refusal
    assert pending_rows(site_env) == []
    site_env.site.ledger.append(OPERATOR, Record("ledger.note", "after", "still appends"))
    assert [e["subject"] for s, e in entries_by(site_env).items() if s >= before] == ["after"]


def _queue(conn: Any, heads: list[bytes], mids: list[bytes]) -> tuple[Any, ...]:
    return tuple(conn.execute("SELECT * FROM scelle_submit(%s, %s)", [heads, mids]).fetchone())


def test_an_agent_queues_only_in_its_own_name_and_touches_only_its_own_rows(
    site_env: SiteEnv,
) -> None:
    operator = raw_connection(site_env, OPERATOR)
    for sql in (
        "SELECT * FROM ledger_pending",
        "INSERT INTO ledger_pending (login, pid, heads, mids, queued_at) "
        "VALUES ('test-supervisor', 1, '{}', '{}', now())",
        "UPDATE ledger_pending SET login = 'test-operator'",
        "DELETE FROM ledger_pending",
        "TRUNCATE ledger_pending",
        "SELECT scelle_drain(NULL, NULL, NULL)",
        "SELECT scelle_entries_add('test-supervisor', true, '{}', 0, NULL, '{}')",
        "SELECT scelle_bodies('{}', '{}', 0, 'x')",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            operator.execute(sql)
    # in the supervisor's name: refused when queued
    head, mid = pieces(SUPERVISOR, Record("ledger.note", "forged", "not mine"))
    with pytest.raises(psycopg.errors.RaiseException, match="must name the session's own role"):
        _queue(operator, [head], [mid])
    # the supervisor's queued row: the operator can neither read, take back nor drop it
    supervisor = raw_connection(site_env, SUPERVISOR)
    head, mid = pieces(SUPERVISOR, Record("ledger.note", "mine", "queued"))
    with lock_held(site_env):
        theirs = _queue(supervisor, [head], [mid])[0]
        assert theirs is not None
        with pytest.raises(psycopg.errors.RaiseException, match="no entries queued by test-op"):
            operator.execute("SELECT * FROM scelle_await(%s, '1s')", [theirs])
        assert operator.execute("SELECT scelle_withdraw(%s)", [theirs]).fetchone()[0] is False
        assert pending_rows(site_env) == [(SUPERVISOR, None, None)]
    seq, _at, refusal, _code = supervisor.execute(
        "SELECT * FROM scelle_await(%s, '60s')", [theirs]
    ).fetchone()
    assert refusal is None
    assert decode_entry(site_env.site.ledger.entry(seq))["subject"] == "mine"
    operator.close()
    supervisor.close()


def _lying_pieces() -> tuple[bytes, bytes]:
    """Pieces that cut a note around a `seq` inside its data: checked whole, seq 0 and
    the placeholder time make a canonical entry; put the real seq there and the entry's
    own seq stays 0."""
    entry = entry_fields(0, pg_queue.PLACEHOLDER_TIME, OPERATOR, Record("ledger.note", "s", "r"))
    entry["data"] = {"seq": 0, "subject": "x"}
    whole = canonical_bytes(entry)
    cut = whole.index(b'"seq":0,"subject":"x"') + len(b'"seq":')
    end = whole.index(pg_queue.PLACEHOLDER_TIME.encode())
    assert whole[end:] == pg_queue.PLACEHOLDER_TIME.encode() + pg_queue.TAIL
    return whole[:cut], whole[cut + 1 : end]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: (b'{"action":"ledger.note",', b',"subject":"s","time":"'), "not pieces"),
        (lambda: (b'"seq":', b',"time":"'), "not pieces"),
        (
            lambda: (
                pieces(OPERATOR, Record("ledger.note", "s", "r"))[0].replace(b"note", b"Note"),
                pieces(OPERATOR, Record("ledger.note", "s", "r"))[1],
            ),
            "bad action",
        ),
        (
            lambda: (
                pieces(OPERATOR, Record("ledger.note", "s", "r"))[0].replace(b",", b", ", 1),
                pieces(OPERATOR, Record("ledger.note", "s", "r"))[1],
            ),
            "not canonical",
        ),
    ],
)
def test_pieces_that_are_not_an_entry_are_refused_when_queued(
    site_env: SiteEnv, make: Any, message: str
) -> None:
    before = site_env.site.ledger.size()
    conn = raw_connection(site_env, OPERATOR)
    head, mid = make()
    with pytest.raises(psycopg.errors.RaiseException, match=message):
        _queue(conn, [head], [mid])
    conn.close()
    assert site_env.site.ledger.size() == before
    assert pending_rows(site_env) == []


def test_a_seq_put_elsewhere_than_the_entrys_own_is_refused(site_env: SiteEnv) -> None:
    before = site_env.site.ledger.size()
    conn = raw_connection(site_env, OPERATOR)
    head, mid = _lying_pieces()
    _id, seq, _at, refusal, code = _queue(conn, [head], [mid])  # the lock is free: at once
    conn.close()
    assert seq is None and code == "P0001"
    assert "not a scelle ledger entry with the next seq" in refusal
    assert site_env.site.ledger.size() == before
    verify_ledger(site_env.site.db, site_env.settings)


def _submit_binary(conn: Any, login: str, subject: str) -> int:
    """Queue one note as `login` (binary: psycopg's text form of bytea depends on the
    session's standard_conforming_strings)."""
    head, mid = pieces(login, Record("ledger.note", subject, "queued"))
    (queued_id,) = conn.execute("SELECT id FROM scelle_submit(%b, %b)", [[head], [mid]]).fetchone()
    assert queued_id is not None
    return int(queued_id)


def _await(conn: Any, queued_id: int) -> tuple[Any, ...]:
    return tuple(conn.execute("SELECT * FROM scelle_await(%s, '60s')", [queued_id]).fetchone())


def test_a_session_without_standard_strings_appends_the_group_unchanged(
    site_env: SiteEnv,
) -> None:
    """The session that appends a group compiles the owner's functions for everyone's
    rows: with `standard_conforming_strings = off` it must still take them all."""
    before = site_env.site.ledger.size()
    odd = raw_connection(site_env, OPERATOR)
    odd.execute("SET standard_conforming_strings = off")
    plain = raw_connection(site_env, SUPERVISOR)
    with lock_held(site_env):
        mine = _submit_binary(odd, OPERATOR, "odd session")
        theirs = _submit_binary(plain, SUPERVISOR, "plain session")
    assert _await(odd, mine)[2:] == (None, None)  # appends both, as the group
    assert _await(plain, theirs)[2:] == (None, None)
    odd.close()
    plain.close()
    found = entries_by(site_env)
    assert [found[s]["subject"] for s in (before, before + 1)] == ["odd session", "plain session"]
    verify_ledger(site_env.site.db, site_env.settings)


def test_a_row_held_by_a_group_is_never_waited_for_forever(site_env: SiteEnv) -> None:
    """While a group holds a queued row (here: a session holding its lock), taking it
    back answers at once (no), and a wait past lock_timeout says the outcome is not
    known yet, never that nothing was written; once the group ends, the row is
    appended and its caller reads it."""
    before = site_env.site.ledger.size()
    conn = raw_connection(site_env, OPERATOR)
    with lock_held(site_env):
        queued_id = _submit_binary(conn, OPERATOR, "held")
    group = raw_connection(site_env)
    group.autocommit = False
    group.execute("SELECT id FROM ledger_pending WHERE id = %s FOR UPDATE", [queued_id])
    t = time.monotonic()
    assert conn.execute("SELECT scelle_withdraw(%s)", [queued_id]).fetchone()[0] is False
    assert time.monotonic() - t < 5
    conn.execute("SET lock_timeout = '300ms'")
    seq, _at, refusal, code = _await(conn, queued_id)
    assert (seq, code) == (None, "SC002")
    assert "still being appended by another session" in refusal
    assert pending_rows(site_env) == [(OPERATOR, None, None)]  # not withdrawn
    group.rollback()
    group.close()
    conn.execute("RESET lock_timeout")
    seq, _at, refusal, _code = _await(conn, queued_id)
    conn.close()
    assert (seq, refusal) == (before, None)
    assert entries_by(site_env)[before]["subject"] == "held"
    assert pending_rows(site_env) == []


CALL = "CALL scelle_queued_append(%b, %b, '60s', NULL, NULL, NULL, NULL, NULL)"


def _call(conn: Any, login: str, subject: str) -> tuple[Any, ...]:
    """One note appended as `login` the way scelle appends: submit, commit and wait, in
    one round trip (custody/pg_queue.py PG_V19)."""
    head, mid = pieces(login, Record("ledger.note", subject, "queued"))
    return tuple(conn.execute(CALL, [[head], [mid]]).fetchone())


def test_a_caller_interrupted_while_queued_takes_its_entry_back(site_env: SiteEnv) -> None:
    """Ctrl-C while a real caller waits behind the ledger's lock: its client cancels the
    call, the procedure takes the queued row back, and nothing is written, then or later."""
    before = site_env.site.ledger.size()
    with lock_held(site_env):
        interrupted = caller(site_env, OPERATOR, "ledger.note", "interrupted")
        wait_until_queued(site_env, 1)
        interrupted.send_signal(signal.SIGINT)
        _out, err = interrupted.communicate(timeout=30)
        assert interrupted.returncode != 0
        assert "KeyboardInterrupt" in err
        assert pending_rows(site_env) == []  # withdrawn while the lock was still held
    site_env.site.ledger.append(SUPERVISOR, Record("ledger.note", "after", "goes on"))
    assert [e["subject"] for s, e in entries_by(site_env).items() if s >= before] == ["after"]
    verify_ledger(site_env.site.db, site_env.settings)


def test_a_statement_timeout_while_queued_writes_nothing_and_says_so(site_env: SiteEnv) -> None:
    """A session's statement_timeout that ends the wait: the row is taken back and the
    caller told so (57014, "nothing was written"), not left to a later group."""
    before = site_env.site.ledger.size()
    conn = raw_connection(site_env, OPERATOR)
    conn.execute("SET statement_timeout = '300ms'")
    with lock_held(site_env):
        queued_id, seq, _at, refusal, code = _call(conn, OPERATOR, "timed out")
        assert queued_id is not None and seq is None
        assert code == "57014" and refusal.endswith(": nothing was written")
        assert pending_rows(site_env) == []
    conn.close()
    site_env.site.ledger.append(SUPERVISOR, Record("ledger.note", "after", "goes on"))
    assert [e["subject"] for s, e in entries_by(site_env).items() if s >= before] == ["after"]


def test_an_interrupted_call_whose_row_a_group_holds_leaves_its_outcome_to_the_ledger(
    site_env: SiteEnv,
) -> None:
    """Interrupted while a group holds its row: the row is not taken back (the group may
    be appending it), the interruption is raised, and the entry goes in with the group."""
    before = site_env.site.ledger.size()
    conn = raw_connection(site_env, OPERATOR)
    conn.execute("SET statement_timeout = '500ms'")
    group = raw_connection(site_env)
    group.autocommit = False
    with lock_held(site_env):
        done: dict[str, Any] = {}

        def call() -> None:
            try:
                done["row"] = _call(conn, OPERATOR, "held")
            except psycopg.errors.QueryCanceled as exc:
                done["error"] = exc

        waiting = threading.Thread(target=call)
        waiting.start()
        wait_until_queued(site_env, 1)
        group.execute("SELECT id FROM ledger_pending WHERE seq IS NULL FOR UPDATE")
        waiting.join(timeout=30)
        assert "row" not in done and "canceling statement" in str(done["error"])
        group.rollback()
    group.close()
    conn.close()
    assert pending_rows(site_env) == [(OPERATOR, None, None)]  # not withdrawn
    site_env.site.ledger.append(SUPERVISOR, Record("ledger.note", "next", "group"))
    assert [e["subject"] for s, e in entries_by(site_env).items() if s >= before] == [
        "held",
        "next",
    ]
    verify_ledger(site_env.site.db, site_env.settings)


def test_only_the_application_role_calls_the_queued_append(site_env: SiteEnv) -> None:
    """The procedure runs in its caller's name, granted to scelle_app only: a login
    outside it is refused before anything is queued."""
    owner = raw_connection(site_env)
    owner.execute('CREATE ROLE "outsider" LOGIN')
    outsider = raw_connection(site_env, "outsider")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _call(outsider, "outsider", "not an agent")
    outsider.close()
    owner.close()
    assert pending_rows(site_env) == []
    conn = raw_connection(site_env, OPERATOR)
    queued_id, seq, _at, refusal, _code = _call(conn, OPERATOR, "an agent's")
    conn.close()
    assert (queued_id, refusal) == (None, None)  # the lock was free: appended at once
    assert entries_by(site_env)[seq]["subject"] == "an agent's"


def test_results_unread_for_an_hour_are_dropped_even_for_a_live_session(
    site_env: SiteEnv,
) -> None:
    """A live session that never reads its result (interrupted twice) leaves a row; the
    next group drops it after an hour, so the queue does not grow for good."""
    conn = raw_connection(site_env, OPERATOR)
    with lock_held(site_env):
        _submit_binary(conn, OPERATOR, "never read")
    site_env.site.ledger.append(SUPERVISOR, Record("ledger.note", "drains", "the queue"))
    assert [row[0] for row in pending_rows(site_env)] == [OPERATOR]  # appended, unread
    owner = raw_connection(site_env)
    owner.execute(
        "UPDATE ledger_pending SET queued_at = queued_at - interval '30 minutes', "
        "done_at = done_at - interval '30 minutes'"
    )
    site_env.site.ledger.append(SUPERVISOR, Record("ledger.note", "half an hour", "later"))
    assert [row[0] for row in pending_rows(site_env)] == [OPERATOR]  # its session lives
    owner.execute(
        "UPDATE ledger_pending SET queued_at = queued_at - interval '2 hours', "
        "done_at = done_at - interval '2 hours'"
    )
    site_env.site.ledger.append(SUPERVISOR, Record("ledger.note", "two hours", "later"))
    assert pending_rows(site_env) == []
    owner.close()
    conn.close()


def test_refused_first_or_last_the_rest_of_the_group_goes_in_in_order(
    site_env: SiteEnv,
) -> None:
    """A group is appended in one savepoint, and again one savepoint a row when one is
    refused: wherever the refused row is, the others go in, in queue order, gapless."""
    before = site_env.site.ledger.size()
    with lock_held(site_env):
        callers = []
        for n, (login, action, subject) in enumerate(
            [
                (OPERATOR, "requisition.approve", "2026-00001"),  # refused: first
                (OPERATOR, "ledger.note", "a"),
                (SUPERVISOR, "ledger.note", "b"),
                (OPERATOR, "requisition.approve", "2026-00002"),  # refused: last
            ],
            start=1,
        ):
            callers.append(caller(site_env, login, action, subject))
            wait_until_queued(site_env, n)
    outs = [c.communicate(timeout=60)[0] for c in callers]
    assert [c.returncode for c in callers] == [4, 0, 0, 4]
    assert [int(outs[1]), int(outs[2])] == [before, before + 1]
    found = entries_by(site_env)
    assert sorted(found) == list(range(before + 2))
    assert [found[before]["subject"], found[before + 1]["subject"]] == ["a 0", "b 0"]
    verify_ledger(site_env.site.db, site_env.settings)
    audit.recompute(site_env.site.db)
    assert pending_rows(site_env) == []


def upgrade_to(site_env: SiteEnv, version: int) -> None:
    """`scelle db upgrade` by the administrator applies that one migration."""
    from tests.conftest import ADMIN, run_cli

    site_env.site.close()
    upgraded = run_cli(["db", "upgrade"], env=site_env.env_as(ADMIN))
    assert upgraded.exit_code == 0, upgraded.stderr
    assert upgraded.stdout.strip() == f"applied migrations v{version}"


def two_queued_appends_go_in(site_env: SiteEnv, note: str) -> None:
    """Two agents' notes queued behind a held lock are appended in order, and the log
    verifies."""
    before = Ledger(site_env.site.db).size()
    with lock_held(site_env):
        first = caller(site_env, OPERATOR, "ledger.note", note)
        wait_until_queued(site_env, 1)
        second = caller(site_env, SUPERVISOR, "ledger.note", note)
        wait_until_queued(site_env, 2)
    assert [int(p.communicate(timeout=60)[0]) for p in (first, second)] == [before, before + 1]
    verify_ledger(site_env.site.db, site_env.settings)


def test_v17_gives_a_site_made_before_it_the_current_functions(site_env: SiteEnv) -> None:
    """Before v17, scelle_utc was declared IMMUTABLE (so never inlined) and the drain and
    the canonical check had other texts: `db upgrade` puts in the current definitions,
    the same as a new site's, and grouped appends go on."""
    names = ("scelle_utc", "scelle_canonical", "scelle_drain")
    owner = raw_connection(site_env)

    def definitions() -> dict[str, str]:
        query = "SELECT pg_get_functiondef(%s::regproc)"
        return {name: owner.execute(query, [name]).fetchone()[0] for name in names}

    def volatility() -> str:
        query = "SELECT provolatile FROM pg_proc WHERE proname = 'scelle_utc'"
        return str(owner.execute(query).fetchone()[0])

    current = definitions()
    assert volatility() == "s"
    owner.execute("ALTER FUNCTION scelle_utc(timestamptz) IMMUTABLE")  # as v6 made it
    owner.execute("ALTER FUNCTION scelle_drain(text, bytea[], bytea[]) SET work_mem = '1MB'")
    owner.execute("ALTER FUNCTION scelle_canonical(jsonb) SET work_mem = '1MB'")
    owner.execute("DELETE FROM schema_version WHERE version = 17")
    assert definitions() != current and volatility() == "i"
    upgrade_to(site_env, 17)
    assert definitions() == current and volatility() == "s"
    two_queued_appends_go_in(site_env, "after v17")
    owner.close()


def test_v18_gives_a_site_made_before_it_the_queue_functions_that_never_scan_its_heap(
    site_env: SiteEnv,
) -> None:
    """Before v18 the queue's functions planned with whatever statistics the queue had:
    `db upgrade` puts in the current definitions, the same as a new site's."""
    names = {
        "scelle_drain": "text, bytea[], bytea[]",
        "scelle_await": "bigint, text",
        "scelle_withdraw": "bigint",
    }
    owner = raw_connection(site_env)

    def definitions() -> dict[str, str]:
        query = "SELECT pg_get_functiondef(%s::regproc)"
        return {name: owner.execute(query, [name]).fetchone()[0] for name in names}

    current = definitions()
    assert all("SET enable_seqscan TO 'off'" in d for d in current.values())
    assert all("SET jit TO 'off'" in d for d in current.values())
    for name, arguments in names.items():
        for setting in ("enable_seqscan", "jit"):  # as v17
            owner.execute(f"ALTER FUNCTION {name}({arguments}) RESET {setting}")
    owner.execute("DELETE FROM schema_version WHERE version = 18")
    assert all("enable_seqscan" not in d and "jit" not in d for d in definitions().values())
    upgrade_to(site_env, 18)
    assert definitions() == current
    two_queued_appends_go_in(site_env, "after v18")
    owner.close()


def test_v19_gives_a_site_made_before_it_the_queued_append_in_one_round_trip(
    site_env: SiteEnv,
) -> None:
    """Before v19 a queued append took two round trips: `db upgrade` adds the procedure,
    with the same text and rights as a new site's, and grouped appends go through it."""
    owner = raw_connection(site_env)
    query = (
        "SELECT pg_get_functiondef(p.oid), p.proacl::text[] FROM pg_proc p "
        "WHERE p.oid = to_regprocedure('scelle_queued_append(bytea[],bytea[],text)')"
    )
    current = owner.execute(query).fetchone()
    assert current is not None and "COMMIT" in current[0]
    assert any(grant.startswith("scelle_app=X/") for grant in current[1])
    owner.execute("DROP PROCEDURE scelle_queued_append(bytea[], bytea[], text)")
    owner.execute("DELETE FROM schema_version WHERE version = 19")
    upgrade_to(site_env, 19)
    assert owner.execute(query).fetchone() == current
    two_queued_appends_go_in(site_env, "after v19")
    owner.close()


def read_by_one_group(owner: Any, query: str) -> int:
    """How much the counter `query` reads (its first column) grows while the owner's
    session drains the queue as one group: this session's own statistics, flushed at
    once."""
    owner.execute("SELECT pg_stat_force_next_flush()")
    before = owner.execute(query).fetchone()[0]
    owner.execute("BEGIN")
    assert owner.execute("SELECT scelle_lock('ledger', true)").fetchone()[0] is True
    owner.execute("SELECT * FROM scelle_drain(NULL, NULL, NULL)")
    owner.execute("COMMIT")
    owner.execute("SELECT pg_stat_force_next_flush()")
    return int(owner.execute(query).fetchone()[0]) - int(before)


def test_a_group_reads_the_queue_from_its_oldest_row_not_from_what_vacuum_has_not_cleared(
    site_env: SiteEnv,
) -> None:
    """A row queued, appended and read leaves its entry in the queue's partial index
    until the next VACUUM: up to a minute of appends, a hundred thousand at 2,000 a
    second. A group that read the queue from that index's start walked all of them, and
    appends slowed down minute after minute (2,006, 1,583, 1,161, 881 a second in four
    15-second phases). It reads from the oldest row still there, which the primary key
    finds at once: what it reads of that index does not grow with what VACUUM has left."""
    owner = raw_connection(site_env)
    owner.execute("ALTER TABLE ledger_pending SET (autovacuum_enabled = false)")
    owner.execute(
        "INSERT INTO ledger_pending (login, pid, heads, mids, queued_at, expires_at) "
        "SELECT 'gone', 0, '{}', '{}', now(), now() FROM generate_series(1, 20000)"
    )
    owner.execute("UPDATE ledger_pending SET seq = 0, done_at = now()")  # appended: out of it
    owner.execute("DELETE FROM ledger_pending")  # read by their callers
    query = (
        "SELECT idx_blks_hit + idx_blks_read, pg_relation_size('ledger_pending_queued') / 8192 "
        "FROM pg_statio_user_indexes WHERE indexrelname = 'ledger_pending_queued'"
    )

    read_by_one_group(owner, query)  # the first walk marks the dead entries as such
    pages = int(owner.execute(query).fetchone()[1])
    assert pages > 20  # what VACUUM has yet to clear
    assert read_by_one_group(owner, query) <= 3, pages  # index blocks one group reads
    site_env.site.ledger.append(OPERATOR, Record("ledger.note", "after", "the old rows"))
    owner.execute("ALTER TABLE ledger_pending RESET (autovacuum_enabled)")
    owner.close()


def test_a_group_reads_the_queue_through_its_indexes_whatever_its_statistics_say(
    site_env: SiteEnv,
) -> None:
    """The queue holds a few rows at a time in a heap that a minute of appends swells to
    thousands of pages before VACUUM shrinks it again, and statistics taken on it (by
    autovacuum's ANALYZE, at any moment) say it is empty. A group's plans, cached by its
    session, then read the queue, and marked its rows, by scanning the whole heap: a
    millisecond a statement, and a round of the PostgreSQL bench fell from 2,000 to
    1,600 appends a second after each ANALYZE. The queue's functions read it through its
    indexes now: what a group reads does not grow with its heap."""
    owner = raw_connection(site_env)
    owner.execute("ALTER TABLE ledger_pending SET (autovacuum_enabled = false)")
    owner.execute("VACUUM ANALYZE ledger_pending")  # empty, a page or none: as after VACUUM
    query = (
        "SELECT heap_blks_hit + COALESCE(heap_blks_read, 0), "
        "pg_relation_size('ledger_pending') / 8192 "
        "FROM pg_statio_user_tables WHERE relname = 'ledger_pending'"
    )

    def drained() -> int:
        """Heap blocks one group reads to refuse one expired row (this session's own
        statistics, flushed at once)."""
        owner.execute(
            "INSERT INTO ledger_pending (login, pid, heads, mids, queued_at, expires_at) "
            "VALUES ('gone', 0, '{}', '{}', now() - interval '20 seconds', "
            "now() - interval '10 seconds')"
        )
        read = read_by_one_group(owner, query)
        refused = owner.execute(
            "DELETE FROM ledger_pending WHERE seq IS NULL RETURNING refusal_code"
        ).fetchall()
        assert refused == [("55P03",)]  # past its wait: refused, as its caller was told
        return read

    for _ in range(8):  # past the five custom plans: the session keeps generic ones
        assert drained() <= 20
    # The heap swollen (here by results not read yet, so that no dead index entry is
    # walked: what is measured is the plans alone).
    owner.execute(
        "INSERT INTO ledger_pending (login, pid, heads, mids, queued_at, expires_at, seq, "
        "at, done_at) SELECT 'gone', 0, '{}', '{}', now(), now(), 0, 'then', now() "
        "FROM generate_series(1, 20000)"
    )
    pages = int(owner.execute(query).fetchone()[1])
    assert pages > 200
    assert drained() <= 20, pages
    owner.execute("DELETE FROM ledger_pending")
    owner.execute("ALTER TABLE ledger_pending RESET (autovacuum_enabled)")
    owner.close()
    site_env.site.ledger.append(OPERATOR, Record("ledger.note", "after", "the swollen queue"))


def test_a_group_compiles_none_of_its_plans(site_env: SiteEnv) -> None:
    """`enable_seqscan = off` prices at 10^10 the seq scans nothing else can do: the drop
    of results left unread (no index), and, nested, the agent's row looked up by a login
    of collation "C" (session_user's), which the primary key cannot serve. Past
    jit_above_cost, LLVM compiled each of them at every run: 20-160 ms an append, the
    ledger's lock held, and one result left unread a minute by any member of scelle_app
    (who may take the ledger's lock and queue with a wait of 1 ms) made every group pay
    it for an hour. The queue's functions compile none of their plans."""
    owner = raw_connection(site_env)
    # A result left unread for two minutes by a session still there: every group runs
    # its cleanup, which keeps the row.
    owner.execute(
        "INSERT INTO ledger_pending (login, pid, heads, mids, queued_at, expires_at, refusal, "
        "refusal_code, done_at) VALUES (session_user, pg_backend_pid(), '{}', '{}', "
        "now() - interval '2 minutes', now() - interval '2 minutes', 'late', '55P03', "
        "now() - interval '2 minutes')"
    )
    watcher = raw_connection(site_env, login="postgres")  # auto_explain is a superuser's
    plans: list[str] = []
    watcher.add_notice_handler(lambda notice: plans.append(str(notice.message_primary)))
    for setting in [
        "LOAD 'auto_explain'",
        "SET auto_explain.log_min_duration = 0",
        "SET auto_explain.log_nested_statements = on",
        "SET auto_explain.log_level = notice",
        "SET jit = on",  # the default (whether or not LLVM is installed: the plan says)
        "SET jit_above_cost = 100000",
    ]:
        watcher.execute(setting)
    before = site_env.site.ledger.size()
    # Not designated: its own refusal is all it may record (and it is looked up first).
    head, mid = pieces("postgres", Record("access.refused", {"agent": "postgres"}, "refused"))
    for _ in range(2):
        row = watcher.execute(
            "SELECT seq, refusal FROM scelle_submit(%b, %b)", [[head], [mid]]
        ).fetchone()
        assert row[1] is None, row
    watcher.close()
    # Both statements ran (and were seen), each with a seq scan nothing else could do.
    assert any("Seq Scan on ledger_pending q" in p for p in plans), plans
    assert any("Seq Scan on agent g" in p and 'COLLATE "C"' in p for p in plans), plans
    assert [p for p in plans if "JIT:" in p] == []
    assert owner.execute("DELETE FROM ledger_pending RETURNING refusal").fetchall() == [("late",)]
    owner.close()
    assert site_env.site.ledger.size() == before + 2
    verify_ledger(site_env.site.db, site_env.settings)
