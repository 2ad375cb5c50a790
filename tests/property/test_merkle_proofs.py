"""domain.integrity.merkle: for random tree sizes every inclusion and consistency proof
verifies, and any altered hash, index or size is refused.

A proof alone does not fix the tree size: the audit path of leaf 0 is the same in trees of 65
and 66 leaves, and leads to the same root. As in RFC 9162, the size is authenticated by the
signed checkpoint that carries it together with the root, so a claim with an altered size is
checked against the root of a tree of that size (built from the same leaves)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.integrity import merkle
from domain.integrity.merkle import ProofError

MAX_SIZE = 300


def leaves(size: int) -> list[bytes]:
    return [merkle.hash_leaf(i.to_bytes(4, "big")) for i in range(size)]


@st.composite
def leaf_in_tree(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(min_value=1, max_value=MAX_SIZE))
    return draw(st.integers(min_value=0, max_value=size - 1)), size


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    new = draw(st.integers(min_value=1, max_value=MAX_SIZE))
    return draw(st.integers(min_value=1, max_value=new)), new


def flip(value: bytes, bit: int) -> bytes:
    i = (bit // 8) % len(value)
    return value[:i] + bytes([value[i] ^ (1 << bit % 8)]) + value[i + 1 :]


def refused_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    try:
        merkle.verify_inclusion(leaf, index, size, proof, root)
    except ProofError:
        return True
    return False


def refused_consistency(old: int, new: int, r1: bytes, r2: bytes, proof: list[bytes]) -> bool:
    try:
        merkle.verify_consistency(old, new, r1, r2, proof)
    except ProofError:
        return True
    return False


@given(leaf_in_tree(), st.data())
def test_inclusion_proofs_verify_and_alterations_fail(
    where: tuple[int, int], data: st.DataObject
) -> None:
    index, size = where
    hashes = leaves(size)
    root, proof, leaf = merkle.root(hashes), merkle.inclusion_proof(hashes, index), hashes[index]
    merkle.verify_inclusion(leaf, index, size, proof, root)

    bit = data.draw(st.integers(min_value=0, max_value=255), label="bit")
    assert refused_inclusion(flip(leaf, bit), index, size, proof, root)
    assert refused_inclusion(leaf, index, size, proof, flip(root, bit))
    if proof:
        at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="at")
        altered = [*proof[:at], flip(proof[at], bit), *proof[at + 1 :]]
        assert refused_inclusion(leaf, index, size, altered, root)
    other = data.draw(st.integers(min_value=0, max_value=size).filter(lambda i: i != index))
    assert refused_inclusion(leaf, other, size, proof, root)
    other_size = data.draw(
        st.integers(min_value=1, max_value=2 * MAX_SIZE).filter(lambda s: s != size), label="size"
    )
    assert refused_inclusion(leaf, index, other_size, proof, merkle.root(leaves(other_size)))


@given(two_sizes(), st.data())
def test_consistency_proofs_verify_and_alterations_fail(
    sizes: tuple[int, int], data: st.DataObject
) -> None:
    old, new = sizes
    hashes = leaves(new)
    r1, r2 = merkle.root(hashes[:old]), merkle.root(hashes)
    proof = merkle.consistency_proof(hashes, old)
    merkle.verify_consistency(old, new, r1, r2, proof)

    bit = data.draw(st.integers(min_value=0, max_value=255), label="bit")
    assert refused_consistency(old, new, flip(r1, bit), r2, proof)
    assert refused_consistency(old, new, r1, flip(r2, bit), proof)
    if proof:
        at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="at")
        altered = [*proof[:at], flip(proof[at], bit), *proof[at + 1 :]]
        assert refused_consistency(old, new, r1, r2, altered)
    if old < new:
        other_old = data.draw(
            st.integers(min_value=1, max_value=new).filter(lambda s: s != old), label="old"
        )
        assert refused_consistency(other_old, new, merkle.root(hashes[:other_old]), r2, proof)
        other_new = data.draw(
            st.integers(min_value=old, max_value=2 * MAX_SIZE).filter(lambda s: s != new),
            label="new",
        )
        assert refused_consistency(old, other_new, r1, merkle.root(leaves(other_new)), proof)


@given(two_sizes())
def test_a_rewritten_history_is_never_consistent(sizes: tuple[int, int]) -> None:
    """Change any one leaf of the old tree: the new tree no longer extends the old one."""
    old, new = sizes
    hashes = leaves(new)
    r1 = merkle.root(hashes[:old])
    rewritten = [*hashes]
    rewritten[old - 1] = merkle.hash_leaf(b"rewritten")
    proof = merkle.consistency_proof(rewritten, old)
    assert refused_consistency(old, new, r1, merkle.root(rewritten), proof)
