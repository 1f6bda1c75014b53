"""`scelle ledger verify --bundle`: an auditor's offline check of a ledger bundle.

No database is imported. Every check runs and is reported; any failure raises. The key
in the bundle proves only that the checkpoint was signed by whoever holds it: pin the
fingerprint the CSV published (`--key`) to prove it is the CSV's. checkpoint.txt may
carry, after the site's signature line, the witnesses' cosignatures: given a witness
policy (`--policy`), the `witnesses` check verifies them against its quorum as `scelle
verify --policy` does (custody/witness_check.py); without one, their names are listed,
not checked.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from custody import merkle
from custody.canonical import parse_canonical
from custody.checks import (
    EXPECTED_KEY,
    PAGE,
    Report,
    Step,
    checks_json,
    load_key_file,
    read_first,
    run_checks,
)
from custody.errors import InputError, IntegrityError
from custody.i18n import N_, _
from custody.note import verify_checkpoint
from custody.policy import Policy
from custody.signatures import verify_raw
from custody.witness_check import (
    POLICY_CHECKS,
    WitnessedReport,
    check_witnesses,
    named_cosigners,
    witnesses_json,
)

FORMAT = "scelle-ledger-bundle/1"  # proof.json's "format"; custody.bundle writes it

# Every check of a bundle, in the order run, by id (custody.checks.Check); VERIFY.html
# names them the same. BUNDLE_BEFORE: what is read first, a failure named by its id.
# Given a witness policy, POLICY_CHECKS (`witnesses`) runs last.
BUNDLE_CHECKS = {
    "checkpoint": N_("Ed25519 signature of the checkpoint (openssl)"),
    "sha256sums": N_("SHA256SUMS of every file"),
    "inventory": N_("no file added or missing"),
    "entries": N_("entries in order, rebuilding the signed root"),
}
BUNDLE_BEFORE = {
    "keys": N_("key.pub.pem, an Ed25519 public key"),
    "proof": N_("proof.json readable, canonical"),
    "expected-key": EXPECTED_KEY,
}

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
        raise IntegrityError(_("{name} is missing or not a plain file").format(name=name))
    return path.read_bytes()


def verify_bundle(
    root: Path, key_fingerprint: str | None = None, policy: Policy | None = None
) -> tuple[WitnessedReport, int]:
    """Check a bundle (with `policy`, also its checkpoint's cosignatures); returns the
    report and the number of entries proved."""
    if not (root / "proof.json").is_file():
        raise InputError(
            _("{path} is not a scelle ledger bundle (no proof.json)").format(path=root)
        )
    report = WitnessedReport(root)
    report.key_pinned = key_fingerprint is not None  # no warning if what follows fails
    with read_first(report, "keys", _(BUNDLE_BEFORE["keys"])):
        key = report.key = load_key_file(root / "key.pub.pem")
    with read_first(report, "proof", _(BUNDLE_BEFORE["proof"])):
        try:
            proof: dict[str, Any] = parse_canonical(_read(root, "proof.json"))
        except ValueError as exc:
            raise IntegrityError(_("proof.json is not canonical JSON")) from exc
    files = FILES | {PAGE} if (root / PAGE).exists() else FILES
    counted = [0]

    def sums() -> None:
        listed = {}
        for line in _read(root, "SHA256SUMS").decode().splitlines():
            digest, _sep, name = line.partition("  ")
            listed[name] = digest
        if set(listed) != files - {"SHA256SUMS"}:
            raise IntegrityError(_("SHA256SUMS does not list exactly the bundle's files"))
        for name, digest in sorted(listed.items()):
            if hashlib.sha256(_read(root, name)).hexdigest() != digest:
                raise IntegrityError(_("{name} does not match SHA256SUMS").format(name=name))

    def inventory() -> None:
        present = {p.name for p in root.iterdir()}
        if present != files:
            odd = sorted(present ^ files)
            raise IntegrityError(
                _("file(s) added or missing: {names}").format(names=", ".join(odd[:5]))
            )

    def checkpoint() -> None:
        verify_raw(key, _read(root, "checkpoint.body"), _read(root, "checkpoint.sig"))
        cp = verify_checkpoint(_read(root, "checkpoint.txt").decode(), proof["key_name"], key)
        if _read(root, "checkpoint.body").decode() != cp.body():
            raise IntegrityError(_("checkpoint.body is not the signed note's body"))
        if (cp.origin, cp.size, base64.b64encode(cp.root).decode()) != (
            proof["origin"],
            proof["tree_size"],
            proof["root"],
        ):
            raise IntegrityError(_("proof.json names another checkpoint than checkpoint.txt"))

    def entries() -> None:
        if proof.get("format") != FORMAT:
            raise IntegrityError(_("proof.json is not {format}").format(format=FORMAT))
        first, last, size = int(proof["first"]), int(proof["last"]), int(proof["tree_size"])
        lines = _read(root, "entries.jsonl").split(b"\n")
        if lines[-1] != b"":
            raise IntegrityError(_("entries.jsonl does not end with a newline"))
        bodies = lines[:-1]
        if len(bodies) != last - first + 1:
            raise IntegrityError(
                _("entries.jsonl holds {count} entries, not {expected}").format(
                    count=len(bodies), expected=last - first + 1
                )
            )
        for expected, body in enumerate(bodies, start=first):
            entry = parse_canonical(body)
            if entry.get("seq") != expected:
                raise IntegrityError(
                    _("line {line} is entry {seq}, not {expected}").format(
                        line=expected - first + 1, seq=entry.get("seq"), expected=expected
                    )
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
                _("the entries do not rebuild the signed root: altered, added or removed")
            )
        counted[0] = len(bodies)

    run = {"checkpoint": checkpoint, "sha256sums": sums, "inventory": inventory, "entries": entries}
    checks: list[Step] = [(ident, _(title), run[ident]) for ident, title in BUNDLE_CHECKS.items()]
    named = proof.get("key_name") if isinstance(proof, dict) else None
    site = named if isinstance(named, str) else None  # the key name it signs checkpoints with
    if policy is not None:
        checks.append(
            (
                "witnesses",
                _(POLICY_CHECKS["witnesses"]),
                lambda: check_witnesses(
                    report, policy, _read(root, "checkpoint.txt").decode(), site
                ),
            )
        )
    else:
        report.cosigners_named = named_cosigners(lambda: _read(root, "checkpoint.txt"), site)
    run_checks(report, checks, key_fingerprint)
    return report, counted[0]


def bundle_json(report: Report, count: int | None) -> dict[str, Any]:
    """`scelle ledger verify --bundle --json`: every check, and the witnesses, worded as
    `scelle verify --json` words them; with the number of entries proved once verified."""
    shown: dict[str, Any] = {
        "directory": str(report.directory),
        "status": "failed" if report.failures else "ok",
    } | checks_json(report)
    if not report.failures:
        shown["entries"] = count
    if isinstance(report, WitnessedReport):
        shown |= witnesses_json(report)
    return shown
