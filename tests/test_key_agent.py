"""No uncovered tail (issue 18): `scelle keys agent` as a real process, commands without a
passphrase covered through it, the unattended purge's certificate, and what it refuses:
another Unix user, a second agent, a ledger restored behind its back."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from custody.checkpoints import file_checkpoints
from custody.ledger import current_size
from tests.conftest import ADMIN, AUDITOR, OPERATOR, SiteEnv, run_cli
from tests.test_purge import Footage, store
from tests.test_witness import snapshot

__all__ = ["store"]


@dataclass
class Agent:
    process: subprocess.Popen[str]
    socket: Path

    def stop(self) -> str:
        """SIGTERM, as systemd stops it; what it logged."""
        self.process.send_signal(signal.SIGTERM)
        _out, err = self.process.communicate(timeout=30)
        return err


def start_agent(env: SiteEnv) -> Agent:
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "keys", "agent"],
        env={**os.environ, **env.env_as(ADMIN)}, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    while "listening on" not in (line := process.stderr.readline()):
        assert line, f"the agent stopped: exit {process.wait()}"
    return Agent(process, Path(line.split()[-1]))


@pytest.fixture
def agent(site_env: SiteEnv) -> Iterator[Agent]:
    running = start_agent(site_env)
    yield running
    if running.process.poll() is None:
        running.stop()


def without_passphrase(env: SiteEnv, login: str = OPERATOR) -> dict[str, str]:
    return {k: v for k, v in env.env_as(login).items() if k != "SCELLE_PASSPHRASE_FILE"}


def sizes(env: SiteEnv) -> tuple[int, int]:
    """The ledger's size and the largest size its checkpoint file covers."""
    with env.site.db.read() as cur:
        size = current_size(cur)
    notes = file_checkpoints(env.settings.checkpoint_file)
    return size, max(int(s.note.splitlines()[1]) for s in notes)


def test_without_an_agent_a_command_says_its_entries_are_not_covered(site_env: SiteEnv) -> None:
    noted = run_cli(["ledger", "note", "call", "--reason", "r"], env=without_passphrase(site_env))
    assert noted.exit_code == 0
    size, signed = sizes(site_env)
    assert signed < size
    assert (
        f"note: ledger entries {signed} to {size - 1} are not covered by a signed checkpoint: "
        "no key agent is running"
    ) in noted.stderr
    listed = run_cli(["requisition", "list"], env=without_passphrase(site_env))
    assert listed.exit_code == 0 and "not covered" not in listed.stderr  # appended nothing


def test_every_command_ends_covered_through_the_agent(site_env: SiteEnv, agent: Agent) -> None:
    assert stat.S_IMODE(agent.socket.lstat().st_mode) == 0o600
    size, signed = sizes(site_env)
    assert signed == size  # the tail left before it started is covered at once
    env = without_passphrase(site_env)
    for i in range(3):
        noted = run_cli(["ledger", "note", f"n{i}", "--reason", "r"], env=env)
        assert noted.exit_code == 0 and noted.stderr == "", noted.stderr
        assert sizes(site_env)[0] == sizes(site_env)[1]
    # a refusal is an entry too: covered as well
    add = ["agent", "add", "x", "--surname", "X", "--first-name", "Y", "--role", "operator"]
    refused = run_cli([*add, "--designation", "D"], env=env)
    assert refused.exit_code == 5
    assert sizes(site_env)[0] == sizes(site_env)[1]
    # `ledger checkpoint` needs no passphrase either
    signed_now = run_cli(["ledger", "checkpoint"], env=without_passphrase(site_env, ADMIN))
    assert signed_now.exit_code == 0 and signed_now.stdout.startswith("csv.test/ledger\n")
    verified = run_cli(["ledger", "verify"], env=site_env.env_as(AUDITOR))
    assert verified.exit_code == 0 and "not yet covered" not in verified.stdout + verified.stderr
    log = agent.stop()
    assert "checkpoint of" in log and "key agent stopped" in log
    assert not agent.socket.exists()


