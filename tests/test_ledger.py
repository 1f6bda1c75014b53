"""The ledger on real SQLite files: appends, proofs, guard rails, racing writers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from custody import audit, merkle
from custody.db import Database
from custody.entry import Record, decode_entry
from custody.errors import InputError, IntegrityError
from custody.ledger import Ledger
from custody.verify import verify_ledger
from tests.conftest import OPERATOR, SUPERVISOR, SiteEnv, raw_connection

BLOB = {True: "x'00'", False: "'\\x00'::bytea"}


def test_entries_are_canonical_and_carry_who_what_why(site_env: SiteEnv) -> None:
    ledger = site_env.site.ledger
    before = ledger.size()
    appended = ledger.append(
        "alice", Record("footage.view", {"camera": "C-1"}, "checking a report", "PV 2026/1")
    )
    body = ledger.entry(appended.seq)
    assert body == appended.body
    entry = decode_entry(body)
    assert entry["seq"] == appended.seq == before
    assert entry["actor"] == "alice"
    assert entry["action"] == "footage.view"
    assert entry["subject"] == {"camera": "C-1"}
    assert entry["reason"] == "checking a report"
    assert entry["procedure"] == "PV 2026/1"
    assert entry["time"].endswith("Z") and len(entry["time"]) == 27


def test_proofs_from_the_database_verify_and_match_a_fresh_tree(site_env: SiteEnv) -> None:
    ledger = site_env.site.ledger
    while ledger.size() < 41:
        ledger.append("op", Record("ledger.note", "n", "r"))
    bodies = [body for _, body in ledger.entries()]
    levels = merkle.tree_levels([merkle.leaf_hash(b) for b in bodies])
    assert ledger.root() == (41, merkle.levels_root(levels, 41))
    for size in (1, 7, 16, 41):
        for index in range(0, size, 3):
            proof = ledger.inclusion(index, size)
            assert proof.root == merkle.levels_root(levels, size)
            proof.verify()
    for old in (1, 2, 5, 16, 40, 41):
        ledger.consistency(old).verify()


def test_a_batch_is_all_or_nothing(site_env: SiteEnv) -> None:
    ledger = site_env.site.ledger
    before = ledger.size()
    good = Record("ledger.note", "a", "r")
    with pytest.raises(InputError, match="floats are not allowed"):
        ledger.append_many("op", [good, Record("ledger.note", "b", "r", data={"x": 1.5})])
    assert ledger.size() == before


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (Record("Bad Action", "s", "r"), "invalid ledger action"),
        (Record("ledger.note", "s", "  "), "needs a reason"),
        (Record("ledger.note", "s", "r", procedure=""), "procedure number is empty"),
    ],
)
def test_bad_records_are_refused(site_env: SiteEnv, record: Record, message: str) -> None:
    before = site_env.site.ledger.size()
    with pytest.raises(InputError, match=message):
        site_env.site.ledger.append("op", record)
    assert site_env.site.ledger.size() == before


REWRITES = [
    "UPDATE ledger_entry SET body = {blob} WHERE seq = 0",
    "DELETE FROM ledger_entry WHERE seq = 0",
    "UPDATE ledger_node SET hash = {blob}",
    "DELETE FROM ledger_node",
    "DELETE FROM ledger_checkpoint",
    "UPDATE ledger_checkpoint SET note = ''",
    "INSERT INTO ledger_entry VALUES (9, {blob})",
    "UPDATE ledger_audit SET actor = 'nobody'",
    "DELETE FROM ledger_audit WHERE seq = 0",
]


@pytest.mark.parametrize("statement", REWRITES)
def test_the_database_itself_refuses_rewrites(site_env: SiteEnv, statement: str) -> None:
    """The table owner (or anyone with the SQLite file) meets the triggers."""
    conn = raw_connection(site_env)
    with pytest.raises(Exception, match=r"append-only|gapless") as refused:
        conn.execute(statement.format(blob=BLOB[site_env.site.db.is_sqlite]))
    assert type(refused.value).__name__ in ("IntegrityError", "RaiseException")
    conn.close()


@pytest.mark.backends("postgresql")
@pytest.mark.parametrize("statement", [s for s in REWRITES if not s.startswith("INSERT")])
def test_the_application_role_may_not_rewrite_the_ledger(site_env: SiteEnv, statement: str) -> None:
    """An agent's role (member of scelle_app) is refused by privileges, before any trigger."""
    conn = raw_connection(site_env, OPERATOR)
    with pytest.raises(Exception, match=r"permission denied for table") as refused:
        conn.execute(statement.format(blob=BLOB[False]))
    assert type(refused.value).__name__ == "InsufficientPrivilege"
    conn.execute("SELECT COUNT(*) FROM ledger_entry")  # reading is allowed
    conn.close()


