"""RFC 3161 timestamps on this site's checkpoints: when the log had that many entries,
said by the TSA, not by the CSV's clock.

The token stamps the checkpoint's body (`<origin>\\n<size>\\n<root>\\n`, the bytes a ledger
bundle ships as `checkpoint.body`), so `openssl ts -verify -data checkpoint.body` checks
it by hand. Tokens are kept in `ledger_timestamp` (append-only) and checked against the
TSA's CA whenever they are read: a row planted around scelle proves nothing.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from custody.config import Settings
from custody.db import Database
from custody.entry import utc_now
from custody.errors import IntegrityError
from custody.ledger import holds
from custody.note import parse_checkpoint, parse_note
from custody.timestamps import Stamped, load_ca, stamp_for, verify


def stamp_checkpoint(db: Database, settings: Settings, note: str) -> Stamped | None:
    """Have the site's TSA stamp a signed checkpoint and keep the token; None with no TSA
    configured. A TSA out of reach is told (`failed`), and the work goes on."""
    body = parse_note(note).body
    stamped = stamp_for(settings.timestamp_url, settings.timestamp_ca, body.encode())
    if stamped is not None and stamped.stamp is not None:
        checkpoint = parse_checkpoint(body)
        with db.write() as cur:
            cur.execute(
                "INSERT INTO ledger_timestamp (tree_size, root, tsa, token, received_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [checkpoint.size, checkpoint.root, stamped.tsa, stamped.stamp.token, utc_now()],
            )
    return stamped


@dataclass(frozen=True)
class StampedHead:
    """The largest checkpoint with a token that verifies: the log had `size` entries,
    with this root, by `time`."""

    size: int
    time: datetime
    tsa: str
    unverified: int  # later rows whose token or root does not hold (planted?)


def latest_stamped(db: Database, settings: Settings, origin: str) -> StampedHead | None:
    """The latest timestamped checkpoint whose token verifies against the configured CA
    and whose root is the log's at that size; None when there is none, or no CA to check
    them with."""
    if settings.timestamp_ca is None:
        return None
    ca = load_ca(settings.timestamp_ca.read_bytes())
    with db.read() as cur:
        cur.execute(
            "SELECT tree_size, root, tsa, token FROM ledger_timestamp ORDER BY tree_size DESC"
        )
        rows = cur.fetchall()
        bad = 0
        for size, root, tsa, token in rows:
            size, root = int(size), bytes(root)
            body = f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n".encode()
            try:
                stamp = verify(bytes(token), body, ca)
            except IntegrityError:
                bad += 1
                continue
            if not holds(cur, size, root):
                bad += 1
                continue
            return StampedHead(size, stamp.time, str(tsa), bad)
    return None
