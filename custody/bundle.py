"""`scelle ledger export`: a slice of the ledger an auditor can verify offline.

A bundle is a directory, written whole or not at all:

    entries.jsonl      the exact bytes of entries N..M, one per line (canonical JSON
                       has no raw newline), in seq order
    proof.json         a range proof: the frontier hashes of [0, N) and the aligned
                       subtree hashes of (M, size), from which the entries' leaves
                       rebuild the root of the signed checkpoint
    checkpoint.txt     that checkpoint, a C2SP signed note; after the site's signature
                       line, the cosignatures the site holds for it from the witnesses of
                       its policy (C2SP tlog-cosignature), if any
    checkpoint.body    its body, and checkpoint.sig its raw Ed25519 signature, for
                       `openssl pkeyutl -verify -rawin`
    key.pub.pem        the site's public key (compare its fingerprint with a trusted one)
    README.txt         how to check all of it by hand
    VERIFY.html        the verifier page: open it in a browser, pick this folder
    SHA256SUMS         of every file above

`custody/bundle_verify.py` checks it without a database.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from custody import merkle, text
from custody.bundle_verify import FORMAT
from custody.canonical import canonical_bytes
from custody.checkpoints import Identity, db_checkpoints, open_checkpoint, read_identity
from custody.checks import PAGE
from custody.cosigning import stored
from custody.db import Database
from custody.entry import Record
from custody.errors import InputError, InvalidStateError
from custody.files import fsync_dir, fsync_file
from custody.i18n import _
from custody.keys import der_sha256, public_pem, ssh_fingerprint
from custody.ledger import Ledger, current_size, fetch_nodes
from custody.note import parse_note
from custody.policy import Policy

README = """\
scelle ledger bundle: entries {first} to {last} of the custody ledger of {origin},
proved against its signed checkpoint of {size} entries.

By hand (any machine with openssl and Python or a similar tool):

