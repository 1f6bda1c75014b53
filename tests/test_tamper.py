"""The tamper matrix: each defect an attacker with write access to the database file (or
the site directory) could make, on a real SQLite file, and the message verify gives.

The attacker drops the append-only triggers first, as anyone with the file can.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import make_url

from custody import audit, checkpoints, merkle, treecheck
from custody.canonical import canonical_bytes, parse_canonical
from custody.db import Cursor
from custody.entry import Record
from custody.keys import Signer, public_pem
from custody.note import Checkpoint, sign_checkpoint
from tests.conftest import PASSPHRASE, SiteEnv, make_site, raw_connection, run_cli

ENTRIES = 20  # checkpoints are signed at sizes 1 (init), 10 and 20


@pytest.fixture
def built(tmp_path: Path, database_url: str) -> Iterator[SiteEnv]:
    env = make_site(tmp_path, database_url=database_url)
    ledger, signer = env.site.ledger, env.site.signer(PASSPHRASE)
    for i in range(ledger.size(), ENTRIES):  # entry i says "reason i"
        ledger.append("op", Record("ledger.note", f"subject {i}", f"reason {i}"))
        if ledger.size() in (10, ENTRIES):
            checkpoints.sign(env.site.db, env.settings.checkpoint_file, signer)
    env.site.close()
    yield env


class Attacker:
    """Write access to the database with the guard rails off: anyone with the SQLite
    file drops the triggers; a PostgreSQL superuser switches them off for its session."""

    def __init__(self, env: SiteEnv) -> None:
        self.sqlite = env.site.db.is_sqlite
        if self.sqlite:
            self.conn = raw_connection(env)
            triggers = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            for (name,) in self.conn.execute(triggers).fetchall():
                self.conn.execute(f"DROP TRIGGER {name}")
            self.conn.execute("PRAGMA foreign_keys = OFF")
        else:
            self.conn = raw_connection(env, "postgres")
            self.conn.execute("SET session_replication_role = replica")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql if self.sqlite else sql.replace("?", "%s"), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        if self.sqlite:
            self.conn.executemany(sql, rows)
        else:
            self.conn.cursor().executemany(sql.replace("?", "%s"), list(rows))


def connect(env: SiteEnv) -> Attacker:
    return Attacker(env)


def bodies(conn: Attacker) -> list[bytes]:
    return [bytes(b) for (b,) in conn.execute("SELECT body FROM ledger_entry ORDER BY seq")]


def rewrite_log(conn: Attacker, new_bodies: list[bytes]) -> None:
    """Replace the whole log with `new_bodies`, renumbered, and recompute every node and
    the audit index (a thorough insider: only a checkpoint kept elsewhere can tell)."""
    conn.execute("DELETE FROM ledger_audit_camera")
    conn.execute("DELETE FROM ledger_audit")
    conn.execute("DELETE FROM ledger_entry")
    conn.execute("DELETE FROM ledger_node")
    tree = merkle.CompactRange()
    for seq, body in enumerate(new_bodies):
        entry = parse_canonical(body)
        entry["seq"] = seq
        body = canonical_bytes(entry)
        conn.execute("INSERT INTO ledger_entry VALUES (?, ?)", (seq, body))
        conn.executemany(
            "INSERT INTO ledger_node VALUES (?, ?, ?)", tree.push(merkle.leaf_hash(body))
        )
    raw = conn.conn.cursor()
    audit.backfill(Cursor(raw, conn.sqlite))
    raw.close()


def replaced(body: bytes, old: bytes, new: bytes) -> bytes:
    """The edit, which must change something (an edit that matches nothing tests nothing)."""
    assert old in body
    return body.replace(old, new)


def entry_edited(env: SiteEnv) -> None:
    conn = connect(env)
    body = replaced(bodies(conn)[7], b"reason 7", b"reason X")
    conn.execute("UPDATE ledger_entry SET body = ? WHERE seq = 7", (body,))


def audit_index_row_edited(env: SiteEnv) -> None:
    """An auditor asking what `op` did would no longer see entry 7."""
    connect(env).execute("UPDATE ledger_audit SET actor = 'nobody' WHERE seq = 7")


def audit_index_row_deleted(env: SiteEnv) -> None:
    connect(env).execute("DELETE FROM ledger_audit WHERE seq = 12")


def audit_index_camera_added(env: SiteEnv) -> None:
    """A query about CAM-X would show entry 9, which names no camera."""
    connect(env).execute("INSERT INTO ledger_audit_camera (camera, seq) VALUES ('CAM-X', 9)")


def entry_deleted_leaving_gap(env: SiteEnv) -> None:
    connect(env).execute("DELETE FROM ledger_entry WHERE seq = 5")


def entry_deleted_and_rehashed(env: SiteEnv) -> None:
    conn = connect(env)
    old = bodies(conn)
    rewrite_log(conn, old[:5] + old[6:])


def entry_inserted_in_middle(env: SiteEnv) -> None:
    conn = connect(env)
    old = bodies(conn)
    forged = replaced(old[7], b"reason 7", b"planted")
    rewrite_log(conn, [*old[:7], forged, *old[7:]])


def entries_swapped(env: SiteEnv) -> None:
    conn = connect(env)
    old = bodies(conn)
    conn.execute("UPDATE ledger_entry SET body = ? WHERE seq = 5", (old[6],))
    conn.execute("UPDATE ledger_entry SET body = ? WHERE seq = 6", (old[5],))


def rehash_all(conn: Attacker, new_bodies: list[bytes]) -> None:
    """`new_bodies` in place of the log's, byte for byte, every node recomputed."""
    conn.execute("DELETE FROM ledger_entry")
    conn.execute("DELETE FROM ledger_node")
    tree = merkle.CompactRange()
    for seq, body in enumerate(new_bodies):
        conn.execute("INSERT INTO ledger_entry VALUES (?, ?)", (seq, body))
        conn.executemany(
            "INSERT INTO ledger_node VALUES (?, ?, ?)", tree.push(merkle.leaf_hash(body))
        )


