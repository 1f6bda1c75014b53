"""No uncovered tail: what a command appended ends covered by a signed checkpoint.

Entries that no signed checkpoint covers can be rewritten by whoever holds the database
file, and nothing shows it. So every command that appends ends by signing a checkpoint
over what it added (and, with a witness policy, having it cosigned): with the site key
if the command has unlocked it (an extraction, a hand-over, a purge with its
passphrase), else through the key agent (custody/key_agent.py). When neither is at hand
the command says plainly which entries are not covered and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from custody import checkpoints
from custody.checkpoint_stamps import stamp_checkpoint
from custody.cosigning import Witnessed, cosign, load_policy
from custody.errors import ScelleError
from custody.key_agent import ask
from custody.ledger import current_size
from custody.policy import Policy
from custody.site import Site
from custody.timestamps import Stamped


@dataclass(frozen=True)
class Coverage:
    """The log after a command: entries [first, size) are its own."""

    first: int
    size: int
    signed: int  # the largest size a signed checkpoint covers
    by: str | None = None  # "key" (this command's), "agent", or None: covered already
    why: str | None = None  # why the tail is not covered
    unwitnessed: str | None = None  # why it is signed but could not be cosigned
    witnessed: Witnessed | None = None
    policy: Policy | None = None
    stamped: Stamped | None = None  # the TSA's token on it (None: no TSA configured)

    @property
    def covered(self) -> bool:
        return self.signed >= self.size


def size_now(site: Site) -> int:
    with site.db.read() as cur:
        return current_size(cur)


def _signed(site: Site) -> tuple[int, int]:
    with site.db.read() as cur:
        row = cur.execute("SELECT MAX(tree_size) FROM ledger_checkpoint").fetchone()
        return current_size(cur), int(row[0] or 0)


def cover(site: Site, since: int) -> Coverage | None:
    """Cover what was appended since the log had `since` entries; None if nothing was.
    Never raises for a ScelleError: the command's own outcome stands, the reason is told."""
    try:
        size, signed = _signed(site)
    except ScelleError:
        return None
    if size <= since:
        return None
    if signed >= size:  # the command signed its own checkpoint last (`ledger checkpoint`)
        return Coverage(since, size, signed)
    try:
        if site.unlocked:
            checkpoint, note = checkpoints.sign(
                site.db, site.settings.checkpoint_file, site.unlocked[0]
            )
            by, signed = "key", checkpoint.size
        else:
            answer = ask(site.settings.key_agent_socket, "checkpoint")
            note, by, signed = str(answer["note"]), "agent", int(answer["size"])
    except ScelleError as exc:
        return Coverage(since, size, signed, why=exc.message)
    stamped = stamp_checkpoint(site.db, site.settings, note)
    try:
        policy = load_policy(site.settings)
        witnessed = cosign(site.db, policy, note) if policy is not None else None
    except ScelleError as exc:
        return Coverage(since, size, signed, by, unwitnessed=exc.message, stamped=stamped)
    return Coverage(since, size, signed, by, witnessed=witnessed, policy=policy, stamped=stamped)
