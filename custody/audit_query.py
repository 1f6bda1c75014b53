"""An auditor's question, answered from the ledger and recorded in it (`audit.query`).

Kept apart from custody/audit.py, the index it reads: the ledger writes that index on
every append, so the index sits below the ledger, while a question that records itself
sits above it. Whoever asks through `ask`, the CLI or another program, leaves the same
entry.
"""

from __future__ import annotations

from datetime import UTC

from custody import text
from custody.audit import AuditFilter, AuditRow, query
from custody.entry import Record
from custody.errors import InputError
from custody.i18n import _
from custody.ledger import Ledger
from custody.timewindow import looks_like_time, parse_time


def period_bound(value: str | None, zone: str, option: str) -> str | None:
    """An audit period bound as the index compares it (UTC, fixed width), from a local
    time (or one with an offset) or a date, taken at midnight in `zone`."""
    if value is None:
        return None
    day = "T" not in value and " " not in value.strip()
    try:
        moment = parse_time(f"{value}T00:00" if day else value, zone)
    except InputError as exc:
        # Not written as a time: quoted as typed, with the option. A time written right
        # that cannot be (25:00) is recognised only by parse_time's English words; in
        # French its own message (naming no option) is said instead.
        if day or not looks_like_time(value) or exc.message.startswith("malformed time"):
            raise InputError(
                _(
                    "{option} {value} is not a date or a local time: "
                    "write it as 2026-03-14 or 2026-03-14T09:30"
                ).format(option=option, value=text.shown(value))
            ) from exc
        raise
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ask(ledger: Ledger, actor: str, wanted: AuditFilter, reason: str = "audit") -> list[AuditRow]:
    """Every entry matching `wanted` (custody/audit.py `query`), then the question itself
    recorded: what was asked, why, and how many entries answered."""
    text.prose(reason, _("the reason"))
    rows = query(ledger.db, wanted)
    asked = {k: v for k, v in vars(wanted).items() if v is not None}
    ledger.append(actor, Record("audit.query", {"filter": asked}, reason, data={"rows": len(rows)}))
    return rows
