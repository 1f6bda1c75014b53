"""No uncovered tail: what a command appended ends covered by a signed checkpoint.

Entries that no signed checkpoint covers can be rewritten by whoever holds the database
file, and nothing shows it. So every command that appends ends by signing a checkpoint
over what it added (and, with a witness policy, having it cosigned): with the site key
if the command has unlocked it (an extraction, a hand-over, a purge with its
passphrase), else through the key agent (custody/key_agent.py). When neither is at hand
the command says plainly which entries are not covered and why.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from custody.errors import ScelleError
from custody.ledger import current_size

if TYPE_CHECKING:  # signing, witnesses and timestamps load only once a command appended
    from custody.cosigning import Witnessed
    from custody.note import Checkpoint
    from custody.policy import Policy
    from custody.site import Site
    from custody.timestamps import Stamped


@dataclass(frozen=True)
class Coverage:
    """The log after a command that appended: `size` entries, `signed` of them covered."""

    size: int
    signed: int  # the largest size a signed checkpoint covers
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


def _signed(site: Site) -> int:
    """The largest size a checkpoint *signed by the site key* covers
    (a row planted with a large size and no valid signature does not count: a few of the
    largest are checked, and when in doubt the tail is signed again)."""
    from custody.checkpoints import StoredCheckpoint, open_checkpoint, read_identity
    from custody.errors import IntegrityError

    with site.db.read() as cur:
        identity = read_identity(cur)
        cur.execute("SELECT note FROM ledger_checkpoint ORDER BY tree_size DESC LIMIT 5")
        for (note,) in cur.fetchall():
            try:
                return open_checkpoint(StoredCheckpoint("", str(note)), identity).size
            except IntegrityError:
                continue
    return 0


def agent_checkpoint(site: Site) -> tuple[Checkpoint, str]:
    """Have the key agent sign this log's head, and check what it returns: the site's
    signature, this log's origin, and this database's root at that size (an agent serving
    another database, or anything else answering on the socket, covers nothing)."""
    from custody.checkpoints import StoredCheckpoint, open_checkpoint, read_identity
    from custody.i18n import _
    from custody.key_agent import AgentUnavailable, answered, ask
    from custody.ledger import holds

    note = answered(ask(site.settings.key_agent_socket, "checkpoint"), "note", str)
    with site.db.read() as cur:
        identity = read_identity(cur)
        checkpoint = open_checkpoint(
            StoredCheckpoint(_("the key agent's checkpoint"), note), identity
        )
        if not holds(cur, checkpoint.size, checkpoint.root):
            raise AgentUnavailable(
                _("the key agent signed another log than this database's: not counted")
            )
    return checkpoint, note


def tell_agent(site: Site) -> None:
    """After signing with the key, let a running agent see that checkpoint (it signs the
    same head again, which changes nothing): it then refuses a restore to before it."""
    if site.settings.key_agent_socket.exists():
        with suppress(ScelleError):
            agent_checkpoint(site)


def cover(site: Site, since: int) -> Coverage | None:
    """Cover what was appended since the log had `since` entries; None if nothing was.
    Never raises for a ScelleError: the command's own outcome stands, the reason is told."""
    try:
        size = size_now(site)
        if size <= since:  # appended nothing: nothing to sign, nothing loaded
            return None
        signed = _signed(site)
    except ScelleError:
        return None
    if signed >= size:  # the command signed its own checkpoint last (`ledger checkpoint`)
        return Coverage(size, signed)
    from custody import checkpoints

    try:
        if site.unlocked:
            checkpoint, note = checkpoints.sign(
                site.db, site.settings.checkpoint_file, site.unlocked[0]
            )
            tell_agent(site)
        else:
            checkpoint, note = agent_checkpoint(site)
    except ScelleError as exc:
        return Coverage(size, signed, why=exc.message)
    signed = checkpoint.size
    from custody.checkpoint_stamps import stamp_checkpoint
    from custody.cosigning import cosign, load_policy

    try:
        stamped = stamp_checkpoint(site.db, site.settings, note)
    except ScelleError as exc:
        return Coverage(size, signed, unwitnessed=exc.message)
    try:
        policy = load_policy(site.settings)
        witnessed = cosign(site.db, policy, note) if policy is not None else None
    except ScelleError as exc:
        return Coverage(size, signed, unwitnessed=exc.message, stamped=stamped)
    return Coverage(size, signed, witnessed=witnessed, policy=policy, stamped=stamped)