WRITER = textwrap.dedent(
    """
    import sys
    from custody.config import load_settings
    from custody.entry import Record
    from requisition.site import open_site

    site = open_site(load_settings({"home": sys.argv[1]}))
    for i in range(int(sys.argv[3])):
        site.ledger.append(sys.argv[2], Record("ledger.note", f"{sys.argv[2]} {i}", "race"))
    site.close()
    """
)


def test_eight_processes_appending_at_once_keep_one_gapless_tree(site_env: SiteEnv) -> None:
    home = str(site_env.settings.home)
    before = site_env.site.ledger.size()
    root = Path(__file__).parent.parent
    writers = [f"writer-{i}" for i in range(8)]
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, home, who, "150"], cwd=root)
        for who in writers
    ]
    assert [p.wait(timeout=300) for p in procs] == [0] * 8
    ledger = Ledger(site_env.site.db)
    seqs = [seq for seq, _ in ledger.entries()]
    assert seqs == list(range(before + 1200))
    actors = [decode_entry(body)["actor"] for _, body in ledger.entries(before)]
    assert all(actors.count(who) == 150 for who in writers)
    report = verify_ledger(site_env.site.db, site_env.settings)
    assert report.entries == before + 1200
    audit.recompute(site_env.site.db)  # the index kept up, entry for entry


@pytest.mark.backends("postgresql")
def test_an_agent_appends_only_in_its_own_name_and_cannot_promote_itself(
    site_env: SiteEnv,
) -> None:
    """The server, not scelle, holds these lines: an agent's session with psql could not
    cross them either."""
    conn = raw_connection(site_env, OPERATOR)
    with pytest.raises(Exception, match="permission denied for table agent"):
        conn.execute("UPDATE agent SET role = 'admin' WHERE login = session_user")
    conn.close()
    url = make_url(site_env.settings.database_url).set(username=OPERATOR)
    as_operator = Database(url.render_as_string(hide_password=False))
    ledger = Ledger(as_operator)
    with pytest.raises(IntegrityError, match="must name the session's own role"):
        ledger.append(SUPERVISOR, Record("agent.add", {"agent": "x"}, "forged"))
    ledger.append(OPERATOR, Record("ledger.note", "s", "in my own name"))
    as_operator.dispose()
    verify_ledger(site_env.site.db, site_env.settings)


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO ledger_audit (seq, time, actor, action) VALUES (9999, 't', 'a', 'x')",
        "INSERT INTO ledger_audit_camera (camera, seq) VALUES ('C', 9999)",
        "INSERT INTO ledger_node (level, idx, hash) VALUES (0, 9999, {blob})",
    ],
)
def test_nothing_can_be_planted_ahead_of_the_log(site_env: SiteEnv, statement: str) -> None:
    """A row for an entry that does not exist yet would make the next append fail."""
    conn = raw_connection(site_env)
    with pytest.raises(Exception, match=r"FOREIGN KEY|foreign key|ahead of the log"):
        conn.execute(statement.format(blob=BLOB[site_env.site.db.is_sqlite]))
    conn.close()
    site_env.site.ledger.append(OPERATOR, Record("ledger.note", "s", "still appends"))
