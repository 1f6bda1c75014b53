"""One error root for scelle, with the exit code each kind of failure maps to.

The CLI catches `ScelleError` in one place, prints `message` (and `hint`) on one line and
exits with `exit_code`; everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar


class ExitCode(IntEnum):
    """Documented exit codes (README, `scelle --help`)."""

    OK = 0
    INTERNAL = 1  # a bug: unexpected exception
    USAGE = 2  # command-line usage error (unknown option, missing argument)
    INPUT = 3  # invalid input: malformed value, unknown identifier, path trick
    INTEGRITY = 4  # verification failed: altered, missing or forged data
    REFUSED = 5  # refused: wrong state or not permitted
    ENVIRONMENT = 6  # site, database, file or tool missing or unreadable
    KEY = 7  # signing key missing or unreadable, wrong passphrase
    NOTHING_TO_DO = 8  # scelle purge: nothing had expired
    PARTIAL = 9  # scelle purge: some segments could not be destroyed
    VERIFIED_PARTIAL = 10  # scelle verify: authentic, but the export states gaps
    BROKEN_PIPE = 141  # the reader of stdout left (| head): 128 + SIGPIPE, as a shell shows


class ScelleError(Exception):
    """Root of every error scelle reports to its user."""

    exit_code: ClassVar[ExitCode] = ExitCode.INTERNAL

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class InputError(ScelleError):
    """The user gave something malformed or unknown."""

    exit_code = ExitCode.INPUT


class MalformedTimeError(InputError):
    """Text that is not written as a time at all (not a time that cannot be, like 25:00):
    a caller that reads times or days can say what it expected."""


class IntegrityError(ScelleError):
    """Something that should be intact is not: verification failed."""

    exit_code = ExitCode.INTEGRITY


class SignatureError(IntegrityError):
    """A signature does not verify with the expected key."""


class ProofError(IntegrityError):
    """A Merkle inclusion or consistency proof does not verify."""


class CorruptSegmentError(IntegrityError):
    """A footage file that cannot be read as video."""


class FootageAlteredError(IntegrityError):
    """A footage file whose bytes are no longer those hashed at ingest."""


class RefusedError(ScelleError):
    """The action is not allowed now or for this person."""

    exit_code = ExitCode.REFUSED


class InvalidStateError(RefusedError):
    """The action does not fit the current state (already initialised, ...)."""


class PermissionDeniedError(RefusedError):
    """The acting agent may not do this."""


class EnvironmentProblemError(ScelleError):
    """Something scelle needs from its surroundings is missing or unreadable."""

    exit_code = ExitCode.ENVIRONMENT


class SiteError(EnvironmentProblemError):
    """No site, or a site directory scelle cannot use."""


class DatabaseError(EnvironmentProblemError):
    """The database is missing, unreadable or of an unknown schema."""


class FootageUnavailableError(EnvironmentProblemError):
    """The footage asked for is not kept (never recorded, or past its retention)."""


class DiskFullError(EnvironmentProblemError):
    """A disk (the export's, a removable medium) has no room left; nothing half-written
    was kept."""


class FfmpegError(EnvironmentProblemError):
    """ffmpeg is missing, or failed on input that should have worked."""


class SigningKeyError(ScelleError):
    """The signing key cannot be used."""

    exit_code = ExitCode.KEY


class SigningKeyMissingError(SigningKeyError):
    """No key file where the site expects one."""


class WrongPassphraseError(SigningKeyError):
    """The passphrase does not open the key file."""
