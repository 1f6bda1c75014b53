"""RFC 9162 (§2.1) Merkle tree hashing, proofs and their verification.

The log keeps the hash of every *perfect* subtree (2**level leaves, aligned at
idx * 2**level), keyed `(level, idx)`, as transparency logs do. Any subtree the RFC's
algorithms need is a right fold of at most log2(n) such nodes, so appends, roots and
proofs cost O(log n) look-ups, never a read of the whole log.

Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 step by step and *raises*
`ProofError`; it never returns False. Two rejections go beyond the RFC's text, on
purpose: hashes that are not 32 bytes, and consistency proofs from an empty tree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from custody.errors import ProofError
from custody.i18n import N_, _

HASH_SIZE = 32
NodeKey = tuple[int, int]  # (level, idx): leaves [idx << level, (idx + 1) << level)
GetNodes = Callable[[Sequence[NodeKey]], dict[NodeKey, bytes]]

_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry)."""
    return hashlib.sha256(_LEAF + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE + left + right).digest()


def empty_root() -> bytes:
    """The root of the empty tree: SHA-256 of nothing."""
    return hashlib.sha256(b"").digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_nodes(lo: int, hi: int) -> list[NodeKey]:
    """The perfect subtrees whose right fold is MTH(D[lo:hi]) for an RFC subtree range."""
    keys: list[NodeKey] = []
    while hi - lo > 0:
        size = hi - lo
        if size & (size - 1) == 0:  # a power of two: one perfect node
            level = size.bit_length() - 1
            keys.append((level, lo >> level))
            break
        k = split_point(size)
        level = k.bit_length() - 1
        keys.append((level, lo >> level))
        lo += k
    return keys


