"""The transparency-dev Merkle test vectors (tests/vectors/README.md), every one of them."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from custody import merkle
from custody.errors import ProofError

VECTORS = Path(__file__).parent / "vectors" / "merkle"
INCLUSION = sorted((VECTORS / "inclusion").rglob("*.json"))
CONSISTENCY = sorted((VECTORS / "consistency").rglob("*.json"))


def _b(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(doc: dict[str, Any]) -> list[bytes]:
    return [_b(h) for h in doc["proof"] or []]


def _deliberate_rejection(doc: dict[str, Any], *hashes: bytes) -> str | None:
    """Our two documented rejections beyond the RFC: non-32-byte hashes, size-0 proofs."""
    if any(len(h) != merkle.HASH_SIZE for h in hashes):
        return "hash not 32 bytes"
    if doc.get("size1") == 0:
        return "consistency from an empty tree"
    return None


def test_vector_counts(capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print(f"\nMerkle vectors: {len(INCLUSION)} inclusion, {len(CONSISTENCY)} consistency")
    assert len(INCLUSION) + len(CONSISTENCY) == 196


@pytest.mark.parametrize("path", INCLUSION, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_inclusion_vector(path: Path) -> None:
    doc = json.loads(path.read_text())
    leaf, root, proof = _b(doc["leafHash"]), _b(doc["root"]), _proof(doc)
    special = _deliberate_rejection(doc, leaf, root, *proof)
    if doc["wantErr"] or special:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(doc["leafIdx"], doc["treeSize"], leaf, proof, root)
    else:
        merkle.verify_inclusion(doc["leafIdx"], doc["treeSize"], leaf, proof, root)


@pytest.mark.parametrize("path", CONSISTENCY, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_consistency_vector(path: Path) -> None:
    doc = json.loads(path.read_text())
    r1, r2, proof = _b(doc["root1"]), _b(doc["root2"]), _proof(doc)
    special = _deliberate_rejection(doc, r1, r2, *proof)
    if doc["wantErr"] or special:
        with pytest.raises(ProofError):
            merkle.verify_consistency(doc["size1"], doc["size2"], r1, r2, proof)
    else:
        merkle.verify_consistency(doc["size1"], doc["size2"], r1, r2, proof)


def test_deliberate_rejections_are_few_and_named() -> None:
    """Only vectors the upstream library accepts for placeholder roots differ from it."""
    differ = []
    for path in INCLUSION + CONSISTENCY:
        doc = json.loads(path.read_text())
        keys = ("leafHash", "root") if "leafHash" in doc else ("root1", "root2")
        hashes = [_b(doc[k]) for k in keys] + _proof(doc)
        if not doc["wantErr"] and _deliberate_rejection(doc, *hashes):
            differ.append(f"{path.parent.name}/{path.stem}")
    assert differ == ["additional/sizes-are-equal-one-and-proof-is-empty"]
