"""The key agent: the site key unlocked once, in one process's memory, for unattended work.

A cron purge or a night of scans appends entries that a signed checkpoint must cover,
and a destruction certificate must be signed; a passphrase file beside the job would put
the key within reach of anyone who reads the disk. Instead an operator (or systemd, from
a TPM-sealed credential) starts `scelle keys agent` once: it holds the key and answers on
a Unix socket, mode 0600, from processes of its own Unix user only (SO_PEERCRED).

It is not a signing oracle: a request names a job ("checkpoint", "certificates"), never
bytes to sign. The agent reads what it signs from the ledger itself and signs a
checkpoint only if it extends every earlier one, the last it signed (held in memory)
included: a database restored together with its checkpoint file, behind its back, is
refused until it restarts (and then the witnesses catch it).

Protocol: one JSON line each way. {"job": NAME} -> {"ok": true, ...} or
{"ok": false, "error": MESSAGE}; "ping" answers {"ok": true} (is an agent alive?).
The client checks that the socket's server is its own Unix user (or root), and what it
is given back is checked before it counts (custody/coverage.py verifies the note).
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import struct
import sys
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

from custody.errors import (
    EnvironmentProblemError,
    ExitCode,
    IntegrityError,
    InvalidStateError,
    ScelleError,
    SigningKeyError,
)
from custody.i18n import _, os_error_text

Job = Callable[[], dict[str, Any]]
TIMEOUT_S = 60.0  # a job signs and writes a few files: a minute is generous
REQUEST_S = 5.0  # to send its one request line
MAX_LINE = 4096
SUN_PATH_MAX = 107  # bytes in sockaddr_un.sun_path, with its terminating NUL


class AgentUnavailable(SigningKeyError):
    """No agent answered, or it refused the job: `message` says which and why. (A
    refusal because the ledger no longer extends what it signed is an IntegrityError.)"""


def ask(path: Path, job: str, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """Have the agent at `path` run `job`; its answer, or AgentUnavailable saying why."""
    if not path.exists():
        raise AgentUnavailable(_("no key agent is running ({path} is absent)").format(path=path))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            if _peer_uid(sock) not in (os.getuid(), 0):  # a socket another user planted
                raise AgentUnavailable(
                    _("{path} is served by another Unix user: not this site's key agent").format(
                        path=path
                    )
                )
            sock.sendall(json.dumps({"job": job}).encode() + b"\n")
            raw = sock.makefile("rb").readline(1 << 20)
        except OSError as exc:  # refused (a stale socket), timed out, path too long
            raise AgentUnavailable(
                _("the key agent at {path} did not answer: {reason}").format(
                    path=path, reason=os_error_text(exc)
                )
            ) from exc
    try:
        answer = json.loads(raw)
    except ValueError as exc:
        raise AgentUnavailable(
            _("the key agent at {path} gave no answer").format(path=path)
        ) from exc
    if not isinstance(answer, dict) or answer.get("ok") is not True:
        error = answer.get("error") if isinstance(answer, dict) else None
        if isinstance(answer, dict) and answer.get("exit") == int(ExitCode.INTEGRITY):
            raise IntegrityError(_("the key agent refused: {reason}").format(reason=error))
        raise AgentUnavailable(
            _("the key agent refused: {reason}").format(reason=error or _("no reason given"))
        )
    return answer


def answered(answer: dict[str, Any], key: str, kind: type) -> Any:
    """One field of an agent's answer, of the type the job promises, else AgentUnavailable."""
    value = answer.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise AgentUnavailable(_("the key agent's answer is malformed"))
    return value


def alive(path: Path) -> bool:
    """Whether an agent of this Unix user answers at `path` now (not a stale socket)."""
    try:
        ask(path, "ping", timeout=5)
    except ScelleError:
        return False
    return True


def _peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