1. The key: compare the fingerprint of key.pub.pem with one you trust (printed on
   the CSV's signed papers and export cover sheets):
   openssl pkey -pubin -in key.pub.pem -outform DER | sha256sum
   This bundle's key: {der_sha256} (SSH form {ssh})
2. The checkpoint signature:
   openssl pkeyutl -verify -pubin -inkey key.pub.pem -rawin \\
       -in checkpoint.body -sigfile checkpoint.sig
   checkpoint.body reads: origin, tree size, base64 root hash (RFC 9162 tree).
3. The files: sha256sum -c SHA256SUMS
4. The entries are in that tree: each line of entries.jsonl is one entry's exact
   bytes; its leaf hash is SHA-256(0x00 || line). Start from the hashes in
   proof.json "left" (the perfect subtrees covering entries 0..{before}, largest
   first); append each leaf as a binary counter carries: while the new subtree has a
   left neighbour of its own size, replace both with SHA-256(0x01 || left || right).
   Then append each "right" hash the same way (each is a whole aligned subtree, of the
   size its "level" says). Fold what remains from the right:
   acc = last; acc = SHA-256(0x01 || previous || acc) ... The result must be the
   checkpoint's root.
{witnesses}
Or: scelle ledger verify --bundle . --key {ssh}
"""

# README.txt's step 5, when the site holds cosignatures of the bundle's checkpoint.
WITNESSES_README = """\
5. The witnesses: after the site's signature line, checkpoint.txt carries the
   cosignatures (C2SP tlog-cosignature, cosignature/v1) of the witnesses that vouch
   for this checkpoint: {names}. Check them against the witness policy you trust (a
   C2SP tlog-policy file): scelle ledger verify --bundle . --policy witnesses.txt,
   or VERIFY.html given that file.
"""


@dataclass(frozen=True)
class Bundle:
    path: Path
    first: int
    last: int
    tree_size: int


def default_path(first: int, last: int | None) -> Path:
    """Where a bundle goes when nobody says: `ledger-N-M` (or `-latest`) here."""
    return Path(f"ledger-{first}-{'latest' if last is None else last}")


def export_bundle(
    ledger: Ledger,
    actor: str,
    out: Path | None,
    first: int,
    last: int | None,
    reason: str = "audit",
    page: bytes | None = None,
    policy: Policy | None = None,
) -> Bundle:
    """Write entries first..last (inclusive) with their proof against the latest signed
    checkpoint that covers them (`last` defaults to that checkpoint's last entry), then
    record the export (`ledger.export`): whoever calls this leaves the same trail as
    `scelle ledger export`. `page`: the verifier page (VERIFY.html), made upstairs.
    `policy`: the site's witness policy; the checkpoint then carries the cosignatures
    of its witnesses that the site holds for it."""
    text.prose(reason, _("the reason"))
    out = (out or default_path(first, last)).absolute()
    made = _write_bundle(ledger.db, out, first, last, page, policy)
    ledger.append(
        actor,
        Record(
            "ledger.export",
            {"from": made.first, "to": made.last},
            reason,
            data={"tree_size": made.tree_size, "path": str(made.path)},
        ),
    )
    return made


def _write_bundle(
    db: Database,
    out: Path,
    first: int,
    last: int | None,
    page: bytes | None,
    policy: Policy | None = None,
) -> Bundle:
    """The bundle's files, written whole or not at all."""
    if out.exists():
        raise InvalidStateError(
            _("{path} already exists").format(path=out), hint=_("choose a new directory")
        )
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)  # left by an attempt that was killed
    try:
        tmp.mkdir(parents=True)
        proof, note, identity = _write_entries(db, tmp / "entries.jsonl", first, last)
        parsed = parse_note(note)  # the site's own note: its one signature is checkpoint.sig
        cosigned, names = _cosigned(db, policy, note)
        files = {
            "proof.json": canonical_bytes(proof),
            "checkpoint.txt": cosigned.encode(),
            "checkpoint.body": parsed.body.encode(),
            "checkpoint.sig": parsed.signatures[0][2],
            "key.pub.pem": public_pem(identity.public_key).encode(),
            "README.txt": README.format(
                first=proof["first"],
                last=proof["last"],
                before=proof["first"] - 1,
                origin=proof["origin"],
                size=proof["tree_size"],
                der_sha256=der_sha256(identity.public_key),
                ssh=ssh_fingerprint(identity.public_key),
                witnesses=WITNESSES_README.format(names=", ".join(names)) if names else "",
            ).encode(),
        }
        if page is not None:
            files[PAGE] = page
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        sums = "".join(
            f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n"
            for p in sorted(tmp.iterdir())
        )
        (tmp / "SHA256SUMS").write_text(sums)
        for p in tmp.iterdir():
            fsync_file(p)
        fsync_dir(tmp)
        tmp.rename(out)
        fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Bundle(out, proof["first"], proof["last"], proof["tree_size"])


def _cosigned(db: Database, policy: Policy | None, note: str) -> tuple[str, list[str]]:
    """The checkpoint's note with the cosignature lines the site holds for exactly that
    checkpoint (its size and root) from the policy's witnesses, those that verify, after
    the site's signature line; and the witnesses' names. No policy, or no cosignature:
    the note as signed, and no name."""
    if policy is None:
        return note, []
    witnessed = stored(db, policy, note)
    names = [c.name for c in witnessed.collected.cosigned]
    return (witnessed.note, names) if names else (note, [])


def _write_entries(
    db: Database, path: Path, first: int, last: int | None
) -> tuple[dict[str, Any], str, Identity]:
    """Stream the entries to `path` and return the range proof, the checkpoint's note
    and the site identity, all read in one snapshot."""
    with db.read() as cur:
        identity = read_identity(cur)
        signed = [(open_checkpoint(s, identity), s.note) for s in db_checkpoints(cur)]
        if not signed:
            raise InvalidStateError(
                _("no signed checkpoint yet"), hint=_("run 'scelle ledger checkpoint'")
            )
        checkpoint, note = max(signed, key=lambda pair: pair[0].size)
        end = checkpoint.size if last is None else last + 1
        if not 0 <= first < end:
            raise InputError(
                _("--from {first} --to {last}: not a range of entries").format(
                    first=first, last=end - 1
                )
            )
        if end > checkpoint.size:
            raise InvalidStateError(
                _(
                    "entries up to {last} are not yet covered by a signed checkpoint "
                    "(the latest covers {covered} of {size})"
                ).format(last=end - 1, covered=checkpoint.size, size=current_size(cur)),
                hint=_("run 'scelle ledger checkpoint' first"),
            )
        left_keys = merkle.frontier_keys(first)
        right_keys = merkle.aligned_nodes(end, checkpoint.size)
        nodes = fetch_nodes(cur, left_keys + right_keys)
        cur.execute(
            "SELECT body FROM ledger_entry WHERE seq >= ? AND seq < ? ORDER BY seq", [first, end]
        )
        with path.open("wb") as handle:
            while rows := cur.fetchmany(5000):
                handle.write(b"".join(bytes(body) + b"\n" for (body,) in rows))
    proof = {
        "format": FORMAT,
        "origin": checkpoint.origin,
        "key_name": identity.key_name,
        "tree_size": checkpoint.size,
        "root": base64.b64encode(checkpoint.root).decode(),
        "first": first,
        "last": end - 1,
        "left": [base64.b64encode(nodes[k]).decode() for k in left_keys],
        "right": [
            {"level": lv, "index": i, "hash": base64.b64encode(nodes[(lv, i)]).decode()}
            for lv, i in right_keys
        ],
    }
    return proof, note, identity