@pytest.mark.backends("sqlite")
def test_the_agent_refuses_a_ledger_restored_behind_its_back(
    site_env: SiteEnv, agent: Agent, tmp_path: Path
) -> None:
    """The insider of issue 18 while the agent runs: both files restored together."""
    home = site_env.settings.home
    site_env.site.close()
    snapshot(home / "scelle.db", tmp_path / "db.copy")
    shutil.copy(home / "checkpoints.txt", tmp_path / "checkpoints.copy")
    env = without_passphrase(site_env)
    assert run_cli(["ledger", "note", "true", "--reason", "the true entry"], env=env).stderr == ""
    snapshot(tmp_path / "db.copy", home / "scelle.db")
    shutil.copy(tmp_path / "checkpoints.copy", home / "checkpoints.txt")
    rewritten = run_cli(["ledger", "note", "fake", "--reason", "a rewritten entry"], env=env)
    assert rewritten.exit_code == 0  # the work stands; what it says does not hide anything
    assert "the key agent refused: refusing to sign: the log no longer extends" in rewritten.stderr
    by_hand = run_cli(["ledger", "checkpoint"], env=without_passphrase(site_env, ADMIN))
    assert by_hand.exit_code == 4
    assert "the key agent refused" in by_hand.stderr


def test_an_unattended_purge_gets_its_certificate_from_the_agent(store: Footage) -> None:
    env = store.env
    agent = start_agent(env)
    try:
        purged = run_cli(["purge", "--json"], env=without_passphrase(env, ADMIN))
        assert purged.exit_code == 0, purged.stderr
        report = json.loads(purged.stdout)
        [made] = report["certificates"]
        assert Path(made, "certificate.json").is_file()
        assert purged.stderr == ""  # its entries are covered too
        checked = run_cli(["verify", made], env=env.env_as(AUDITOR))
        assert checked.exit_code == 0, checked.stderr
    finally:
        agent.stop()
    # without key or agent the purge still refuses to start, as before (exit 7)
    again = run_cli(["purge"], env=without_passphrase(env, ADMIN))
    assert again.exit_code == 7


