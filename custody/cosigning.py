"""This site's checkpoints, cosigned by the witnesses its policy names (`witness_policy`).

After a checkpoint is signed, each witness gets it with a consistency proof from the size
it last cosigned (custody/witness_client.py); the cosignature lines that verify are kept
(`ledger_cosignature`, append-only) and carried with the checkpoint. `ledger verify`
submits the latest checkpoint again: a witness that has vouched for a longer or another
history is evidence of a rollback or a rewrite, and fails the verification.

No policy configured: nothing is asked, nothing is sent anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from custody import merkle
from custody.config import Settings
from custody.cosignature import verified_cosignatures
from custody.db import Database
from custody.entry import utc_now
from custody.errors import IntegrityError
from custody.i18n import _
from custody.ledger import fetch_nodes
from custody.note import Checkpoint, parse_checkpoint, parse_note
from custody.policy import Policy, read_policy
from custody.witness_client import Collected, collect


def load_policy(settings: Settings) -> Policy | None:
    """The site's witness policy, or None if it has none."""
    path = settings.witness_policy
    if path is None:
        return None
    return read_policy(path)


@dataclass(frozen=True)
class Witnessed:
    """A checkpoint and what its witnesses said."""

    checkpoint: Checkpoint
    note: str  # the checkpoint with every verified cosignature line appended
    collected: Collected
    quorum: bool


def cosign(db: Database, policy: Policy, note: str, *, keep: bool = True) -> Witnessed:
    """Submit a signed checkpoint to every witness; keep the cosignatures that verify
    (`keep=False`: `ledger verify`, which only asks whether they still vouch)."""
    checkpoint = parse_checkpoint(parse_note(note).body)
    with db.read() as cur:
        cur.execute("SELECT witness, MAX(tree_size) FROM ledger_cosignature GROUP BY witness")
        known = {str(w): int(s) for w, s in cur.fetchall()}

    def proof(old: int, new: int) -> list[bytes]:
        with db.read() as cur:
            return merkle.consistency_proof(old, new, lambda keys: fetch_nodes(cur, keys))

    def signed_up_to() -> int:
        with db.read() as cur:
            row = cur.execute("SELECT MAX(tree_size) FROM ledger_checkpoint").fetchone()
        return int(row[0] or 0)

    collected = collect(policy, note, checkpoint, known, proof, signed_up_to)
    if collected.lines and keep:
        with db.write() as cur:
            for witness, line in collected.lines.items():
                cur.execute(
                    "INSERT INTO ledger_cosignature (tree_size, root, witness, line, "
                    "received_at) VALUES (?, ?, ?, ?, ?)",
                    [checkpoint.size, checkpoint.root, witness, line, utc_now()],
                )
    return _witnessed(db, policy, checkpoint, note.rstrip("\n"), collected)


def stored(db: Database, policy: Policy, note: str) -> Witnessed:
    """A checkpoint with the cosignatures this site holds for it (nothing is sent)."""
    checkpoint = parse_checkpoint(parse_note(note).body)
    return _witnessed(db, policy, checkpoint, note.rstrip("\n"), Collected())


def _witnessed(
    db: Database, policy: Policy, checkpoint: Checkpoint, note: str, collected: Collected
) -> Witnessed:
    """The checkpoint with every cosignature that verifies: those kept, those just had."""
    with db.read() as cur:
        cur.execute(
            "SELECT line FROM ledger_cosignature WHERE tree_size = ? AND root = ? ORDER BY id",
            [checkpoint.size, checkpoint.root],
        )
        lines = [str(row[0]) for row in cur.fetchall()] + list(collected.lines.values())
    body = checkpoint.body()
    good: dict[str, str] = {}  # a row planted around scelle does not verify: left out
    for line in lines:
        try:
            signatures = parse_note(f"{body}\n{line}\n").signatures
        except IntegrityError:  # a malformed row: planted, not a witness's answer
            continue
        for found in verified_cosignatures(body, signatures, policy.keys()):
            good.setdefault(found.name, line)
    collected.cosigned = []
    if good:
        signatures = parse_note(f"{body}\n" + "".join(f"{x}\n" for x in good.values())).signatures
        collected.cosigned = verified_cosignatures(body, signatures, policy.keys())
    full = note + "\n" + "".join(f"{line}\n" for line in good.values())
    quorum = policy.satisfied({c.name for c in collected.cosigned})
    return Witnessed(checkpoint, full, collected, quorum)


def evidence(witnessed: Witnessed) -> IntegrityError | None:
    """What a witness's refusal proves against the ledger, as the error to raise."""
    if not witnessed.collected.refused:
        return None
    label, why = next(iter(witnessed.collected.refused.items()))
    return IntegrityError(
        _("witness {witness} refuses this ledger's checkpoint: {why}").format(
            witness=label, why=why
        ),
        hint=_("compare the database and the checkpoint files with the copies kept apart"),
    )