def fold(hashes: Sequence[bytes]) -> bytes:
    """Right fold of perfect subtree hashes, left to right: H(a, H(b, H(c, d)))."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtree ranges of the RFC 9162 inclusion proof for leaf `index`, leaf upwards."""
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split_point(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ranges


def consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The subtree ranges of the RFC 9162 consistency proof from size `old` to `new`."""
    ranges: list[tuple[int, int]] = []
    lo, hi, m, whole = 0, new, old, True
    while m != hi - lo:
        k = split_point(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def hash_ranges(ranges: Sequence[tuple[int, int]], get_nodes: GetNodes) -> list[bytes]:
    """Hash each range from stored perfect nodes, fetched in one call."""
    per_range = [perfect_nodes(lo, hi) for lo, hi in ranges]
    wanted = sorted({key for keys in per_range for key in keys})
    found = get_nodes(wanted) if wanted else {}
    missing = [key for key in wanted if key not in found]
    if missing:
        level, idx = missing[0]
        raise ProofError(
            _("tree node (level {level}, index {index}) is missing from the store").format(
                level=level, index=idx
            )
        )
    return [fold([found[key] for key in keys]) for keys in per_range]


def root_at(size: int, get_nodes: GetNodes) -> bytes:
    """Root of the first `size` leaves, from at most log2(size) stored nodes."""
    if size == 0:
        return empty_root()
    return hash_ranges([(0, size)], get_nodes)[0]


def inclusion_proof(index: int, size: int, get_nodes: GetNodes) -> list[bytes]:
    """RFC 9162 §2.1.3.1 inclusion proof of leaf `index` in the tree of `size` leaves."""
    if not 0 <= index < size:
        raise ProofError(_("no leaf {index} in a tree of {size}").format(index=index, size=size))
    return hash_ranges(inclusion_ranges(index, size), get_nodes)


def consistency_proof(old: int, new: int, get_nodes: GetNodes) -> list[bytes]:
    """RFC 9162 §2.1.4.1 consistency proof from size `old` to size `new`."""
    if not 0 < old <= new:
        raise ProofError(
            _("no consistency proof from size {old} to size {new}").format(old=old, new=new)
        )
    return hash_ranges(consistency_ranges(old, new), get_nodes)


def _check_hash(value: bytes, message: str) -> None:
    """ProofError(`message`, an N_() text naming the hash) unless `value` is 32 bytes."""
    if len(value) != HASH_SIZE:
        raise ProofError(_(message).format(size=len(value), expected=HASH_SIZE))


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2; raises ProofError unless `proof` puts `leaf` at `index`."""
    _check_hash(leaf, N_("leaf hash is {size} bytes, not {expected}"))
    _check_hash(root, N_("root is {size} bytes, not {expected}"))
    for h in proof:
        _check_hash(h, N_("proof hash is {size} bytes, not {expected}"))
    if index >= size or index < 0:
        raise ProofError(
            _("leaf index {index} is outside a tree of {size}").format(index=index, size=size)
        )
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError(_("inclusion proof is too long"))
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(_("inclusion proof is too short"))
    if r != root:
        raise ProofError(_("inclusion proof does not lead to the root"))


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2; raises ProofError unless tree `old` is a prefix of tree `new`."""
    _check_hash(old_root, N_("first root is {size} bytes, not {expected}"))
    _check_hash(new_root, N_("second root is {size} bytes, not {expected}"))
    for h in proof:
        _check_hash(h, N_("proof hash is {size} bytes, not {expected}"))
    if old < 0 or old > new:
        raise ProofError(
            _("first size {old} is larger than second size {new}").format(old=old, new=new)
        )
    if old == 0:
        raise ProofError(_("a consistency proof from an empty tree proves nothing"))
    if old == new:
        if proof:
            raise ProofError(_("proof between equal sizes must be empty"))
        if old_root != new_root:
            raise ProofError(_("roots differ for the same tree size"))
        return
    if not proof:
        raise ProofError(_("consistency proof is empty"))
    path = list(proof)
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(_("consistency proof is too long"))
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(_("consistency proof is too short"))
    if fr != old_root:
        raise ProofError(_("consistency proof does not lead to the first root"))
    if sr != new_root:
        raise ProofError(_("consistency proof does not lead to the second root"))


def frontier_keys(size: int) -> list[NodeKey]:
    """The perfect subtrees covering [0, size): the only nodes an append needs."""
    return perfect_nodes(0, size) if size else []


@dataclass
class CompactRange:
    """The right edge of a tree: the hashes of its frontier, largest subtree first.

    Appending a leaf merges equal-sized subtrees, as a binary counter carries; each
    append yields the new perfect nodes to store (one leaf plus ~1 interior on average).
    """

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)

    def push(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Append one leaf hash; return the new perfect nodes as (level, idx, hash)."""
        index = self.size
        made = [(0, index, leaf)]
        h, level = leaf, 0
        while (index >> level) & 1:
            h = node_hash(self.hashes.pop(), h)
            level += 1
            made.append((level, index >> level, h))
        self.hashes.append(h)
        self.size += 1
        return made

    def push_node(self, level: int, h: bytes) -> None:
        """Append a whole perfect subtree of 2**level leaves; the range's size must be a
        multiple of its width (it is, for the nodes `aligned_nodes` names)."""
        width = 1 << level
        if self.size % width:
            raise ProofError(
                _("a subtree of {width} leaves cannot follow {size} leaves").format(
                    width=width, size=self.size
                )
            )
        index = self.size >> level
        while index & 1:
            if not self.hashes:
                raise ProofError(_("the range proof's left side is too short"))
            h = node_hash(self.hashes.pop(), h)
            index >>= 1
        self.hashes.append(h)
        self.size += width

    def root(self) -> bytes:
        return fold(self.hashes) if self.hashes else empty_root()


def aligned_nodes(lo: int, hi: int) -> list[NodeKey]:
    """The largest aligned perfect subtrees covering [lo, hi), left to right: what a
    compact range of size `lo` absorbs to become one of size `hi`."""
    keys: list[NodeKey] = []
    while lo < hi:
        level = (lo & -lo).bit_length() - 1 if lo else (hi - lo).bit_length() - 1
        while (1 << level) > hi - lo:
            level -= 1
        keys.append((level, lo >> level))
        lo += 1 << level
    return keys


def range_root(
    start: int,
    left: Sequence[bytes],
    leaves: Iterable[bytes],
    right: Sequence[bytes],
    end: int,
    size: int,
) -> bytes:
    """Root of a tree of `size` leaves, from the frontier of [0, start) (`left`), the
    leaf hashes of [start, end) and the `aligned_nodes(end, size)` hashes (`right`):
    a proof that every one of those leaves is in that tree, in that place."""
    if len(left) != len(frontier_keys(start)) or len(right) != len(aligned_nodes(end, size)):
        raise ProofError(_("the range proof has the wrong number of hashes"))
    for h in (*left, *right):
        _check_hash(h, N_("range proof hash is {size} bytes, not {expected}"))
    tree = CompactRange(start, list(left))
    for leaf in leaves:
        tree.push(leaf)
    if tree.size != end:
        raise ProofError(
            _("the range proof covers {count} leaves, not {expected}").format(
                count=tree.size - start, expected=end - start
            )
        )
    for (level, _idx), h in zip(aligned_nodes(end, size), right, strict=True):
        tree.push_node(level, h)
    return tree.root()


def tree_levels(leaves: Iterable[bytes]) -> list[list[bytes]]:
    """Every perfect node of the tree over `leaves`, level by level (for full checks)."""
    sha256 = hashlib.sha256  # inlined node_hash: this loop is most of a full verification
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        pairs = zip(below[::2], below[1::2], strict=False)  # an odd last node waits
        levels.append([sha256(_NODE + a + b).digest() for a, b in pairs])
    return levels


def levels_root(levels: Sequence[Sequence[bytes]], size: int) -> bytes:
    """Root of the first `size` leaves from in-memory levels."""
    if size == 0:
        return empty_root()
    return fold([levels[lv][i] for lv, i in perfect_nodes(0, size)])