@pytest.mark.backends("sqlite")
def test_one_agent_per_site_and_a_dead_ones_socket_is_taken_over(
    site_env: SiteEnv, agent: Agent
) -> None:
    second = subprocess.run(
        [sys.executable, "-m", "cli", "keys", "agent"],
        env={**os.environ, **site_env.env_as(ADMIN)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert second.returncode == 5 and "a key agent is already running" in second.stderr
    agent.process.kill()  # kill -9: the socket stays behind
    agent.process.wait()
    assert agent.socket.is_socket()
    stale = run_cli(["ledger", "note", "n", "--reason", "r"], env=without_passphrase(site_env))
    assert "the key agent at" in stale.stderr and "did not answer" in stale.stderr
    restarted = start_agent(site_env)
    try:
        assert sizes(site_env)[0] == sizes(site_env)[1]  # it covered what was left
    finally:
        restarted.stop()


@pytest.mark.backends("sqlite")
def test_only_its_own_unix_user_may_ask(site_env: SiteEnv, agent: Agent) -> None:
    if os.getuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root and runuser to act as another Unix user")
    ask = (
        "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
        's.sendall(b\'{"job": "checkpoint"}\\n\'); print(s.makefile().readline())'
    )
    # every folder down to the socket open to others: only the socket's own mode stops them
    folders = [p for p in agent.socket.parents if p != Path("/")]
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in folders}
    try:
        for folder, mode in modes.items():
            os.chmod(folder, mode | 0o001)
        as_nobody = ["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", ask]
        as_nobody.append(str(agent.socket))
        blocked = subprocess.run(as_nobody, capture_output=True, text=True, timeout=30)
        assert blocked.returncode != 0 and "PermissionError" in blocked.stderr  # mode 0600
        os.chmod(agent.socket, 0o666)  # a careless administrator: the agent still refuses
        answered = subprocess.run(as_nobody, capture_output=True, text=True, timeout=30)
    finally:
        for folder, mode in modes.items():
            os.chmod(folder, mode)
    assert json.loads(answered.stdout) == {
        "ok": False,
        "error": "only the agent's own Unix user may ask it",
    }
    noted = run_cli(["ledger", "note", "n", "--reason", "r"], env=without_passphrase(site_env))
    assert noted.stderr == ""


@pytest.mark.backends("sqlite")
def test_a_restore_to_before_a_checkpoint_signed_with_the_key_is_refused(
    site_env: SiteEnv, agent: Agent, tmp_path: Path
) -> None:
    """A checkpoint signed with the key while the agent runs is told to it: a restore to
    before it is refused as one to before the agent's own."""
    home = site_env.settings.home
    site_env.site.close()
    snapshot(home / "scelle.db", tmp_path / "db.copy")
    shutil.copy(home / "checkpoints.txt", tmp_path / "checkpoints.copy")
    site_env.site.ledger.note(ADMIN, "uncovered", "appended around the CLI", None)
    signed = run_cli(["ledger", "checkpoint"], env=site_env.env_as(ADMIN))  # with the key
    assert signed.exit_code == 0, signed.stderr
    site_env.site.close()
    snapshot(tmp_path / "db.copy", home / "scelle.db")
    shutil.copy(tmp_path / "checkpoints.copy", home / "checkpoints.txt")
    forked = run_cli(["ledger", "note", "fake", "--reason", "r"], env=without_passphrase(site_env))
    assert "the key agent refused: refusing to sign" in forked.stderr, forked.stderr


@pytest.mark.backends("sqlite")
def test_a_planted_checkpoint_row_does_not_silence_the_note(site_env: SiteEnv) -> None:
    """A row with a huge size and no valid signature does not count as coverage."""
    from tests.conftest import raw_connection

    conn = raw_connection(site_env)
    conn.execute(
        "INSERT INTO ledger_checkpoint (tree_size, root, note, signed_at) "
        "VALUES (999999999, x'00', 'junk', '2026-01-01T00:00:00.000000Z')"
    )
    conn.close()
    noted = run_cli(["ledger", "note", "n", "--reason", "r"], env=without_passphrase(site_env))
    assert "not covered by a signed checkpoint" in noted.stderr


@pytest.mark.backends("sqlite")
def test_a_socket_that_is_not_the_agent_covers_nothing(site_env: SiteEnv) -> None:
    """Whatever answers on the socket is checked: a malformed answer, or a note the site
    key did not sign, leaves the entries uncovered and said, with no traceback; a stale
    socket does not let the purge run without its key."""
    import socket as sockets
    import threading

    path = site_env.settings.key_agent_socket
    answers = [b'{"ok": true}\n', b'{"ok": true, "note": "csv.test/ledger\\n9\\nAAAA\\n\\n"}\n']
    for answer in answers:
        server = sockets.socket(sockets.AF_UNIX)
        server.bind(str(path))
        server.listen()

        def serve(listening: sockets.socket = server, reply: bytes = answer) -> None:
            conn, _addr = listening.accept()
            conn.makefile("rb").readline()
            conn.sendall(reply)
            conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        noted = run_cli(["ledger", "note", "n", "--reason", "r"], env=without_passphrase(site_env))
        thread.join(timeout=10)
        assert not thread.is_alive()  # it was asked
        server.close()
        path.unlink()
        assert noted.exit_code == 0 and "Traceback" not in noted.stderr
        assert "not covered by a signed checkpoint" in noted.stderr, noted.stderr
    stale = sockets.socket(sockets.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # what a killed agent leaves
    purged = run_cli(["purge"], env=without_passphrase(site_env, ADMIN))
    assert purged.exit_code == 7  # no key, no live agent: it does not start