def entries_swapped_and_rehashed(env: SiteEnv) -> None:
    conn = connect(env)
    old = bodies(conn)
    rehash_all(conn, [*old[:5], old[6], old[5], *old[7:]])


def tail_truncated(env: SiteEnv) -> None:
    conn = connect(env)
    rewrite_log(conn, bodies(conn)[:15])
    conn.execute("DELETE FROM ledger_checkpoint WHERE tree_size > 15")


def tail_truncated_leaving_tree(env: SiteEnv) -> None:
    connect(env).execute("DELETE FROM ledger_entry WHERE seq >= 15")


def whole_log_rewritten_and_rehashed(env: SiteEnv) -> None:
    conn = connect(env)
    old = bodies(conn)
    rewrite_log(conn, [old[0]] + [b.replace(b'"actor":"op"', b'"actor":"xx"') for b in old[1:]])


def older_database_restored(env: SiteEnv) -> None:
    """An administrator's copy of the database, put back after the site went on."""
    from requisition.site import open_site

    url = make_url(env.settings.database_url)
    db = env.site.db.path
    if db is not None:
        assert not Path(f"{db}-wal").exists()  # closed: the file is whole
        shutil.copy(db, db.with_name("backup.db"))
    else:
        admin = raw_connection(env, "postgres", database="postgres")
        admin.execute(f"CREATE DATABASE {url.database}_backup TEMPLATE {url.database}")
    opened = open_site(env.settings)  # the site goes on: ten more entries, a checkpoint
    for i in range(10):
        opened.ledger.append("op", Record("ledger.note", "later", f"later {i}"))
    checkpoints.sign(opened.db, env.settings.checkpoint_file, opened.signer(PASSPHRASE))
    opened.close()
    if db is not None:
        shutil.copy(db.with_name("backup.db"), db)
    else:
        admin.execute(f"DROP DATABASE {url.database} WITH (FORCE)")
        admin.execute(f"ALTER DATABASE {url.database}_backup RENAME TO {url.database}")
        admin.close()


def forged_checkpoint_in_file(env: SiteEnv) -> None:
    """The key id is public: the forger copies it and makes up the signature."""
    real = env.settings.checkpoint_file.read_text().split("\n\n")[:2]
    sig_line = real[1].split(" ")
    blob = base64.b64decode(sig_line[2])[:4] + os.urandom(64)
    body = Checkpoint("csv.test/ledger", 20, bytes(32)).body()
    note = f"{body}\n{sig_line[0]} {sig_line[1]} {base64.b64encode(blob).decode()}\n"
    with env.settings.checkpoint_file.open("a") as handle:
        handle.write(note + "\n")


def forged_checkpoint_in_database(env: SiteEnv) -> None:
    forger = Signer(Ed25519PrivateKey.generate())
    note = sign_checkpoint(Checkpoint("csv.test/ledger", 20, bytes(32)), "csv.test", forger)
    connect(env).execute(
        "INSERT INTO ledger_checkpoint (tree_size, root, note, signed_at) VALUES (20, ?, ?, 'x')",
        (bytes(32), note),
    )


