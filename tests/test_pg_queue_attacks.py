"""Attacks on PostgreSQL's grouped appends (custody/pg_queue.py), as an agent that runs
any SQL it likes: odd session settings, transactions held open, functions called in odd
orders. Each test asserts the safe behaviour; a hole found is marked xfail(strict).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from custody.entry import Record, decode_entry
from custody.ledger import Ledger, pieces
from custody.verify import verify_ledger
from tests.conftest import OPERATOR, SUPERVISOR, SiteEnv, raw_connection
from tests.test_pg_queue import ROOT, _await, lock_held, pending_rows, url_as, wait_until_queued
from tests.test_pg_queue import _submit_binary as _submit

pytestmark = pytest.mark.backends("postgresql")

# The real client appending one note, with the site's lock wait cut to 5 s so that a
# refusal at lock_timeout comes quickly; prints the seq or the refusal.
QUICK_APPENDER = textwrap.dedent(
    """
    import sys
    import custody.db, custody.ledger
    custody.db.LOCK_WAIT_SECONDS = custody.ledger.LOCK_WAIT_SECONDS = 5
    from custody.db import Database
    from custody.entry import Record
    from custody.errors import ScelleError
    from custody.ledger import Ledger

    url, actor, subject = sys.argv[1:4]
    try:
        print(Ledger(Database(url)).append(actor, Record("ledger.note", subject, "r")).seq)
    except ScelleError as exc:
        print(exc.message)
        sys.exit(int(exc.exit_code))
    """
)


def _subjects_from(env: SiteEnv, start: int) -> list[str]:
    return [decode_entry(body)["subject"] for _seq, body in Ledger(env.site.db).entries(start)]


def test_a_withdrawal_left_open_does_not_hang_the_next_appender(site_env: SiteEnv) -> None:
    """The operator queues a row, then takes it back in a transaction it never ends (or
    scelle_await's lock_timeout path, the same DELETE). The next appender finds the
    ledger's lock free and drains: it must not wait for that transaction without end."""
    before = site_env.site.ledger.size()
    attacker = raw_connection(site_env, OPERATOR)
    with lock_held(site_env):
        queued_id = _submit(attacker, OPERATOR, "taken back")
    attacker.autocommit = False
    assert attacker.execute("SELECT scelle_withdraw(%s)", [queued_id]).fetchone()[0] is True
    victim = subprocess.Popen(
        [sys.executable, "-c", QUICK_APPENDER, url_as(site_env, SUPERVISOR), SUPERVISOR, "v"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = victim.communicate(timeout=20)  # 4 times the lock wait
        hung = False
    except subprocess.TimeoutExpired:
        victim.kill()
        out, err = victim.communicate()
        hung = True
    finally:
        attacker.rollback()
        attacker.close()
    assert not hung, "the appender was still waiting after 20 s (lock wait: 5 s)"
    assert victim.returncode == 0, (out, err)
    assert int(out) == before
    assert _subjects_from(site_env, before) == ["v"]


# Settings any login may make in its own session; the session that drains a group
# appends everybody's rows with them (standard_conforming_strings=off was the v15 case).
SETTINGS = [
    "plpgsql.extra_errors = 'all'",
    "plpgsql.extra_warnings = 'all'",
    "transform_null_equals = on",
    "quote_all_identifiers = on",
    "TimeZone = 'Pacific/Chatham'",
    "DateStyle = 'SQL, DMY'",
    "IntervalStyle = 'iso_8601'",
    "array_nulls = off",
    "bytea_output = 'escape'",
    "extra_float_digits = -15",
    "lock_timeout = '1ms'",
    "row_security = off",
    "plan_cache_mode = force_generic_plan",
    "enable_indexscan = off",
    "enable_seqscan = off",
    "enable_bitmapscan = off",
    "search_path = pg_temp, public",
    "backslash_quote = on",
    "synchronize_seqscans = off",
    "jit = off",
    "default_transaction_isolation = 'read committed'",
    "work_mem = '64kB'",
    "xmloption = document",
]


@pytest.mark.parametrize("setting", SETTINGS)
def test_a_drainers_session_settings_refuse_nobody_elses_entry(
    site_env: SiteEnv, setting: str
) -> None:
    """The operator, in a session with `setting`, drains a group holding the
    supervisor's note: the note is appended as it would be by anyone else."""
    before = site_env.site.ledger.size()
    attacker = raw_connection(site_env, OPERATOR)
    victim = raw_connection(site_env, SUPERVISOR)
    with lock_held(site_env):
        theirs = _submit(victim, SUPERVISOR, "victim's note")
        wait_until_queued(site_env, 1)
        mine = _submit(attacker, OPERATOR, "drainer's note")
    attacker.execute(f"SET {setting}")
    _await(attacker, mine)
    attacker.close()
    seq, _at, refusal, code = _await(victim, theirs)
    victim.close()
    assert (seq, refusal, code) == (before, None, None)
    assert _subjects_from(site_env, before)[:1] == ["victim's note"]
    verify_ledger(site_env.site.db, site_env.settings)
    assert pending_rows(site_env) == []


def test_a_drainer_that_rolls_back_to_a_savepoint_leaves_the_rows_queued(
    site_env: SiteEnv,
) -> None:
    """BEGIN; SAVEPOINT; drain; ROLLBACK TO SAVEPOINT; COMMIT: the others' rows are
    neither lost nor reported appended; their callers append them."""
    before = site_env.site.ledger.size()
    attacker = raw_connection(site_env, OPERATOR)
    victim = raw_connection(site_env, SUPERVISOR)
    with lock_held(site_env):
        theirs = _submit(victim, SUPERVISOR, "victim's note")
        wait_until_queued(site_env, 1)
        mine = _submit(attacker, OPERATOR, "drainer's note")
    attacker.autocommit = False
    attacker.execute("SAVEPOINT s")
    _await(attacker, mine)
    attacker.execute("ROLLBACK TO SAVEPOINT s")
    attacker.commit()
    seq, _at, refusal, _code = _await(victim, theirs)
    assert (seq, refusal) == (before + 1, None) or (seq, refusal) == (before, None)
    attacker.close()
    victim.close()
    assert "victim's note" in _subjects_from(site_env, before)
    verify_ledger(site_env.site.db, site_env.settings)


def test_an_asynchronous_drain_is_acknowledged_only_by_a_durable_commit(
    site_env: SiteEnv,
) -> None:
    """The drainer makes its commit asynchronous; the victim's acknowledging
    transaction writes WAL (its DELETE) after the drain's commit record, and commits
    with synchronous_commit on."""
    attacker = raw_connection(site_env, OPERATOR)
    victim = raw_connection(site_env, SUPERVISOR)
    with lock_held(site_env):
        theirs = _submit(victim, SUPERVISOR, "victim's note")
        wait_until_queued(site_env, 1)
        mine = _submit(attacker, OPERATOR, "drainer's note")
    attacker.autocommit = False
    _await(attacker, mine)
    attacker.execute("SET LOCAL synchronous_commit = off")
    (drain_lsn,) = attacker.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
    attacker.commit()
    victim.autocommit = False
    seq, _at, refusal, _code = _await(victim, theirs)
    assert seq is not None and refusal is None
    (sync,) = victim.execute("SELECT current_setting('synchronous_commit')").fetchone()
    (xid,) = victim.execute("SELECT pg_current_xact_id_if_assigned()").fetchone()
    (ack_lsn,) = victim.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
    victim.commit()
    assert sync == "on" and xid is not None  # a commit record, flushed
    owner = raw_connection(site_env)
    (after,) = owner.execute("SELECT %s::pg_lsn > %s::pg_lsn", [ack_lsn, drain_lsn]).fetchone()
    owner.close()
    assert after
    attacker.close()
    victim.close()


def test_a_refused_group_holder_cannot_turn_a_wait_into_nothing_written(
    site_env: SiteEnv,
) -> None:
    """A drainer holds the group open past the victim's lock_timeout: the victim is
    told the outcome is unknown (SC002), never 'nothing was written' (55P03); and the
    entry is appended when the drainer commits."""
    before = site_env.site.ledger.size()
    attacker = raw_connection(site_env, OPERATOR)
    victim = raw_connection(site_env, SUPERVISOR)
    with lock_held(site_env):
        theirs = _submit(victim, SUPERVISOR, "victim's note")
        wait_until_queued(site_env, 1)
        mine = _submit(attacker, OPERATOR, "drainer's note")
    attacker.autocommit = False
    _await(attacker, mine)
    victim.execute("SET lock_timeout = '300ms'")
    t = time.monotonic()
    seq, _at, _refusal, code = _await(victim, theirs)
    assert time.monotonic() - t < 10
    assert (seq, code) == (None, "SC002")
    assert victim.execute("SELECT scelle_withdraw(%s)", [theirs]).fetchone()[0] is False
    attacker.commit()
    victim.execute("RESET lock_timeout")
    seq, _at, refusal, _code = _await(victim, theirs)
    assert (seq, refusal) == (before, None)
    attacker.close()
    victim.close()


def test_another_agents_queue_id_is_neither_read_nor_taken(site_env: SiteEnv) -> None:
    """Ids are guessable (a sequence): the operator tries its neighbours'."""
    attacker = raw_connection(site_env, OPERATOR)
    victim = raw_connection(site_env, SUPERVISOR)
    with lock_held(site_env):
        theirs = _submit(victim, SUPERVISOR, "victim's note")
        for guess in (theirs, theirs + 1, theirs - 1):
            with pytest.raises(psycopg.errors.RaiseException, match="no entries queued"):
                attacker.execute("SELECT * FROM scelle_await(%s, '1s')", [guess])
            assert attacker.execute("SELECT scelle_withdraw(%s)", [guess]).fetchone()[0] is False
    seq, _at, refusal, _code = _await(victim, theirs)
    assert seq is not None and refusal is None
    attacker.close()
    victim.close()


def test_an_undesignated_login_cannot_fill_the_queue(site_env: SiteEnv) -> None:
    """'intruder' is a member of the application role but no designated agent: what it
    may append at all is its own access.refused entry. A note of its own is refused
    when submitted, not queued for the next group to refuse."""
    intruder = raw_connection(site_env, "intruder")
    head, mid = pieces("intruder", Record("ledger.note", "flood", "queued"))
    try:
        with lock_held(site_env):
            with contextlib.suppress(psycopg.errors.RaiseException):
                intruder.execute("SELECT id FROM scelle_submit(%b, %b)", [[head] * 50, [mid] * 50])
            assert pending_rows(site_env) == []
    finally:
        intruder.close()


def test_an_entry_given_up_as_unknown_is_not_appended_whenever_the_holder_likes(
    site_env: SiteEnv,
) -> None:
    """The operator drains a group and holds it past the supervisor's wait (SC002:
    outcome unknown), then rolls back; the supervisor's CLI has exited. Its entry must
    not turn up at a later time the operator picks (the next append, here)."""
    before = site_env.site.ledger.size()
    attacker = raw_connection(site_env, OPERATOR)
    victim = raw_connection(site_env, SUPERVISOR)
    victim.execute("SET lock_timeout = '300ms'")  # its wait, from its queuing on
    with lock_held(site_env):
        theirs = _submit(victim, SUPERVISOR, "given up")
        wait_until_queued(site_env, 1)
        mine = _submit(attacker, OPERATOR, "drainer's note")
    attacker.autocommit = False
    _await(attacker, mine)
    assert _await(victim, theirs)[3] == "SC002"
    victim.close()  # the caller exits: 'the ledger will say whether they were'
    attacker.rollback()
    assert "given up" not in _subjects_from(site_env, before)  # the ledger says: no
    site_env.site.ledger.append(OPERATOR, Record("ledger.note", "later", "any time"))
    attacker.close()
    assert "given up" not in _subjects_from(site_env, before)


def test_a_slow_group_cannot_time_an_entry_after_its_callers_wait(site_env: SiteEnv) -> None:
    """The operator (as any member may) holds the ledger's lock while it queues a long
    row that the drain refuses at its last entry and the supervisor queues a note with
    a 1 s wait; then it drains. The group outlasts that wait (the supervisor is told the
    outcome is unknown and leaves). Its entry must not turn up timed after its wait
    ended, at a time the group's length picks: a row past its caller's wait when its
    turn comes is refused, whether or not the group went in under one savepoint."""
    before = site_env.site.ledger.size()
    attacker = raw_connection(site_env, OPERATOR)
    holder = raw_connection(site_env, OPERATOR)
    victim = raw_connection(site_env, SUPERVISOR)
    owner = raw_connection(site_env)
    holder.autocommit = False
    assert holder.execute("SELECT scelle_lock('ledger', true)").fetchone()[0] is True
    cut = [pieces(OPERATOR, Record("ledger.note", f"slow {i}", "r")) for i in range(20000)]
    cut.append(pieces(OPERATOR, Record("requisition.approve", {"requisition": "none"}, "r")))
    heads, mids = [h for h, _m in cut], [m for _h, m in cut]
    (slow,) = attacker.execute("SELECT id FROM scelle_submit(%b, %b)", [heads, mids]).fetchone()
    victim.execute("SET lock_timeout = '1s'")  # its wait, from its queuing on
    theirs = _submit(victim, SUPERVISOR, "given up")
    query = "SELECT expires_at FROM ledger_pending WHERE id = %s"
    (expires,) = owner.execute(query, [theirs]).fetchone()
    holder.rollback()
    drained: dict[str, tuple[object, ...]] = {}
    drainer = threading.Thread(target=lambda: drained.update(out=_await(attacker, slow)))
    drainer.start()
    time.sleep(0.3)  # the group holds both rows
    told = _await(victim, theirs)
    drainer.join(timeout=120)
    assert drained["out"][3] == "P0001"  # the long row: refused, nothing of it appended
    found = {
        decode_entry(body)["subject"]: decode_entry(body)["time"]
        for _seq, body in Ledger(site_env.site.db).entries(before)
    }
    assert not any(subject.startswith("slow") for subject in found)
    if "given up" in found:
        at = datetime.fromisoformat(found["given up"].replace("Z", "+00:00"))
        assert at <= expires + timedelta(milliseconds=200), (told, found["given up"], expires)
    verify_ledger(site_env.site.db, site_env.settings)
    for conn in (attacker, holder, victim, owner):
        conn.close()


def _slow_group(
    env: SiteEnv, victim_first: bool, refused_last: bool
) -> tuple[tuple[Any, Any, Any, Any], datetime]:
    """A group of the supervisor's note and the operator's long row (40,000 notes, and
    an approval it may not record last if `refused_last`), the note first or last. The
    note's caller's wait is made to end 0.5 s after the group starts (the site's owner
    sets its expires_at: the time the operator's long submit takes does not count). The
    operator drains; returns the note's outcome (seq, at, refusal, code) and its wait's
    end."""
    attacker = raw_connection(env, OPERATOR)
    victim = raw_connection(env, SUPERVISOR)
    owner = raw_connection(env)
    cut = [pieces(OPERATOR, Record("ledger.note", f"slow {i}", "r")) for i in range(40000)]
    if refused_last:
        cut.append(pieces(OPERATOR, Record("requisition.approve", {"requisition": "none"}, "r")))
    heads, mids = [h for h, _m in cut], [m for _h, m in cut]
    holder = raw_connection(env, OPERATOR)
    holder.autocommit = False
    assert holder.execute("SELECT scelle_lock('ledger', true)").fetchone()[0] is True
    if victim_first:
        theirs = _submit(victim, SUPERVISOR, "in time")
    (slow,) = attacker.execute("SELECT id FROM scelle_submit(%b, %b)", [heads, mids]).fetchone()
    if not victim_first:
        theirs = _submit(victim, SUPERVISOR, "in time")
    (expires,) = owner.execute(
        "UPDATE ledger_pending SET expires_at = clock_timestamp() + interval '0.5 s' "
        "WHERE id = %s RETURNING expires_at",
        [theirs],
    ).fetchone()
    holder.rollback()
    drained = _await(attacker, slow)
    assert drained[3] == ("P0001" if refused_last else None)
    (outcome,) = owner.execute(
        "SELECT (seq, at, refusal, refusal_code) FROM ledger_pending WHERE id = %s", [theirs]
    ).fetchone()
    _await(victim, theirs)
    verify_ledger(env.site.db, env.settings)
    for conn in (attacker, victim, owner, holder):
        conn.close()
    seq, at, refusal, code = outcome
    return (seq, at, refusal, code), expires


@pytest.mark.parametrize("refused_last", [False, True])
def test_an_entry_after_a_slow_row_is_never_timed_after_its_callers_wait(
    site_env: SiteEnv, refused_last: bool
) -> None:
    """The note comes after the long row: when its turn comes its caller's wait is over,
    in the one-savepoint pass (nothing refused) as in the per-row one: refused (55P03),
    never appended timed after that wait."""
    (seq, at, refusal, code), expires = _slow_group(site_env, False, refused_last)
    assert seq is None and code == "55P03", (at, expires)
    assert refusal == "queued entries not appended within the wait allowed"


def test_an_entry_before_a_slow_refused_row_is_appended_at_its_turn(site_env: SiteEnv) -> None:
    """The note comes first, so its turn comes at once, within its caller's wait: v16
    appended it then, whatever the rows after it did. A refusal at the end of the long
    row after it must not make the group decide it again, once that wait is over."""
    (seq, at, refusal, code), expires = _slow_group(site_env, True, True)
    assert refusal is None and seq is not None, (refusal, code)
    assert datetime.fromisoformat(at.replace("Z", "+00:00")) <= expires
