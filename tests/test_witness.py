"""The witness another institution runs (`scelle witness`), as a real process on
127.0.0.1: the C2SP tlog-witness answers and status codes, cosignatures checked here by
code written from the C2SP tlog-cosignature text (not custody/cosignature.py), atomic
updates under concurrent requests, and `kill -9` at any instant losing nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custody import merkle
from custody.keys import Signer
from custody.note import Checkpoint, sign_checkpoint, verifier_key
from tests.conftest import AUDITOR, SUPERVISOR, SiteEnv, run_cli
from tests.test_requisitions import REGISTER, filmed

__all__ = ["filmed"]

NAME = "witness.prefecture.test/w1"
ORIGIN = "csv.test/ledger"
PASSPHRASE = "witness passphrase, long enough"


def cli(args: list[str], env: dict[str, str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], env=env, capture_output=True, text=True, **kw
    )  # type: ignore[call-overload]


@dataclass
class Log:
    """A log in memory: leaves, its checkpoint key, its signed checkpoints."""

    signer: Signer
    leaves: list[bytes]

    def nodes(self) -> merkle.GetNodes:
        levels = merkle.tree_levels([merkle.leaf_hash(leaf) for leaf in self.leaves])
        return lambda keys: {k: levels[k[0]][k[1]] for k in keys}

    def grow(self, count: int) -> None:
        self.leaves += [os.urandom(16) for _ in range(count)]

    def checkpoint(self, size: int | None = None, origin: str = ORIGIN) -> tuple[str, str]:
        size = len(self.leaves) if size is None else size
        root = merkle.root_at(size, self.nodes())
        note = sign_checkpoint(Checkpoint(origin, size, root), "csv.test", self.signer)
        return note, note.partition("\n\n")[0] + "\n"

    def request(self, old: int, size: int | None = None, proof: list[bytes] | None = None) -> bytes:
        size = len(self.leaves) if size is None else size
        if proof is None:
            proof = merkle.consistency_proof(old, size, self.nodes()) if 0 < old < size else []
        lines = "".join(base64.b64encode(h).decode() + "\n" for h in proof)
        return f"old {old}\n{lines}\n".encode() + self.checkpoint(size)[0].encode()


@dataclass
class Server:
    directory: Path
    env: dict[str, str]
    process: subprocess.Popen[str]
    url: str
    vkey: str

    def post(self, body: bytes) -> tuple[int, str, str]:
        request = urllib.request.Request(self.url, data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, answer.read().decode(), answer.headers["Content-Type"]
        except urllib.error.HTTPError as refused:
            return refused.code, refused.read().decode(), refused.headers["Content-Type"]


def one_witness_policy(server: Server, path: Path, label: str = "prefecture") -> Path:
    """A site's policy file naming `server` (with its URL) as its one witness and quorum."""
    base = server.url.removesuffix("/add-checkpoint")
    path.write_text(f"witness {label} {server.vkey} {base}\nquorum {label}\n")
    return path


def start(directory: Path, env: dict[str, str], vkey: str) -> Server:
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "witness", "serve", "--dir", str(directory),
         "--listen", "127.0.0.1:0"],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    line = process.stderr.readline()
    assert "listening on http://127.0.0.1:" in line, line
    url = line.split()[-1]
    return Server(directory, env, process, url, vkey)


@pytest.fixture
def log() -> Log:
    log = Log(Signer(Ed25519PrivateKey.generate()), [])
    log.grow(3)
    return log