def checkpoint_of_another_log(env: SiteEnv) -> None:
    """A genuine signature by the site key, over another log's origin."""
    from custody.keys import load_signer

    real = load_signer(env.settings.key_file, PASSPHRASE)
    note = sign_checkpoint(Checkpoint("elsewhere/ledger", 3, bytes(32)), "csv.test", real)
    with env.settings.checkpoint_file.open("a") as handle:
        handle.write(note + "\n")


def public_key_replaced(env: SiteEnv) -> None:
    other = Ed25519PrivateKey.generate().public_key()
    env.settings.public_key_file.write_text(public_pem(other))


def checkpoint_file_corrupted(env: SiteEnv) -> None:
    with env.settings.checkpoint_file.open("a") as handle:
        handle.write("this is not a note\n")


def checkpoint_file_replaced(env: SiteEnv) -> None:
    env.settings.checkpoint_file.write_text("")


def checkpoint_file_truncated(env: SiteEnv) -> None:
    """Only the first checkpoint left: the later ones in the database are not in it."""
    notes = env.settings.checkpoint_file.read_text().split("\n\n")
    env.settings.checkpoint_file.write_text("\n\n".join(notes[:2]) + "\n\n")


def all_checkpoints_deleted(env: SiteEnv) -> None:
    """File deleted and database rows dropped: nothing signed would remain to compare."""
    env.settings.checkpoint_file.unlink()
    connect(env).execute("DELETE FROM ledger_checkpoint")


def tree_node_edited(env: SiteEnv) -> None:
    connect(env).execute("UPDATE ledger_node SET hash = ? WHERE level = 1 AND idx = 2", [bytes(32)])


def upper_tree_node_edited(env: SiteEnv) -> None:
    connect(env).execute("UPDATE ledger_node SET hash = ? WHERE level = 3 AND idx = 1", [bytes(32)])


def leaf_and_entry_edited(env: SiteEnv) -> None:
    """Entry 7 edited and its leaf hash updated, interior nodes left alone."""
    conn = connect(env)
    body = replaced(bodies(conn)[7], b"reason 7", b"reason X")
    conn.execute("UPDATE ledger_entry SET body = ? WHERE seq = 7", (body,))
    conn.execute(
        "UPDATE ledger_node SET hash = ? WHERE level = 0 AND idx = 7", (merkle.leaf_hash(body),)
    )


def entry_not_json_appended(env: SiteEnv) -> None:
    """Bytes that are no JSON at all appended after the last checkpoint, as entry 20,
    the tree extended over them (no checkpoint covers it yet)."""
    conn = connect(env)
    rehash_all(conn, [*bodies(conn), b"\xff not an entry {"])


def entry_other_json_appended(env: SiteEnv) -> None:
    """JSON that is not an entry (a list) appended as entry 20, the tree extended."""
    conn = connect(env)
    rehash_all(conn, [*bodies(conn), b"[1,2,3]"])


