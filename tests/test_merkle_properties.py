"""The fast, node-store tree against a naive recursive RFC 9162 tree, and proof properties."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custody import merkle
from custody.errors import ProofError


def naive_root(leaves: Sequence[bytes]) -> bytes:
    """MTH straight from RFC 9162 §2.1.1, recursive."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return merkle.leaf_hash(leaves[0])
    k = merkle.split_point(n)
    return merkle.node_hash(naive_root(leaves[:k]), naive_root(leaves[k:]))


def naive_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = merkle.split_point(n)
    if m < k:
        return [*naive_path(m, leaves[:k]), naive_root(leaves[k:])]
    return [*naive_path(m - k, leaves[k:]), naive_root(leaves[:k])]


def naive_subproof(m: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [naive_root(leaves)]
    k = merkle.split_point(n)
    if m <= k:
        return [*naive_subproof(m, leaves[:k], whole), naive_root(leaves[k:])]
    return [*naive_subproof(m - k, leaves[k:], False), naive_root(leaves[:k])]


class MemoryTree:
    """The same node store the ledger keeps, in a dict."""

    def __init__(self) -> None:
        self.nodes: dict[merkle.NodeKey, bytes] = {}
        self.range = merkle.CompactRange()

    def append(self, entry: bytes) -> None:
        for level, idx, h in self.range.push(merkle.leaf_hash(entry)):
            self.nodes[(level, idx)] = h

    def get(self, keys: Sequence[merkle.NodeKey]) -> dict[merkle.NodeKey, bytes]:
        return {k: self.nodes[k] for k in keys if k in self.nodes}


def build(n: int) -> tuple[list[bytes], MemoryTree]:
    leaves = [f"entry {i}".encode() for i in range(n)]
    tree = MemoryTree()
    for leaf in leaves:
        tree.append(leaf)
    return leaves, tree


def test_fast_equals_naive_exhaustively_to_64() -> None:
    leaves, tree = build(64)
    for n in range(1, 65):
        assert merkle.root_at(n, tree.get) == naive_root(leaves[:n])
        for m in range(n):
            assert merkle.inclusion_proof(m, n, tree.get) == naive_path(m, leaves[:n])
        for m in range(1, n + 1):
            assert merkle.consistency_proof(m, n, tree.get) == naive_subproof(m, leaves[:n], True)


def test_compact_range_root_and_levels_agree() -> None:
    leaves, tree = build(37)
    levels = merkle.tree_levels([merkle.leaf_hash(x) for x in leaves])
    assert tree.range.root() == naive_root(leaves) == merkle.levels_root(levels, 37)
    assert merkle.levels_root(levels, 20) == naive_root(leaves[:20])


def test_node_store_holds_only_perfect_nodes() -> None:
    _, tree = build(1000)
    assert len(tree.nodes) == 2 * 1000 - bin(1000).count("1")
    for level, idx in tree.nodes:
        assert (idx + 1) << level <= 1000


def test_empty_tree_root_is_hash_of_nothing() -> None:
    assert merkle.root_at(0, {}.get) == naive_root([])  # type: ignore[arg-type]


sizes = st.integers(min_value=1, max_value=300)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n=sizes)
def test_every_inclusion_proof_verifies(data: st.DataObject, n: int) -> None:
    leaves, tree = build(n)
    size = data.draw(st.integers(1, n))
    m = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(m, size, tree.get)
    merkle.verify_inclusion(
        m, size, merkle.leaf_hash(leaves[m]), proof, merkle.root_at(size, tree.get)
    )


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n=sizes)
def test_every_consistency_proof_verifies(data: st.DataObject, n: int) -> None:
    _, tree = build(n)
    new = data.draw(st.integers(1, n))
    old = data.draw(st.integers(1, new))
    proof = merkle.consistency_proof(old, new, tree.get)
    merkle.verify_consistency(
        old, new, merkle.root_at(old, tree.get), merkle.root_at(new, tree.get), proof
    )


def _flip(blob: bytes, bit: int) -> bytes:
    out = bytearray(blob)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(2, 200))
