"""Inclusion and consistency proofs as the JSON scripts and auditors read.

Inclusion: `{"index", "tree_size", "leaf_hash", "hashes", "root"}`; consistency:
`{"from", "to", "from_root", "to_root", "hashes"}`; hashes in standard base64.
`verify()` raises ProofError; parsing raises InputError on a malformed document.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from custody import merkle
from custody.errors import InputError
from custody.i18n import _


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise InputError(_("proof: {name} must be a base64 string").format(name=name))
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise InputError(_("proof: {name} is not base64").format(name=name)) from exc


def _int(doc: dict[str, Any], name: str) -> int:
    value = doc.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InputError(_("proof: {name} must be a non-negative integer").format(name=name))
    return value


def _hashes(doc: dict[str, Any]) -> tuple[bytes, ...]:
    value = doc.get("hashes")
    if not isinstance(value, list):
        raise InputError(_("proof: hashes must be a list"))
    return tuple(_unb64(h, "hashes[]") for h in value)


@dataclass(frozen=True)
class InclusionProof:
    index: int
    tree_size: int
    leaf_hash: bytes
    hashes: tuple[bytes, ...]
    root: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "tree_size": self.tree_size,
            "leaf_hash": b64(self.leaf_hash),
            "hashes": [b64(h) for h in self.hashes],
            "root": b64(self.root),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> InclusionProof:
        return cls(
            index=_int(doc, "index"),
            tree_size=_int(doc, "tree_size"),
            leaf_hash=_unb64(doc.get("leaf_hash"), "leaf_hash"),
            hashes=_hashes(doc),
            root=_unb64(doc.get("root"), "root"),
        )

    def verify(self) -> None:
        merkle.verify_inclusion(self.index, self.tree_size, self.leaf_hash, self.hashes, self.root)

    def tlog_proof(self, note: str) -> str:
        """This proof in C2SP tlog-proof@v1 form, with `note` (the signed checkpoint it
        leads to, cosignatures included) verbatim: what transparency-log tools read."""
        lines = [TLOG_PROOF_HEADER, f"index {self.index}", *(b64(h) for h in self.hashes)]
        return "\n".join(lines) + "\n\n" + note


TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"


@dataclass(frozen=True)
class ConsistencyProof:
    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    hashes: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.old_size,
            "to": self.new_size,
            "from_root": b64(self.old_root),
            "to_root": b64(self.new_root),
            "hashes": [b64(h) for h in self.hashes],
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ConsistencyProof:
        return cls(
            old_size=_int(doc, "from"),
            new_size=_int(doc, "to"),
            old_root=_unb64(doc.get("from_root"), "from_root"),
            new_root=_unb64(doc.get("to_root"), "to_root"),
            hashes=_hashes(doc),
        )

    def verify(self) -> None:
        merkle.verify_consistency(
            self.old_size, self.new_size, self.old_root, self.new_root, self.hashes
        )
