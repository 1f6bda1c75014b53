"""The witness's directory and its HTTP service (`scelle witness init|follow|serve`).

    <dir>/witness.p12     its Ed25519 key, encrypted (PKCS#12, 600,000 PBKDF2 rounds), 0600
    <dir>/witness.vkey    its cosignature/v1 verifier key: what a site's policy lists
    <dir>/logs            the logs it follows, one `log <origin> <checkpoint vkey>` line each
    <dir>/witness.db      the latest checkpoint it cosigned per log (custody/witness.py)

The service is the standard library's threading HTTP server: one route, POST
/add-checkpoint, bodies of at most 64 KB. Put it behind the institution's reverse proxy
(TLS) to expose it; it holds no secret beyond its key and logs one line per request.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.cosignature import cosigner_vkey
from custody.errors import InputError, InvalidStateError
from custody.files import write_atomic
from custody.i18n import _
from custody.keys import create_key, load_signer
from custody.note import check_key_name, parse_verifier_key
from custody.witness import MAX_BODY, Answer, Witness, WitnessState

KEY, VKEY, LOGS, STATE = "witness.p12", "witness.vkey", "logs", "witness.db"


def init_witness(directory: Path, name: str, passphrase: bytes) -> str:
    """Create a witness: its key and an empty list of logs; its verifier key."""
    check_key_name(name)
    if (directory / KEY).exists():
        raise InvalidStateError(_("a witness already exists in {path}").format(path=directory))
    directory.mkdir(parents=True, exist_ok=True)
    signer = create_key(directory / KEY, passphrase, name)
    vkey = cosigner_vkey(name, signer.public_key)
    write_atomic(directory / VKEY, f"{vkey}\n".encode())
    write_atomic(
        directory / LOGS, b"# one line per log followed: log <origin> <checkpoint verifier key>\n"
    )
    WitnessState(directory / STATE)
    return vkey


def add_log(directory: Path, vkey: str, origin: str | None = None) -> str:
    """Follow one more log: its checkpoint verifier key (`scelle keys show --vkey`) and its
    origin line (default `<key name>/ledger`, a scelle site's); the origin."""
    name, _key = parse_verifier_key(vkey)
    origin = origin or f"{name}/ledger"
    check_key_name(origin)
    logs = directory / LOGS
    if not logs.is_file():
        raise InputError(_("{path} is not a witness directory").format(path=directory))
    text = logs.read_text()
    line = f"log {origin} {vkey.strip()}"
    if line not in text.splitlines():
        write_atomic(logs, (text + line + "\n").encode())
    return origin


def load_witness(directory: Path, passphrase: bytes) -> Witness:
    vkey = (directory / VKEY).read_text().strip()
    name = vkey.split("+", 1)[0]
    logs: dict[str, list[tuple[str, Ed25519PublicKey]]] = {}
    for number, line in enumerate((directory / LOGS).read_text().splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] != "log" or len(words) != 3:
            raise InputError(
                _("{path}, line {n}: expected 'log <origin> <verifier key>'").format(
                    path=directory / LOGS, n=number
                )
            )
        key_name, key = parse_verifier_key(words[2])
        logs.setdefault(words[1], []).append((key_name, key))
    signer = load_signer(directory / KEY, passphrase)
    return Witness(name, signer, logs, WitnessState(directory / STATE))


class _Stopped(BaseException):
    """SIGTERM: out of serve_forever (whose own shutdown() would wait on itself here)."""


def serve_until_stopped(server: ThreadingHTTPServer) -> None:
    """Serve until SIGTERM or Ctrl-C; requests under way finish (their threads are
    joined), each update being one transaction of its own."""

    def stop(_signum: int, _frame: object) -> None:
        raise _Stopped

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except (_Stopped, KeyboardInterrupt):
        pass
    finally:
        server.server_close()
        signal.signal(signal.SIGTERM, previous)


def make_server(
    witness: Witness, host: str, port: int, log: Callable[[str], None] | None = None
) -> ThreadingHTTPServer:
    say = log or (lambda line: print(line, file=sys.stderr, flush=True))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "scelle-witness"
        timeout = 30  # a client that stops sending does not hold a thread for ever

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/add-checkpoint":
                self.close_connection = True  # its body is not read: no keep-alive
                return self._send(Answer(404, b"not found\n"))
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self.close_connection = True
                return self._send(Answer(411, b"Content-Length required\n"))
            if not 0 <= length <= MAX_BODY:
                self.close_connection = True
                return self._send(Answer(413, b"request too large\n"))
            answer = witness.add_checkpoint(self.rfile.read(length))
            self._send(answer)

        def do_GET(self) -> None:
            self._send(Answer(405, b"POST /add-checkpoint only\n"))

        def _send(self, answer: Answer) -> None:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: object) -> None:
            say(f"{self.address_string()} {format % args}")

    return ThreadingHTTPServer((host, port), Handler)