def test_any_flipped_bit_in_an_inclusion_proof_is_rejected(data: st.DataObject, n: int) -> None:
    leaves, tree = build(n)
    m = data.draw(st.integers(0, n - 1))
    parts = [merkle.leaf_hash(leaves[m]), *merkle.inclusion_proof(m, n, tree.get)]
    parts.append(merkle.root_at(n, tree.get))
    which = data.draw(st.integers(0, len(parts) - 1))
    parts[which] = _flip(parts[which], data.draw(st.integers(0, 255)))
    with pytest.raises(ProofError):
        merkle.verify_inclusion(m, n, parts[0], parts[1:-1], parts[-1])


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(2, 200))
def test_any_flipped_bit_in_a_consistency_proof_is_rejected(data: st.DataObject, n: int) -> None:
    _, tree = build(n)
    old = data.draw(st.integers(1, n - 1))
    parts = [merkle.root_at(old, tree.get), merkle.root_at(n, tree.get)]
    parts += merkle.consistency_proof(old, n, tree.get)
    which = data.draw(st.integers(0, len(parts) - 1))
    parts[which] = _flip(parts[which], data.draw(st.integers(0, 255)))
    with pytest.raises(ProofError):
        merkle.verify_consistency(old, n, parts[0], parts[1], parts[2:])


@settings(max_examples=100, deadline=None)
@given(data=st.data(), n=st.integers(2, 200))
def test_wrong_index_or_size_is_rejected(data: st.DataObject, n: int) -> None:
    leaves, tree = build(n)
    m = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(m, n, tree.get)
    root, leaf = merkle.root_at(n, tree.get), merkle.leaf_hash(leaves[m])
    other = data.draw(st.integers(0, n - 1).filter(lambda x: x != m))
    with pytest.raises(ProofError):
        merkle.verify_inclusion(other, n, leaf, proof, root)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=120))
def test_earlier_roots_never_change_on_append(entries: list[bytes]) -> None:
    tree = MemoryTree()
    roots: list[bytes] = []
    for entry in entries:
        tree.append(entry)
        roots.append(tree.range.root())
        for size, root in enumerate(roots, start=1):
            assert merkle.root_at(size, tree.get) == root


def _range_proof(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    """Rebuild the root from a range proof made from a full in-memory tree."""
    levels = merkle.tree_levels([merkle.leaf_hash(x) for x in leaves])
    left = [levels[lv][i] for lv, i in merkle.frontier_keys(start)]
    right = [levels[lv][i] for lv, i in merkle.aligned_nodes(end, len(leaves))]
    middle = [merkle.leaf_hash(x) for x in leaves[start:end]]
    return merkle.range_root(start, left, middle, right, end, len(leaves))


def test_range_proofs_rebuild_the_root_for_every_range_up_to_33_leaves() -> None:
    for n in range(1, 34):
        leaves = [bytes([i]) for i in range(n)]
        want = naive_root(leaves)
        for start in range(n):
            for end in range(start + 1, n + 1):
                assert _range_proof(leaves, start, end) == want, (n, start, end)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000), st.data())
def test_range_proofs_on_larger_trees_and_any_flip_is_caught(n: int, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, n - 1))
    end = data.draw(st.integers(start + 1, min(n, start + 64)))
    leaves = [i.to_bytes(4, "big") for i in range(n)]
    assert _range_proof(leaves, start, end) == naive_root(leaves)
    changed = list(leaves)
    changed[data.draw(st.integers(start, end - 1))] += b"x"
    levels = merkle.tree_levels([merkle.leaf_hash(x) for x in leaves])
    left = [levels[lv][i] for lv, i in merkle.frontier_keys(start)]
    right = [levels[lv][i] for lv, i in merkle.aligned_nodes(end, n)]
    forged = [merkle.leaf_hash(x) for x in changed[start:end]]
    assert merkle.range_root(start, left, forged, right, end, n) != naive_root(leaves)
    if left or right:  # a hash of the proof flipped
        hashes = left + right
        k = data.draw(st.integers(0, len(hashes) - 1))
        hashes[k] = bytes([hashes[k][0] ^ 1]) + hashes[k][1:]
        good = [merkle.leaf_hash(x) for x in leaves[start:end]]
        flipped = merkle.range_root(start, hashes[: len(left)], good, hashes[len(left) :], end, n)
        assert flipped != naive_root(leaves)


def test_range_proofs_with_the_wrong_shape_are_refused() -> None:
    leaves = [bytes([i]) for i in range(10)]
    levels = merkle.tree_levels([merkle.leaf_hash(x) for x in leaves])
    left = [levels[lv][i] for lv, i in merkle.frontier_keys(3)]
    right = [levels[lv][i] for lv, i in merkle.aligned_nodes(6, 10)]
    middle = [merkle.leaf_hash(x) for x in leaves[3:6]]
    with pytest.raises(ProofError, match="wrong number of hashes"):
        merkle.range_root(3, left[:-1], middle, right, 6, 10)
    with pytest.raises(ProofError, match="covers 2 leaves, not 3"):
        merkle.range_root(3, left, middle[:2], right, 6, 10)
    with pytest.raises(ProofError, match="is 31 bytes"):
        merkle.range_root(3, [left[0][:31], *left[1:]], middle, right, 6, 10)