class _Handler(socketserver.StreamRequestHandler):
    timeout = REQUEST_S  # a client that connects and sends nothing does not hold it long
    server: AgentServer

    def handle(self) -> None:
        try:
            line = self.rfile.readline(MAX_LINE)
        except OSError:
            return
        answer = self.server.answer(self.connection, line)
        with suppress(OSError):  # the client left: the job is done all the same
            self.wfile.write(json.dumps(answer).encode() + b"\n")


def _ping() -> dict[str, Any]:
    return {}


class StopAgent(BaseException):
    """Leave serve_forever (a BaseException: socketserver's handler must not swallow it)."""


class AgentServer(socketserver.UnixStreamServer):
    """One request at a time (a job signs and appends: nothing to gain from threads)."""

    busy = False
    stopping = False

    def __init__(self, path: Path, jobs: Mapping[str, Job], log: Callable[[str], None]) -> None:
        self.path, self.jobs, self.log = path, jobs, log
        if len(os.fsencode(path)) >= SUN_PATH_MAX:
            raise EnvironmentProblemError(
                _("the key agent's socket path is too long for the system: {path}").format(
                    path=path
                ),
                hint=_("use a shorter site directory"),
            )
        folder = path.parent.stat()
        if folder.st_mode & 0o022 or folder.st_uid != os.getuid():
            raise InvalidStateError(
                _(
                    "{folder} may be written by other Unix users: the key agent's socket "
                    "would not be safe there"
                ).format(folder=path.parent),
                hint=_("chmod go-w {folder}").format(folder=path.parent),
            )
        _take(path)
        old = os.umask(0o177)  # the socket is born 0600: no window where others connect
        try:
            super().__init__(str(path), _Handler)
        finally:
            os.umask(old)
        self.inode = path.lstat().st_ino  # removed at the end only if it is still this one

    def answer(self, conn: socket.socket, line: bytes) -> dict[str, Any]:
        if _peer_uid(conn) != os.getuid():
            self.log(_("refused a request from another Unix user"))
            return {"ok": False, "error": _("only the agent's own Unix user may ask it")}
        try:
            request = json.loads(line)
            name = request["job"]
            job = _ping if name == "ping" else self.jobs[name]
        except (ValueError, KeyError, TypeError):
            return {"ok": False, "error": _("unknown request")}
        try:
            self.busy = True
            result = job()
        except ScelleError as exc:
            self.log(_("{job}: refused: {reason}").format(job=name, reason=exc.message))
            return {"ok": False, "error": exc.message, "exit": int(exc.exit_code)}
        except OSError as exc:
            self.log(_("{job}: failed: {reason}").format(job=name, reason=os_error_text(exc)))
            return {"ok": False, "error": os_error_text(exc)}
        finally:
            self.busy = False
        return {"ok": True} | result

    def stop_soon(self) -> None:
        """For a signal handler: stop now if idle, else once the job is done (a job is
        never cut short between its database commit and its file)."""
        self.stopping = True
        if not self.busy:
            raise StopAgent

    def service_actions(self) -> None:
        if self.stopping:
            raise StopAgent

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line, not a traceback (a client that left, a timeout)."""
        self.log(_("a request failed: {reason}").format(reason=sys.exc_info()[1]))

    def server_close(self) -> None:
        super().server_close()
        with suppress(FileNotFoundError):
            if self.path.lstat().st_ino == self.inode:
                self.path.unlink()


def _take(path: Path) -> None:
    """Remove a socket left by an agent that died; refuse if one still answers."""
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_socket():
        raise InvalidStateError(_("{path} exists and is not a socket").format(path=path))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()
            return
    raise InvalidStateError(_("a key agent is already running ({path})").format(path=path))


def undumpable() -> None:
    """No core dump, and no ptrace or /proc/PID/mem read by other processes of the same
    user: the unlocked key stays in this process (Linux prctl PR_SET_DUMPABLE 0)."""
    import ctypes

    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)