CASES: dict[str, tuple[Callable[[SiteEnv], None], str]] = {
    "entry_not_json_appended": (
        entry_not_json_appended,
        "ledger entry 20 is not a scelle ledger entry: bytes written around scelle",
    ),
    "entry_other_json_appended": (
        entry_other_json_appended,
        "ledger entry 20 is not a scelle ledger entry: bytes written around scelle",
    ),
    "entry_edited": (entry_edited, "ledger entry 7 was altered"),
    "entry_deleted_leaving_gap": (entry_deleted_leaving_gap, "ledger entry 5 is missing"),
    "entry_deleted_and_rehashed": (
        entry_deleted_and_rehashed,
        "root for 10 entries does not match the log: history before entry 10 rewritten",
    ),
    "entry_inserted_in_middle": (
        entry_inserted_in_middle,
        "root for 10 entries does not match the log: history before entry 10 rewritten",
    ),
    "entries_swapped": (entries_swapped, "ledger entry 5 holds the content of entry 6"),
    "entries_swapped_and_rehashed": (
        entries_swapped_and_rehashed,
        "root for 10 entries does not match the log",
    ),
    "tail_truncated": (
        tail_truncated,
        "signed for 20 entries but the log has 15: log truncated or an older database restored",
    ),
    "tail_truncated_leaving_tree": (tail_truncated_leaving_tree, "entries removed from the tail"),
    "whole_log_rewritten_and_rehashed": (
        whole_log_rewritten_and_rehashed,
        "root for 10 entries does not match the log",
    ),
    "older_database_restored": (
        older_database_restored,
        "signed for 30 entries but the log has 20: log truncated or an older database restored",
    ),
    "forged_checkpoint_in_file": (
        forged_checkpoint_in_file,
        "checkpoints.txt line 19: checkpoint signature does not verify",
    ),
    "audit_index_row_edited": (
        audit_index_row_edited,
        "the audit index disagrees with ledger entry 7: an auditor's query could miss it",
    ),
    "audit_index_row_deleted": (
        audit_index_row_deleted,
        "the audit index disagrees with ledger entry 12",
    ),
    "audit_index_camera_added": (
        audit_index_camera_added,
        "the audit index disagrees with ledger entry 9",
    ),
    "forged_checkpoint_in_database": (
        forged_checkpoint_in_database,
        "database checkpoint 4: checkpoint is not signed by key csv.test+",
    ),
    "checkpoint_of_another_log": (checkpoint_of_another_log, "checkpoint of another log"),
    "public_key_replaced": (public_key_replaced, "not the key recorded in ledger entry 0"),
    "checkpoint_file_corrupted": (checkpoint_file_corrupted, "checkpoints.txt is corrupt: line 19"),
    "checkpoint_file_replaced": (checkpoint_file_replaced, "holds no checkpoint: it was emptied"),
    "checkpoint_file_truncated": (
        checkpoint_file_truncated,
        "database checkpoint 2 is missing from",
    ),
    "all_checkpoints_deleted": (all_checkpoints_deleted, "checkpoints.txt is missing"),
    "tree_node_edited": (tree_node_edited, "tree node (level 1, index 2) is missing or does not"),
    "upper_tree_node_edited": (
        upper_tree_node_edited,
        "tree node (level 3, index 1) is missing or does not match",
    ),
    "leaf_and_entry_edited": (
        leaf_and_entry_edited,
        "tree node (level 1, index 3) is missing or does not match",
    ),
}


def test_untouched_site_verifies(built: SiteEnv, chunking: str) -> None:
    result = run_cli(["ledger", "verify"], env=built.env)
    assert result.exit_code == 0, result.stderr
    assert f"ledger OK: {ENTRIES} entries" in result.stdout
    assert "3 signed checkpoints" in result.stdout


@pytest.fixture(params=["one-chunk", "chunks-of-4-in-parallel"])
def chunking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Verify in one chunk in-process, and in 2-level chunks on worker processes."""
    if request.param != "one-chunk":
        monkeypatch.setattr(treecheck, "CHUNK_LEVEL", 2)
    return str(request.param)


@pytest.mark.parametrize("case", sorted(CASES))
def test_tamper_is_detected(built: SiteEnv, case: str, chunking: str) -> None:
    tamper, message = CASES[case]
    tamper(built)
    result = run_cli(["ledger", "verify"], env=built.env)
    assert result.exit_code == 4, (case, result.stdout, result.stderr)
    assert message in result.stderr, (case, result.stderr)
    first, *rest = result.stderr.strip().splitlines()
    assert first.startswith("scelle: error: ") and all(r.startswith("hint: ") for r in rest)
    assert len(rest) <= 1
    assert "Traceback" not in result.stderr


def test_rewrite_resigned_by_an_insider_is_caught_by_the_auditors_checkpoint(
    built: SiteEnv, tmp_path: Path
) -> None:
    """An insider with the passphrase rewrites the log, wipes every checkpoint and
    re-signs: only a checkpoint kept outside the site can tell, and it does."""
    kept = tmp_path / "auditor-checkpoint.txt"
    kept.write_text(run_cli(["ledger", "checkpoint"], env=built.env).stdout)
    whole_log_rewritten_and_rehashed(built)
    conn = connect(built)
    conn.execute("DELETE FROM ledger_checkpoint")
    built.settings.checkpoint_file.unlink()
    assert run_cli(["ledger", "checkpoint"], env=built.env).exit_code == 0
    assert run_cli(["ledger", "verify"], env=built.env).exit_code == 0  # fooled without it
    result = run_cli(["ledger", "verify", "--checkpoint", str(kept)], env=built.env)
    assert result.exit_code == 4
    assert f"{kept} line 1: its root for 20 entries does not match the log" in result.stderr


def test_signing_refuses_a_rolled_back_log(built: SiteEnv) -> None:
    tail_truncated(built)
    result = run_cli(["ledger", "checkpoint"], env=built.env)
    assert result.exit_code == 4
    assert "refusing to sign" in result.stderr
