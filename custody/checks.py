"""What every offline verification shares: run all checks, report each, raise at the end.

Used by `scelle verify` (exports, destruction certificates) and `scelle ledger verify
--bundle`; nothing here imports the database layer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.errors import InputError, IntegrityError, ScelleError
from custody.i18n import N_, _, os_error_text
from custody.keys import der_sha256, public_pem, ssh_fingerprint
from custody.text import shown


@dataclass(frozen=True)
class Check:
    """One check's outcome. `id` is its name for machines and people alike: the same in
    every language, in `scelle verify` and in the VERIFY.html page (`data-first-failure`);
    `title` says in the user's language what it checks."""

    id: str
    title: str
    failure: str | None = None

    @property
    def shown(self) -> str:
        return f"{self.id} ({self.title})"


@dataclass
class Report:
    directory: Path
    checks: list[Check] = field(default_factory=list)
    key: Ed25519PublicKey | None = None
    key_pinned: bool = False

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if check.failure is not None]

    @property
    def fingerprint(self) -> str | None:
        return ssh_fingerprint(self.key) if self.key else None


def checks_json(report: Report) -> dict[str, Any]:
    """What every offline verification's `--json` says of its checks and key."""
    return {
        "first_failure": report.failures[0].id if report.failures else None,
        "verified": not report.failures,
        "key_pinned": report.key_pinned,
        "fingerprint": report.fingerprint,
        "checks": [
            {"id": c.id, "name": c.title, "ok": c.failure is None, "failure": c.failure}
            for c in report.checks
        ],
    }


def load_key_file(path: Path) -> Ed25519PublicKey:
    """A public key shipped with what it signed (trusted only once its fingerprint is
    compared with one printed on signed paper)."""
    name = f"{path.parent.name}/{path.name}" if path.parent.name == "keys" else path.name
    if path.is_symlink() or not path.is_file():
        raise IntegrityError(_("{name} is missing or not a plain file").format(name=name))
    try:
        data = path.read_bytes()
        key = serialization.load_pem_public_key(data)
    except OSError as exc:
        raise IntegrityError(
            _("{name} cannot be read: {reason}").format(name=name, reason=os_error_text(exc))
        ) from exc
    except ValueError as exc:
        raise IntegrityError(_("{name} is not a public key").format(name=name)) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise IntegrityError(_("{name} is not an Ed25519 key").format(name=name))
    # Exactly as scelle writes it (VERIFY.html reads it so): OpenSSL would skip text
    # around the PEM block, and the two verifiers must not disagree on what is a key.
    if data != public_pem(key).encode():
        raise IntegrityError(_("{name} is not in the form scelle writes").format(name=name))
    return key


# The forms `--key` takes: SHA256:<base64> (ssh-keygen -lf), the same without its prefix,
# or the DER key's SHA-256 in hex (openssl | sha256sum).
FINGERPRINT = re.compile(r"(?:SHA256:)?[A-Za-z0-9+/]{43}|[0-9a-f]{64}", re.ASCII)


def pinned_key(key: Ed25519PublicKey, expected: str) -> None:
    value = expected.strip()
    if value not in (ssh_fingerprint(key), der_sha256(key), ssh_fingerprint(key)[7:]):
        raise IntegrityError(
            _("signed by {actual}, not by the key {expected}").format(
                actual=ssh_fingerprint(key), expected=value
            )
        )


PAGE = "VERIFY.html"  # the verifier page every export and ledger bundle carries
EXPECTED_KEY = N_("signing key is the expected one (--key)")


@contextmanager
def read_first(report: Report, ident: str, title: str) -> Iterator[None]:
    """What must be read before any check (the manifest, the key): its failure is
    reported as a failed check named `ident`, as VERIFY.html names it."""
    try:
        yield
    except IntegrityError as exc:
        report.checks.append(Check(ident, title, exc.message))
        raise VerificationFailedError(
            report,
            _("{count} check(s) failed; first: {name}: {problem}").format(
                count=1, name=report.checks[-1].shown, problem=exc.message
            ),
        ) from exc


# A check to run: its id (see Check), its title, and the function that raises on failure.
Step = tuple[str, str, Callable[[], None]]


def run_checks(report: Report, checks: list[Step], pinned: str | None) -> Report:
    """Run every check (the expected key first, when given), then raise if any failed."""
    if pinned is not None:
        key = report.key
        if key is None or not pinned.strip():
            raise InputError(_("--key is empty: give the fingerprint printed on the signed paper"))
        if not FINGERPRINT.fullmatch(pinned.strip()):
            raise InputError(
                _("--key {value} is not a key fingerprint").format(value=shown(pinned.strip(), 40)),
                hint=_("copy it from the signed paper: SHA256: followed by 43 characters"),
            )
        report.key_pinned = True
        checks = [
            (
                "expected-key",
                _(EXPECTED_KEY),
                lambda: pinned_key(key, pinned),
            ),
            *checks,
        ]
    for ident, title, check in checks:
        try:
            check()
            report.checks.append(Check(ident, title))
        except (
            ScelleError,
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
            UnicodeDecodeError,
        ) as exc:
            report.checks.append(Check(ident, title, _problem(exc)))
    if report.failures:
        first = report.failures[0]
        raise VerificationFailedError(
            report,
            _("{count} check(s) failed; first: {name}: {problem}").format(
                count=len(report.failures), name=first.shown, problem=first.failure
            ),
        )
    return report


def _problem(exc: Exception) -> str:
    """What a failed check says: our message, or what was malformed in our words (never
    Python's, which name codecs, byte positions and exception classes)."""
    if isinstance(exc, ScelleError):
        return exc.message
    if isinstance(exc, KeyError) and exc.args:
        return _("malformed: no {field!r} field").format(field=exc.args[0])
    if isinstance(exc, UnicodeDecodeError):
        return _("malformed: not UTF-8 text")
    return _("malformed: a value is missing or not of the expected form")


class VerificationFailedError(IntegrityError):
    """Carries the full report so that the CLI can print every check."""

    def __init__(self, report: Report, message: str) -> None:
        super().__init__(message)
        self.report = report