def make_witness(root: Path, *vkeys: str) -> Server:
    """A witness created with the CLI, following the logs of `vkeys`, serving."""
    secret = root / "witness-passphrase"
    secret.write_text(PASSPHRASE)
    env = {
        **os.environ,
        "SCELLE_PASSPHRASE_FILE": str(secret),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    directory = root / "witness"
    made = cli(["witness", "init", "--dir", str(directory), "--name", NAME], env)
    assert made.returncode == 0, made.stderr
    vkey = (directory / "witness.vkey").read_text().strip()
    assert vkey in made.stdout
    for log_vkey in vkeys:
        followed = cli(["witness", "follow", "--dir", str(directory), log_vkey], env)
        assert followed.returncode == 0, followed.stderr
        assert "following " in followed.stdout
    return start(directory, env, vkey)


@pytest.fixture
def witness(tmp_path: Path, log: Log) -> Iterator[Server]:
    server = make_witness(tmp_path, verifier_key("csv.test", log.signer.public_key))
    yield server
    server.process.kill()
    server.process.wait()


# --- cosignature/v1 checked from the C2SP text, independently of custody/cosignature.py ---


def spec_verify(vkey: str, body: str, answer: str) -> int:
    """The timestamp of the one valid cosignature by `vkey` among `answer`'s lines."""
    name, hex_id, b64 = vkey.split("+", 2)
    raw = base64.b64decode(b64)
    assert raw[0] == 0x04  # cosignature/v1 Ed25519
    expected_id = hashlib.sha256(name.encode() + b"\n" + b"\x04" + raw[1:]).digest()[:4]
    assert expected_id.hex() == hex_id
    key = Ed25519PublicKey.from_public_bytes(raw[1:])
    found = []
    for line in answer.splitlines():
        assert line.startswith("\u2014 "), line
        signer, blob64 = line[2:].split(" ")
        blob = base64.b64decode(blob64)
        if signer != name or blob[:4] != expected_id:
            continue
        (timestamp,) = struct.unpack(">Q", blob[4:12])
        message = b"cosignature/v1\n" + f"time {timestamp}\n".encode() + body.encode()
        key.verify(blob[12:], message)  # raises if it does not verify
        found.append(timestamp)
    assert len(found) == 1, answer
    return found[0]


def test_checkpoints_are_cosigned_as_the_log_grows(witness: Server, log: Log) -> None:
    status, answer, _type = witness.post(log.request(0))
    assert status == 200, answer
    spec_verify(witness.vkey, log.checkpoint()[1], answer)
    for _ in range(3):
        old = len(log.leaves)
        log.grow(random.randint(1, 20))
        status, answer, _type = witness.post(log.request(old))
        assert status == 200, answer
        spec_verify(witness.vkey, log.checkpoint()[1], answer)
    status, answer, _type = witness.post(log.request(len(log.leaves)))  # same size, same root
    assert status == 200


def test_each_refusal_has_its_status_code(witness: Server, log: Log) -> None:
    assert witness.post(log.request(0))[0] == 200  # the witness now holds size 3
    log.grow(5)
    other = Log(Signer(Ed25519PrivateKey.generate()), list(log.leaves))
    note, _body = log.checkpoint(origin="unknown.test/ledger")
    assert witness.post(b"old 3\n\n" + note.encode())[0] == 404  # unknown log
    assert witness.post(other.request(3))[0] == 403  # signed by a key it does not trust
    status, body, content_type = witness.post(log.request(1, proof=[]))  # not its size
    assert (status, body, content_type) == (409, "3\n", "text/x.tlog.size")
    bad = merkle.consistency_proof(3, 8, log.nodes())
    bad[0] = bytes(32)
    assert witness.post(log.request(3, proof=bad))[0] == 422  # a proof that does not verify
    assert witness.post(log.request(9, size=8, proof=[]))[0] == 400  # old larger than size
    assert witness.post(b"not a request")[0] == 400
    forked = Log(log.signer, [*log.leaves[:2], b"rewritten"])  # same size 3, another root
    assert witness.post(forked.request(3, size=3, proof=[]))[0] == 409
    assert witness.post(forked.request(0))[0] == 409  # a rolled-back log starting over
    status, answer, _type = witness.post(log.request(3))  # the true log goes on
    assert status == 200, answer


def test_concurrent_requests_from_one_size_get_one_cosignature(witness: Server, log: Log) -> None:
    """Check and update are atomic: of two requests both from size 3, one is cosigned,
    the other told the size the witness moved to (no roll-back of leaves)."""
    assert witness.post(log.request(0))[0] == 200
    log.grow(4)
    first = log.request(3)
    log.grow(4)
    second = log.request(3)
    results: list[tuple[int, str, str]] = []
    threads = [
        threading.Thread(target=lambda b=b: results.append(witness.post(b)))
        for b in (first, second)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r[0] for r in results) == [200, 409]
    (refused,) = [r for r in results if r[0] == 409]
    assert refused[1] in ("7\n", "11\n")


def test_kill_9_during_updates_loses_nothing(witness: Server, log: Log) -> None:
    """The witness is killed at random instants while the log submits; after each restart
    it holds at least the last size it answered 200 for, never less."""
    acknowledged = 0
    server = witness
    for _round in range(4):
        stop = threading.Event()

        def submit(server: Server = server, stop: threading.Event = stop) -> None:
            nonlocal acknowledged
            while not stop.is_set():
                old = acknowledged
                log.grow(1)
                try:
                    status, body, _type = server.post(log.request(old))
                except OSError:
                    return
                if status == 200:
                    acknowledged = len(log.leaves)
                elif status == 409:  # the answer to a committed update was lost
                    acknowledged = int(body)

        thread = threading.Thread(target=submit)
        thread.start()
        threading.Event().wait(random.uniform(0.2, 0.6))
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait()
        stop.set()
        thread.join()
        server = start(server.directory, server.env, server.vkey)
        status, body, content_type = server.post(log.request(0, size=len(log.leaves), proof=[]))
        assert (status, content_type) == (409, "text/x.tlog.size")
        held = int(body)
        assert acknowledged <= held <= len(log.leaves)
        acknowledged = held
    server.process.kill()
    server.process.wait()


# --- a scelle site and its witness ---------------------------------------------------


def snapshot(database: Path, to: Path) -> None:
    """The database file copied as an insider would (consistently, with SQLite's backup)."""
    source, target = sqlite3.connect(database), sqlite3.connect(to)
    source.backup(target)
    source.close()
    target.close()


@pytest.mark.backends("sqlite")
def test_a_site_is_cosigned_and_a_restored_older_database_is_refused(
    site_env: SiteEnv, tmp_path: Path
) -> None:
    """The insider of issue 18: copy scelle.db and checkpoints.txt, append, restore both,
    append again. Without a witness `ledger verify` cannot tell; with one, the next
    checkpoint is refused and `ledger verify` fails, naming the witness."""
    vkey = run_cli(["keys", "show", "--vkey"], env=site_env.env).stdout.strip()
    server = make_witness(tmp_path, vkey)
    try:
        policy = tmp_path / "witnesses.txt"
        base = server.url.removesuffix("/add-checkpoint")
        policy.write_text(
            f"# the prefecture\nwitness prefecture {server.vkey} {base}\nquorum prefecture\n"
        )
        env = {**site_env.env, "SCELLE_WITNESS_POLICY": str(policy)}
        auditor = {**site_env.env_as(AUDITOR), "SCELLE_WITNESS_POLICY": str(policy)}

        for round_ in range(2):
            for i in range(3):
                assert (
                    run_cli(["ledger", "note", f"n{round_}{i}", "--reason", "r"], env=env).exit_code
                    == 0
                )
            signed = run_cli(["ledger", "checkpoint"], env=env)
            assert signed.exit_code == 0, signed.stderr
            assert "the policy's quorum is met" in signed.stderr
            body, _sep, lines = signed.stdout.partition("\n\n")
            cosignature = [x for x in lines.splitlines() if x.startswith(f"\u2014 {NAME} ")]
            spec_verify(server.vkey, body + "\n", "\n".join(cosignature))
        verified = run_cli(["ledger", "verify"], env=auditor)
        assert verified.exit_code == 0, verified.stderr
        assert "the policy's quorum is met" in verified.stdout

        # The insider: both files copied, an entry appended and checkpointed, both restored.
        home = site_env.settings.home
        site_env.site.close()
        snapshot(home / "scelle.db", tmp_path / "db.copy")
        shutil.copy(home / "checkpoints.txt", tmp_path / "checkpoints.copy")
        assert (
            run_cli(["ledger", "note", "real", "--reason", "the true entry"], env=env).exit_code
            == 0
        )
        assert run_cli(["ledger", "checkpoint"], env=env).exit_code == 0
        snapshot(tmp_path / "db.copy", home / "scelle.db")
        shutil.copy(tmp_path / "checkpoints.copy", home / "checkpoints.txt")
        plain = run_cli(["ledger", "verify"], env=site_env.env_as(AUDITOR))
        assert plain.exit_code == 0  # what one key alone cannot see
        assert (
            run_cli(["ledger", "note", "fake", "--reason", "a rewritten entry"], env=env).exit_code
            == 0
        )
        resigned = run_cli(["ledger", "checkpoint"], env=env)
        assert resigned.exit_code == 4, resigned.stderr
        assert "WITNESS prefecture REFUSES" in resigned.stderr
        assert NAME not in resigned.stdout  # printed, but with no cosignature
        refused = run_cli(["ledger", "verify"], env=auditor)
        assert refused.exit_code == 4
        assert "witness prefecture refuses this ledger's checkpoint" in refused.stderr
    finally:
        server.process.kill()
        server.process.wait()


@pytest.mark.backends("sqlite")
def test_an_unreachable_witness_does_not_stop_the_work(site_env: SiteEnv, tmp_path: Path) -> None:
    policy = tmp_path / "witnesses.txt"
    key = Signer(Ed25519PrivateKey.generate()).public_key
    from custody.cosignature import cosigner_vkey

    policy.write_text(f"witness w {cosigner_vkey(NAME, key)} http://127.0.0.1:9\nquorum w\n")
    env = {**site_env.env, "SCELLE_WITNESS_POLICY": str(policy)}
    signed = run_cli(["ledger", "checkpoint"], env=env)
    assert signed.exit_code == 0, signed.stderr
    assert "cosigned by no witness: the policy's quorum is NOT met" in signed.stderr
    assert "witness w not reached" in signed.stderr
    assert "asked again at the next checkpoint" in signed.stderr


@pytest.mark.backends("sqlite")
def test_an_export_carries_the_cosigned_checkpoint(filmed: SiteEnv, tmp_path: Path) -> None:
    """The export's checkpoint holds the witness's cosignature; `scelle verify --policy`
    checks it and names the witness; a policy whose quorum it does not meet fails."""
    vkey = run_cli(["keys", "show", "--vkey"], env=filmed.env).stdout.strip()
    server = make_witness(tmp_path, vkey)
    try:
        policy = one_witness_policy(server, tmp_path / "witnesses.txt")
        env = {**filmed.env, "SCELLE_WITNESS_POLICY": str(policy)}
        registered = run_cli(REGISTER, env=env)
        assert registered.exit_code == 0, registered.stderr
        rid = registered.stdout.split()[1]
        assert (
            run_cli(["requisition", "approve", rid], env=filmed.env_as(SUPERVISOR)).exit_code == 0
        )
        done = run_cli(["requisition", "extract", rid, "--out", str(tmp_path / "out")], env=env)
        assert done.exit_code == 0, done.stderr
    finally:
        server.process.kill()
        server.process.wait()
    export = tmp_path / "out" / rid
    body, _sep, lines = (export / "ledger" / "checkpoint.txt").read_text().partition("\n\n")
    spec_verify(server.vkey, body + "\n", "\n".join(x for x in lines.splitlines() if NAME in x))
    # The same proof in C2SP tlog-proof form, read and folded as that spec and RFC 9162 say
    proof_text = (export / "ledger" / "entry.tlog-proof").read_text()
    head, _sep, checkpoint = proof_text.partition("\n\n")
    assert checkpoint == (export / "ledger" / "checkpoint.txt").read_text()  # verbatim
    first, index_line, *hashes = head.split("\n")
    assert first == "c2sp.org/tlog-proof@v1" and index_line.startswith("index ")
    index, size = int(index_line.removeprefix("index ")), int(body.split("\n")[1])
    root = spec_fold(index, size, (export / "ledger" / "entry.json").read_bytes(), hashes)
    assert base64.b64encode(root).decode() == body.split("\n")[2]
    broken = proof_text.replace(f"index {index}", f"index {index - 1}")
    (export / "ledger" / "entry.tlog-proof").write_text(broken)
    mismatch = run_cli(["verify", str(export), "--json"], env=filmed.env)
    assert mismatch.exit_code == 4 and json.loads(mismatch.stdout)["first_failure"] == "checkpoint"
    (export / "ledger" / "entry.tlog-proof").unlink()  # as exports made before it existed
    assert run_cli(["verify", str(export)], env=filmed.env).exit_code == 0
    (export / "ledger" / "entry.tlog-proof").write_text(proof_text)

    checked = run_cli(["verify", str(export), "--policy", str(policy)], env=filmed.env)
    assert checked.exit_code == 0, checked.stdout
    assert f"witnesses that vouch for its checkpoint: {NAME}" in checked.stdout
    said = " ".join((export / "VERIFY.txt").read_text().split())  # the signed statement
    assert f"carries the cosignatures of: {NAME}." in said
    unchecked = run_cli(["verify", str(export)], env=filmed.env)
    assert unchecked.exit_code == 0
    assert f"carries cosignatures by {NAME}: not checked" in unchecked.stdout

    from custody.cosignature import cosigner_vkey

    other = cosigner_vkey("witness.other.test/w", Signer(Ed25519PrivateKey.generate()).public_key)
    strict = tmp_path / "strict.txt"
    strict.write_text(
        f"witness prefecture {server.vkey}\nwitness other {other}\n"
        "group both all prefecture other\nquorum both\n"
    )
    refused = run_cli(["verify", str(export), "--policy", str(strict), "--json"], env=filmed.env)
    assert refused.exit_code == 4
    shown = json.loads(refused.stdout)
    assert shown["first_failure"] == "witnesses"
    assert [w["name"] for w in shown["witnesses"]] == [NAME]

    # A policy that names its logs vouches for those only (not another site's export).
    stranger = verifier_key("csv.test", Signer(Ed25519PrivateKey.generate()).public_key)
    for log_key, code in ((vkey, 0), (stranger, 4)):
        named = tmp_path / f"logs-{code}.txt"
        named.write_text(f"log {log_key}\nwitness prefecture {server.vkey}\nquorum prefecture\n")
        result = run_cli(["verify", str(export), "--policy", str(named)], env=filmed.env)
        assert result.exit_code == code, result.stdout


def spec_fold(index: int, size: int, entry: bytes, proof: list[str]) -> bytes:
    """RFC 9162 2.1.3.2: the root an inclusion proof leads to, written from the RFC."""
    fn, sn = index, size - 1
    r = hashlib.sha256(b"\x00" + entry).digest()
    for line in proof:
        p = base64.b64decode(line, validate=True)
        assert sn != 0
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn, sn = fn >> 1, sn >> 1
    assert sn == 0
    return r


def test_malformed_sizes_and_proofs_are_refused_not_crashed_on(witness: Server, log: Log) -> None:
    assert witness.post(log.request(0))[0] == 200
    for old in ("\u0663", "\u00b2", "9" * 5000, "01"):  # Arabic-Indic 3, superscript 2, huge
        body = f"old {old}\n\n".encode() + log.checkpoint()[0].encode()
        assert witness.post(body)[0] == 400, old
    same = log.request(3, proof=[bytes(32)])  # to the same size: the proof must be empty
    assert witness.post(same)[0] == 400
    assert witness.post(log.request(3))[0] == 200  # and the witness still answers


@pytest.mark.backends("sqlite")
def test_a_checkpoint_overtaken_by_a_newer_one_is_not_taken_for_a_rollback(
    site_env: SiteEnv, tmp_path: Path
) -> None:
    """Two checkpoints signed close together (two exports at once): the newer reaches the
    witness first; the older is then told a larger size, which this site recorded itself:
    no evidence of anything, and nothing refused."""
    from custody import checkpoints
    from custody.cosigning import cosign, evidence
    from custody.policy import parse_policy
    from tests.conftest import PASSPHRASE as SITE_PASSPHRASE

    site = site_env.site
    server = make_witness(
        tmp_path, verifier_key(site.identity().key_name, site.identity().public_key)
    )
    try:
        base = server.url.removesuffix("/add-checkpoint")
        policy = parse_policy(f"witness p {server.vkey} {base}\nquorum p\n")
        signer = site.signer(SITE_PASSPHRASE)
        _older, older = checkpoints.sign(site.db, site.settings.checkpoint_file, signer)
        site.ledger.note("op", "n", "r")
        _newer, newer = checkpoints.sign(site.db, site.settings.checkpoint_file, signer)
        assert cosign(site.db, policy, newer).quorum
        late = cosign(site.db, policy, older)
        assert evidence(late) is None
        assert "already cosigned a newer checkpoint" in late.collected.unreachable["p"]
    finally:
        server.process.kill()
        server.process.wait()


def test_a_policy_never_counts_one_witness_twice() -> None:
    from custody.cosignature import cosigner_vkey
    from custody.errors import InputError
    from custody.policy import parse_policy

    key = Signer(Ed25519PrivateKey.generate()).public_key
    one, same_key = cosigner_vkey("w.test/a", key), cosigner_vkey("w.test/b", key)
    with pytest.raises(InputError, match="listed twice"):
        parse_policy(f"witness a {one}\nwitness b {same_key}\ngroup g all a b\nquorum g\n")
    other = cosigner_vkey("w.test/a", Signer(Ed25519PrivateKey.generate()).public_key)
    with pytest.raises(InputError, match="listed twice"):
        parse_policy(f"witness a {one}\nwitness b {other}\nquorum a\n")
    with pytest.raises(InputError, match="threshold"):
        parse_policy(f"witness a {one}\ngroup g \u00b2 a\nquorum g\n")
    assert parse_policy(f"witness a {one}\nquorum a\n").satisfied({"w.test/a"})


def test_sigterm_stops_the_witness_and_it_resumes_where_it_was(witness: Server, log: Log) -> None:
    """As systemd stops it: at once, exit 0; restarted, it holds the size it cosigned."""
    assert witness.post(log.request(0))[0] == 200
    witness.process.terminate()
    assert witness.process.wait(timeout=10) == 0
    again = start(witness.directory, witness.env, witness.vkey)
    try:
        status, body, _type = again.post(log.request(0))  # size 3 held: old 0 is stale
        assert (status, body) == (409, "3\n")
    finally:
        again.process.kill()
        again.process.wait()
