"""RFC 6962 (section 2.1) Merkle tree hashing, inclusion and consistency proofs.

Leaf hash = SHA-256(0x00 || data), node hash = SHA-256(0x01 || left || right), and the root of
the empty tree is SHA-256 of nothing. The prefixes keep a leaf from passing for a node (second
pre-image attacks). Proofs are built from the full list of leaf hashes with O(n) hashing; they
are checked, as RFC 9162 sections 2.1.3.2 and 2.1.4.2 describe, without the leaves.

Sizes and indices are counts of leaves; a leaf's index is its 0-based position in log order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from hashlib import sha256

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = sha256(b"").digest()


class ProofError(ValueError):
    """A proof, or the arguments given with it, does not verify."""


class TreeSizeError(ProofError):
    """A size or index that no tree (or no proof between these trees) can have."""


class HashLengthError(ProofError):
    """A hash that is not 32 bytes long: truncated or not a SHA-256 hash at all."""


class ProofLengthError(ProofError):
    """A proof with more or fewer hashes than its sizes call for."""


class RootMismatch(ProofError):
    """A proof that leads to another root than the one it is checked against."""


def hash_leaf(data: bytes) -> bytes:
    """The RFC 6962 hash of one leaf's data."""
    return sha256(LEAF_PREFIX + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """The RFC 6962 hash of an inner node from its two children."""
    return sha256(NODE_PREFIX + left + right).digest()


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The tree head (MTH) of these leaf hashes, in order."""
    return _subtree_root(leaf_hashes, 0, len(leaf_hashes))


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of the leaf at `index` in the tree of all of `leaf_hashes` (RFC 6962
    2.1.1), nearest the leaf first."""
    return inclusion_path(_in_memory(leaf_hashes), len(leaf_hashes), index)


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """The proof that the tree of the first `old_size` leaf hashes is a prefix of the tree of
    all of them (RFC 6962 2.1.2), in the RFC's order. Empty when there is nothing to prove."""
    return consistency_path(_in_memory(leaf_hashes), len(leaf_hashes), old_size)


Subtree = Callable[[int, int], bytes]
"""subtree(lo, hi): the root of the tree over leaves lo..hi-1. The proofs only ask for ranges
that the RFC's splits make: a range whose length is a power of two starts at a multiple of
it, so a store of such perfect subtrees can answer most of them without the leaves."""


def inclusion_path(subtree: Subtree, size: int, index: int) -> list[bytes]:
    """`inclusion_proof` in a tree of `size` leaves whose subtree roots `subtree` gives."""
    if not 0 <= index < size:
        raise TreeSizeError(f"leaf index {index} is not in a tree of size {size}")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree(lo, lo + k))
            lo += k
    path.reverse()
    return path


def consistency_path(subtree: Subtree, size: int, old_size: int) -> list[bytes]:
    """`consistency_proof` in a tree of `size` leaves whose subtree roots `subtree` gives."""
    if not 0 <= old_size <= size:
        raise TreeSizeError(f"no consistency proof from size {old_size} to size {size}")
    if old_size in (0, size):
        return []
    proof: list[bytes] = []
    lo, hi, m, complete = 0, size, old_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            proof.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            proof.append(subtree(lo, lo + k))
            lo += k
            m -= k
            complete = False
    if not complete:
        proof.append(subtree(lo, hi))
    proof.reverse()
    return proof


class Frontier:
    """The right edge of a growing tree (a "compact range"): the roots of its perfect
    subtrees, largest first, at most log2(size) + 1 of them. Append leaves in log order;
    `root()` is the tree head at the current size, in O(log n), so one pass over a log
    yields the root at every size on the way. `append` returns the perfect subtrees it
    completed, as (height, index, hash), for a store of them to keep."""

    def __init__(self) -> None:
        self.size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def of(cls, size: int, hashes: Sequence[bytes]) -> Frontier:
        """The frontier of a tree of `size` leaves, from the roots of its perfect subtrees
        (those `perfect_subtrees(size)` names, in that order)."""
        if len(hashes) != size.bit_count():
            raise TreeSizeError(f"a tree of size {size} has {size.bit_count()} perfect subtrees")
        for i, h in enumerate(hashes):
            _check_hash(f"subtree root {i}", h)
        frontier = cls()
        frontier.size = size
        frontier._hashes = list(hashes)
        return frontier

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        completed: list[tuple[int, int, bytes]] = []
        node, height, n = leaf_hash, 0, self.size
        while n & 1:
            node = hash_children(self._hashes.pop(), node)
            n >>= 1
            height += 1
            completed.append((height, n, node))
        self._hashes.append(node)
        self.size += 1
        return completed

    def root(self) -> bytes:
        if not self._hashes:
            return EMPTY_ROOT
        node = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            node = hash_children(left, node)
        return node


