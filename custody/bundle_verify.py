"""`scelle ledger verify --bundle`: an auditor's offline check of a ledger bundle.

No database is imported. Every check runs and is reported; any failure raises. The key
in the bundle proves only that the checkpoint was signed by whoever holds it: pin the
fingerprint the CSV published (`--key`) to prove it is the CSV's.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from custody import merkle
from custody.canonical import parse_canonical
from custody.checks import Report, load_key_file, run_checks
from custody.errors import InputError, IntegrityError
from custody.note import verify_checkpoint
from custody.signatures import verify_raw

FORMAT = "scelle-ledger-bundle/1"  # proof.json's "format"; custody.bundle writes it

FILES = {
    "entries.jsonl",
    "proof.json",
    "checkpoint.txt",
    "checkpoint.body",
    "checkpoint.sig",
    "key.pub.pem",
    "README.txt",
    "SHA256SUMS",
}


def _read(root: Path, name: str) -> bytes:
    path = root / name
    if path.is_symlink() or not path.is_file():
        raise IntegrityError(f"{name} is missing or not a plain file")
    return path.read_bytes()


def verify_bundle(root: Path, key_fingerprint: str | None = None) -> tuple[Report, int]:
    """Check a bundle; returns the report and the number of entries proved."""
    if not (root / "proof.json").is_file():
        raise InputError(f"{root} is not a scelle ledger bundle (no proof.json)")
    report = Report(root)
    key = report.key = load_key_file(root / "key.pub.pem")
    try:
        proof: dict[str, Any] = parse_canonical(_read(root, "proof.json"))
    except ValueError as exc:
        raise IntegrityError("proof.json is not canonical JSON") from exc
    counted = [0]

    def sums() -> None:
        listed = {}
        for line in _read(root, "SHA256SUMS").decode().splitlines():
            digest, _, name = line.partition("  ")
            listed[name] = digest
        if set(listed) != FILES - {"SHA256SUMS"}:
            raise IntegrityError("SHA256SUMS does not list exactly the bundle's files")
        for name, digest in sorted(listed.items()):
            if hashlib.sha256(_read(root, name)).hexdigest() != digest:
                raise IntegrityError(f"{name} does not match SHA256SUMS")

    def inventory() -> None:
        present = {p.name for p in root.iterdir()}
        if present != FILES:
            odd = sorted(present ^ FILES)
            raise IntegrityError(f"file(s) added or missing: {', '.join(odd[:5])}")

    def checkpoint() -> None:
        verify_raw(key, _read(root, "checkpoint.body"), _read(root, "checkpoint.sig"))
        cp = verify_checkpoint(_read(root, "checkpoint.txt").decode(), proof["key_name"], key)
        if _read(root, "checkpoint.body").decode() != cp.body():
            raise IntegrityError("checkpoint.body is not the signed note's body")
        if (cp.origin, cp.size, base64.b64encode(cp.root).decode()) != (
            proof["origin"],
            proof["tree_size"],
            proof["root"],
        ):
            raise IntegrityError("proof.json names another checkpoint than checkpoint.txt")

    def entries() -> None:
        if proof.get("format") != FORMAT:
            raise IntegrityError(f"proof.json is not {FORMAT}")
        first, last, size = int(proof["first"]), int(proof["last"]), int(proof["tree_size"])
        lines = _read(root, "entries.jsonl").split(b"\n")
        if lines[-1] != b"":
            raise IntegrityError("entries.jsonl does not end with a newline")
        bodies = lines[:-1]
        if len(bodies) != last - first + 1:
            raise IntegrityError(
                f"entries.jsonl holds {len(bodies)} entries, not {last - first + 1}"
            )
        for expected, body in enumerate(bodies, start=first):
            entry = parse_canonical(body)
            if entry.get("seq") != expected:
                raise IntegrityError(
                    f"line {expected - first + 1} is entry {entry.get('seq')}, not {expected}"
                )
        root_hash = merkle.range_root(
            first,
            [base64.b64decode(h, validate=True) for h in proof["left"]],
            (merkle.leaf_hash(b) for b in bodies),
            [base64.b64decode(n["hash"], validate=True) for n in proof["right"]],
            last + 1,
            size,
        )
        if base64.b64encode(root_hash).decode() != proof["root"]:
            raise IntegrityError(
                "the entries do not rebuild the signed root: altered, added or removed"
            )
        counted[0] = len(bodies)

    checks: list[tuple[str, Callable[[], None]]] = [
        ("Ed25519 signature of the checkpoint (openssl)", checkpoint),
        ("SHA256SUMS", sums),
        ("no file added or missing", inventory),
        ("entries in order, rebuilding the signed root", entries),
    ]
    return run_checks(report, checks, key_fingerprint), counted[0]
