"""The site's side of C2SP tlog-witness: submit a signed checkpoint to each witness of the
policy, with a consistency proof from the size that witness last cosigned, and keep the
cosignatures that verify.

A witness that answers 409 says which size it holds: if it is no larger than the log, the
request is made again from that size (the witness saw a checkpoint this workstation did
not record); if it is larger, this log is shorter than a history the witness already
vouched for: the database was restored from an older copy, or the ledger was rewritten.
A 422 (the proof does not lead from its size to ours) or a 409 at the same size says
the same. Those are evidence, never retried away. An unreachable witness is only that:
the checkpoint is cosigned later. Network access happens only to the URLs the site's
policy file names (HTTP loads then: not for a site without witnesses).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from custody.cosignature import Cosigned, verified_cosignatures
from custody.errors import IntegrityError
from custody.i18n import _
from custody.note import Checkpoint, parse_note
from custody.policy import Policy, Witness

TIMEOUT_SECONDS = 10
_SIZE = re.compile(r"[0-9]{1,20}")
Proof = Callable[[int, int], Sequence[bytes]]  # consistency proof between two sizes


@dataclass
class Collected:
    """What the witnesses said about one checkpoint."""

    lines: dict[str, str] = field(default_factory=dict)  # witness key name -> cosignature line
    cosigned: list[Cosigned] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)  # policy label -> why
    refused: dict[str, str] = field(default_factory=dict)  # label -> evidence against the log


def _post(url: str, body: bytes) -> tuple[int, str, str]:
    import urllib.error
    import urllib.request

    if not url.startswith(("http://", "https://")):  # the policy checks it too
        raise ValueError(f"not an http(s) URL: {url}")
    target = url.rstrip("/") + "/add-checkpoint"
    request = urllib.request.Request(target, data=body, method="POST")  # noqa: S310 - http(s)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
            return answer.status, answer.read(65536).decode("utf-8", "replace"), ""
    except urllib.error.HTTPError as refused:
        kind = refused.headers.get("Content-Type", "")
        return refused.code, refused.read(65536).decode("utf-8", "replace"), kind


def _request(old: int, proof: Sequence[bytes], note: str) -> bytes:
    lines = "".join(base64.b64encode(h).decode() + "\n" for h in proof)
    return f"old {old}\n{lines}\n{note}".encode()


def _cosignature_line(witness: Witness, checkpoint: Checkpoint, body: str) -> str | None:
    """The answer's line that is a valid cosignature by this witness, if any."""
    for line in body.splitlines():
        try:
            signatures = parse_note(f"{checkpoint.body()}\n{line}\n").signatures
        except IntegrityError:
            continue
        found = verified_cosignatures(checkpoint.body(), signatures, {witness.name: witness.key})
        if found:
            return line
    return None


def submit(
    witness: Witness,
    note: str,
    checkpoint: Checkpoint,
    old: int,
    proof: Proof,
    signed_up_to: Callable[[], int] | None = None,
) -> tuple[str | None, str | None, str | None]:
    """(cosignature line, or None; why it is unreachable; evidence against the log).
    `signed_up_to()`: the largest checkpoint this site has recorded, read when needed. A
    witness holding a size beyond the checkpoint's but within that has cosigned a newer
    checkpoint of this log (signed meanwhile); beyond every recorded one, the site lost a
    checkpoint it signed and sent: its database was restored from an older copy."""
    from http.client import HTTPException

    assert witness.url is not None
    old = old if old <= checkpoint.size else 0  # a size from a planted row: ask the witness
    tried: set[int] = set()
    while old not in tried:
        tried.add(old)
        hashes = proof(old, checkpoint.size) if 0 < old < checkpoint.size else []
        try:
            status, body, kind = _post(witness.url, _request(old, hashes, note))
        except (OSError, ValueError, HTTPException) as exc:
            return None, str(getattr(exc, "reason", exc)) or type(exc).__name__, None
        if status == 200:
            line = _cosignature_line(witness, checkpoint, body)
            if line is None:
                return None, _("its answer holds no valid cosignature"), None
            return line, None, None
        if status == 409 and kind.startswith("text/x.tlog.size") and _SIZE.fullmatch(body.strip()):
            held = int(body.strip())
            if held > checkpoint.size and signed_up_to is not None and held <= signed_up_to():
                return (
                    None,
                    _(
                        "it has already cosigned a newer checkpoint of this ledger ({held} entries)"
                    ).format(held=held),
                    None,
                )
            if held > checkpoint.size:
                return (
                    None,
                    None,
                    _(
                        "it has cosigned {held} entries of this ledger, which now holds {size}: "
                        "the ledger was rolled back (an older database restored) or rewritten"
                    ).format(held=held, size=checkpoint.size),
                )
            old = held
            continue
        if status == 409:
            return (
                None,
                None,
                _("it holds another root for {size} entries: the ledger was rewritten").format(
                    size=checkpoint.size
                ),
            )
        if status == 422:
            return (
                None,
                None,
                _(
                    "the ledger does not extend the {old} entries it cosigned: it was rewritten"
                ).format(old=old),
            )
        return None, _("it answered {status}: {body}").format(status=status, body=body[:200]), None
    return None, _("it keeps changing the size it holds"), None


def collect(
    policy: Policy,
    note: str,
    checkpoint: Checkpoint,
    known: dict[str, int],
    proof: Proof,
    signed_up_to: Callable[[], int] | None = None,
) -> Collected:
    """Ask every witness of the policy that has a URL; `known` is the size each (by key
    name) last cosigned, as this site recorded it (0: ask it)."""
    out = Collected()
    for label, witness in policy.witnesses.items():
        if witness.url is None:
            continue
        line, unreachable, refused = submit(
            witness, note, checkpoint, known.get(witness.name, 0), proof, signed_up_to
        )
        if line is not None:
            out.lines[witness.name] = line
        if unreachable is not None:
            out.unreachable[label] = unreachable
        if refused is not None:
            out.refused[label] = refused
    signatures = parse_note(note + "".join(f"{line}\n" for line in out.lines.values())).signatures
    out.cosigned = verified_cosignatures(checkpoint.body(), signatures, policy.keys())
    return out
