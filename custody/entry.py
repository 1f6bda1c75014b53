"""The ledger entry's format: its version and fields, what a caller asks to record, and
how its bytes are made and read back. One home, shared by the ledger that appends, the
audit index that derives from entries, and every reader; it imports no database module
(`scelle verify` and bundle checks read entries too).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from custody.canonical import canonical_bytes, parse_canonical
from custody.errors import InputError, IntegrityError
from custody.i18n import _
from custody.timewindow import stored_now

ENTRY_VERSION = 1
_ACTION = re.compile(r"[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*")


@dataclass(frozen=True)
class Record:
    """What a caller asks the ledger to remember: who is added at append time."""

    action: str  # dotted verb, e.g. "site.init", "footage.extract"
    subject: str | Mapping[str, Any]  # what was touched
    reason: str  # why: required, auditors ask it for every access
    procedure: str | None = None  # PV / procedure number where one applies
    data: Mapping[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if not _ACTION.fullmatch(self.action):
            raise InputError(_("invalid ledger action {action!r}").format(action=self.action))
        if not self.reason.strip():
            raise InputError(_("every ledger entry needs a reason"))
        if self.procedure is not None and not self.procedure.strip():
            raise InputError(_("the procedure number is empty"))


@dataclass(frozen=True)
class Appended:
    seq: int
    body: bytes
    leaf_hash: bytes


def utc_now() -> str:
    """UTC, ISO 8601 with microseconds and a Z: the only time format in records."""
    return stored_now()


def entry_fields(seq: int, time: str, actor: str, record: Record) -> dict[str, Any]:
    """One entry as the JSON object whose canonical bytes are stored."""
    return {
        "v": ENTRY_VERSION,
        "seq": seq,
        "time": time,
        "actor": actor,
        "action": record.action,
        "subject": record.subject,
        "reason": record.reason,
        "procedure": record.procedure,
        "data": dict(record.data),
    }


def entry_body(seq: int, time: str, actor: str, record: Record) -> bytes:
    """The canonical bytes of one entry."""
    return canonical_bytes(entry_fields(seq, time, actor, record))


def decode_entry(body: bytes) -> dict[str, Any]:
    """Parse stored entry bytes; IntegrityError if they are not a canonical entry."""
    try:
        entry = parse_canonical(body)
    except ValueError as exc:
        raise IntegrityError(_("entry bytes are not canonical JSON")) from exc
    if (
        not isinstance(entry, dict)
        or entry.get("v") != ENTRY_VERSION
        or not isinstance(entry.get("seq"), int)
    ):
        raise IntegrityError(_("entry is not a scelle ledger entry"))
    return entry
