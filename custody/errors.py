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


class IntegrityError(ScelleError):
    """Something that should be intact is not: verification failed."""

    exit_code = ExitCode.INTEGRITY


class SignatureError(IntegrityError):
    """A signature does not verify with the expected key."""


class ProofError(IntegrityError):
    """A Merkle inclusion or consistency proof does not verify."""


class CorruptSegment(IntegrityError):
    """A footage file that cannot be read as video."""


class FootageAltered(IntegrityError):
    """A footage file whose bytes are no longer those hashed at ingest."""


class RefusedError(ScelleError):
    """The action is not allowed now or for this person."""

    exit_code = ExitCode.REFUSED


class InvalidState(RefusedError):
    """The action does not fit the current state (already initialised, ...)."""


class PermissionDenied(RefusedError):
    """The acting agent may not do this."""


class EnvironmentProblem(ScelleError):
    """Something scelle needs from its surroundings is missing or unreadable."""

    exit_code = ExitCode.ENVIRONMENT


class SiteError(EnvironmentProblem):
    """No site, or a site directory scelle cannot use."""


class DatabaseError(EnvironmentProblem):
    """The database is missing, unreadable or of an unknown schema."""


class FootageUnavailable(EnvironmentProblem):
    """The footage asked for is not kept (never recorded, or past its retention)."""


class DiskFull(EnvironmentProblem):
    """A disk (the export's, a removable medium) has no room left; nothing half-written
    was kept."""


class FfmpegError(EnvironmentProblem):
    """ffmpeg is missing, or failed on input that should have worked."""


class KeyProblem(ScelleError):
    """The signing key cannot be used."""

    exit_code = ExitCode.KEY


class KeyMissing(KeyProblem):
    """No key file where the site expects one."""


class WrongPassphrase(KeyProblem):
    """The passphrase does not open the key file."""
