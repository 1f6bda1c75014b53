"""An auditor's question, answered from the ledger and recorded in it (`audit.query`).

Kept apart from custody/audit.py, the index it reads: the ledger writes that index on
every append, so the index sits below the ledger, while a question that records itself
sits above it. Whoever asks through `ask`, the CLI or another program, leaves the same
entry.
"""

from __future__ import annotations

from datetime import UTC, timedelta

from custody import text
from custody.audit import AuditFilter, AuditRow, query
from custody.entry import Record
from custody.errors import InputError, MalformedTimeError
from custody.i18n import _
from custody.ledger import Ledger
from custody.timewindow import day_start, parse_day, parse_time, stored_utc


def period_bound(value: str | None, zone: str, option: str) -> str | None:
    """An audit period bound as the index compares it (UTC, fixed width), from a local
    time (or one with an offset) or a date: a date given to --from starts at its midnight
    in `zone`, one given to --to ends at the next (the day included); a time given to
    --to is excluded."""
    if value is None:
        return None
    day = parse_day(value)
    if day is not None:  # --to 29/11/2026 takes in that day, as doc register's --to does
        return stored_utc(day_start(day + timedelta(days=1) if option == "--to" else day, zone))
    try:
        moment = parse_time(value, zone)
    except MalformedTimeError as exc:
        raise InputError(
            _(
                "{option} {value} is not a date or a local time: write it as 29/11/2026, "
                "29/11/2026 14:00 or 2026-11-29T14:00"
            ).format(option=option, value=text.shown(value))
        ) from exc
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ask(ledger: Ledger, actor: str, wanted: AuditFilter, reason: str = "audit") -> list[AuditRow]:
    """Every entry matching `wanted` (custody/audit.py `query`), then the question itself
    recorded: what was asked, why, and how many entries answered."""
    text.prose(reason, _("the reason"))
    rows = query(ledger.db, wanted)
    asked = {k: v for k, v in vars(wanted).items() if v is not None}
    ledger.append(actor, Record("audit.query", {"filter": asked}, reason, data={"rows": len(rows)}))
    return rows