def perfect_subtrees(size: int) -> list[tuple[int, int]]:
    """The perfect subtrees whose roots make up the frontier of a tree of `size` leaves, as
    (height, index): the subtree over leaves index * 2**height .. (index + 1) * 2**height - 1.
    Largest first."""
    found: list[tuple[int, int]] = []
    start = 0
    for height in range(size.bit_length() - 1, -1, -1):
        if size >> height & 1:
            found.append((height, start >> height))
            start += 1 << height
    return found


def _in_memory(leaf_hashes: Sequence[bytes]) -> Subtree:
    return lambda lo, hi: _subtree_root(leaf_hashes, lo, hi)


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root that this audit path leads to from this leaf (RFC 9162 2.1.3.2)."""
    if not 0 <= index < size:
        raise TreeSizeError(f"leaf index {index} is not in a tree of size {size}")
    _check_hash("leaf hash", leaf_hash)
    _check_length("inclusion proof", proof, _inclusion_proof_length(index, size), index, size)
    fn, sn, r = index, size - 1, leaf_hash
    for i, p in enumerate(proof):
        _check_hash(f"inclusion proof hash {i}", p)
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = hash_children(r, p)
        fn >>= 1
        sn >>= 1
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes
) -> None:
    """Raise a ProofError unless the leaf is at `index` in the tree of `size` with this root."""
    _check_hash("root", expected_root)
    got = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if got != expected_root:
        raise RootMismatch(
            f"the inclusion proof of leaf {index} in a tree of size {size} leads to root "
            f"{got.hex()}, not {expected_root.hex()}"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise a ProofError unless the tree of `old_size` with `old_root` is a prefix of the tree
    of `new_size` with `new_root` (RFC 9162 2.1.4.2)."""
    _check_hash("old root", old_root)
    _check_hash("new root", new_root)
    if not 0 <= old_size <= new_size:
        raise TreeSizeError(f"a tree of size {old_size} cannot grow into one of size {new_size}")
    expected = _consistency_proof_length(old_size, new_size)
    _check_length("consistency proof", proof, expected, old_size, new_size)
    if old_size == 0:
        if old_root != EMPTY_ROOT:
            raise RootMismatch(f"the old root {old_root.hex()} is not the empty tree's")
        return
    if old_size == new_size:
        if old_root != new_root:
            raise RootMismatch(
                f"two trees of size {old_size} with different roots: {old_root.hex()} and "
                f"{new_root.hex()}"
            )
        return
    for i, p in enumerate(proof):
        _check_hash(f"consistency proof hash {i}", p)
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    if fr != old_root:
        raise RootMismatch(
            f"the consistency proof from size {old_size} to {new_size} leads to old root "
            f"{fr.hex()}, not {old_root.hex()}"
        )
    if sr != new_root:
        raise RootMismatch(
            f"the consistency proof from size {old_size} to {new_size} leads to new root "
            f"{sr.hex()}, not {new_root.hex()}"
        )


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1): the size of the left subtree."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree_root(leaf_hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH of leaf_hashes[lo:hi], level by level: pairing from the left and carrying a lone
    last node up unchanged builds exactly the RFC's tree, with n - 1 hashes."""
    if hi <= lo:
        return EMPTY_ROOT
    level = list(leaf_hashes[lo:hi])
    while len(level) > 1:
        paired = [
            sha256(NODE_PREFIX + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) & 1:
            paired.append(level[-1])
        level = paired
    return level[0]


def _inclusion_proof_length(index: int, size: int) -> int:
    length = 0
    while size > 1:
        k = _split(size)
        if index < k:
            size = k
        else:
            index -= k
            size -= k
        length += 1
    return length


def _consistency_proof_length(old_size: int, new_size: int) -> int:
    if old_size in (0, new_size):
        return 0
    length, complete = 0, True
    while old_size != new_size:
        k = _split(new_size)
        if old_size <= k:
            new_size = k
        else:
            old_size -= k
            new_size -= k
            complete = False
        length += 1
    return length + (0 if complete else 1)


def _check_hash(what: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise HashLengthError(f"the {what} is {len(value)} bytes long, not {HASH_SIZE}")


def _check_length(what: str, proof: Sequence[bytes], expected: int, a: int, b: int) -> None:
    if len(proof) != expected:
        raise ProofLengthError(
            f"the {what} for ({a}, {b}) has {len(proof)} hashes; it needs {expected}"
        )
