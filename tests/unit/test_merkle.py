"""domain.integrity.merkle against published RFC 6962 vectors and the RFC's own definitions.

Vectors: Go's github.com/transparency-dev/merkle (the Trillian / Certificate Transparency
hashing code), testonly/constants.go (leaf inputs, node hashes, roots of sizes 0..8) and
proof/verify_test.go (inclusion and consistency proofs, and its ways of corrupting them).
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256

import pytest

from domain.integrity import merkle
from domain.integrity.merkle import (
    EMPTY_ROOT,
    HashLengthError,
    ProofError,
    ProofLengthError,
    RootMismatch,
    TreeSizeError,
)

LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
LEAF_HASHES = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    )
]
# Roots of the trees of the first 0..8 leaves.
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# (0-based leaf index, tree size, audit path); the Go file counts leaves from 1.
INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

# (old size, new size, proof)
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


# The RFC 6962 section 2.1 definitions, written literally (recursive, slicing): a second
# implementation to compare the module's iterative one against on more sizes than the vectors.
def rfc_mth(leaves: Sequence[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return sha256(b"").digest()
    if n == 1:
        return sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return sha256(b"\x01" + rfc_mth(leaves[:k]) + rfc_mth(leaves[k:])).digest()


def rfc_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*rfc_path(m, leaves[:k]), rfc_mth(leaves[k:])]
    return [*rfc_path(m - k, leaves[k:]), rfc_mth(leaves[:k])]


def rfc_subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [rfc_mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*rfc_subproof(m, leaves[:k], complete), rfc_mth(leaves[k:])]
    return [*rfc_subproof(m - k, leaves[k:], False), rfc_mth(leaves[:k])]


def test_leaf_hashes_match_the_vectors() -> None:
    assert [merkle.hash_leaf(d) for d in LEAF_INPUTS] == LEAF_HASHES


def test_the_empty_tree_is_sha256_of_nothing() -> None:
    assert merkle.root([]) == EMPTY_ROOT == ROOTS[0]


@pytest.mark.parametrize("size", range(9))
def test_roots_match_the_vectors(size: int) -> None:
    assert merkle.root(LEAF_HASHES[:size]) == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_proofs_match_the_vectors(index: int, size: int, path: list[bytes]) -> None:
    assert merkle.inclusion_proof(LEAF_HASHES[:size], index) == path
    merkle.verify_inclusion(LEAF_HASHES[index], index, size, path, ROOTS[size])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_proofs_match_the_vectors(old: int, new: int, proof: list[bytes]) -> None:
    assert merkle.consistency_proof(LEAF_HASHES[:new], old) == proof
    merkle.verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)


def corrupted_inclusions(
    index: int, size: int, path: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, int, int, list[bytes], bytes, bytes]]:
    """proof/verify_test.go's corruptInclusionProof: each must be refused."""
    probes = [
        ("index - 1", index - 1, size, path, root, leaf),
        ("index + 1", index + 1, size, path, root, leaf),
        ("index ^ 2", index ^ 2, size, path, root, leaf),
        ("size * 2", index, size * 2, path, root, leaf),
        ("size // 2", index, size // 2, path, root, leaf),
        ("wrong leaf", index, size, path, root, b"WrongLeaf"),
        ("empty root", index, size, path, EMPTY_ROOT, leaf),
        ("random root", index, size, path, SOME_HASH, leaf),
        ("trailing garbage", index, size, [*path, b""], root, leaf),
        ("trailing root", index, size, [*path, root], root, leaf),
        ("preceding garbage", index, size, [b"", *path], root, leaf),
        ("preceding root", index, size, [root, *path], root, leaf),
    ]
    for i in range(len(path)):
        flipped = list(path)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        probes.append((f"proof[{i}] bit 3", index, size, flipped, root, leaf))
    if path:
        probes.append(("removed component", index, size, path[:-1], root, leaf))
    if len(path) > 1:
        probes.append(
            ("inserted component", index, size, [path[0], SOME_HASH, *path[1:]], root, leaf)
        )
    return probes


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION[1:])
def test_corrupted_inclusion_proofs_are_refused(index: int, size: int, path: list[bytes]) -> None:
    root, leaf = ROOTS[size], LEAF_HASHES[index]
    for desc, i, n, p, r, lf in corrupted_inclusions(index, size, path, root, leaf):
        with pytest.raises(ProofError):
            merkle.verify_inclusion(lf, i, n, p, r)
            pytest.fail(f"verified with {desc}")


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY[1:])
def test_corrupted_consistency_proofs_are_refused(old: int, new: int, proof: list[bytes]) -> None:
    """proof/verify_test.go's corruptConsistencyProof: each must be refused."""
    r1, r2 = ROOTS[old], ROOTS[new]
    probes = [
        ("old - 1", old - 1, new, r1, r2, proof),
        ("old + 1", old + 1, new, r1, r2, proof),
        ("old ^ 2", old ^ 2, new, r1, r2, proof),
        ("new * 2", old, new * 2, r1, r2, proof),
        ("new // 2", old, new // 2, r1, r2, proof),
        ("wrong old root", old, new, b"WrongRoot", r2, proof),
        ("wrong new root", old, new, r1, b"WrongRoot", proof),
        ("swapped roots", old, new, r2, r1, proof),
        ("empty proof", old, new, r1, r2, []),
        ("trailing garbage", old, new, r1, r2, [*proof, b""]),
        ("trailing root1", old, new, r1, r2, [*proof, r1]),
        ("trailing root2", old, new, r1, r2, [*proof, r2]),
        ("preceding garbage", old, new, r1, r2, [b"", *proof]),
        ("preceding root1", old, new, r1, r2, [r1, *proof]),
        ("preceding root2", old, new, r1, r2, [r2, *proof]),
        ("preceding proof[0]", old, new, r1, r2, [proof[0], *proof]),
        ("truncated proof", old, new, r1, r2, proof[:-1]),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        probes.append((f"proof[{i}] bit 4", old, new, r1, r2, flipped))
    for desc, m, n, a, b, p in probes:
        with pytest.raises(ProofError):
            merkle.verify_consistency(m, n, a, b, p)
            pytest.fail(f"verified with {desc}")


def test_trivial_consistency_cases() -> None:
    merkle.verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    merkle.verify_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [])
    merkle.verify_consistency(3, 3, ROOTS[3], ROOTS[3], [])
    with pytest.raises(RootMismatch, match="different roots"):
        merkle.verify_consistency(3, 3, ROOTS[3], ROOTS[4], [])
    with pytest.raises(RootMismatch, match="empty tree"):
        merkle.verify_consistency(0, 5, ROOTS[1], ROOTS[5], [])
    with pytest.raises(TreeSizeError, match="cannot grow"):
        merkle.verify_consistency(2, 1, ROOTS[2], ROOTS[1], [])
    with pytest.raises(ProofLengthError):
        merkle.verify_consistency(1, 1, ROOTS[1], ROOTS[1], [EMPTY_ROOT])


def test_errors_say_what_failed() -> None:
    with pytest.raises(TreeSizeError, match="leaf index 3 is not in a tree of size 3"):
        merkle.verify_inclusion(LEAF_HASHES[0], 3, 3, [], ROOTS[3])
    with pytest.raises(HashLengthError, match="leaf hash is 9 bytes long"):
        merkle.verify_inclusion(b"WrongLeaf", 0, 1, [], ROOTS[1])
    with pytest.raises(ProofLengthError, match="has 2 hashes; it needs 3"):
        merkle.verify_inclusion(LEAF_HASHES[0], 0, 8, INCLUSION[1][2][:2], ROOTS[8])
    with pytest.raises(RootMismatch, match="leads to root"):
        merkle.verify_inclusion(LEAF_HASHES[1], 0, 8, INCLUSION[1][2], ROOTS[8])
    with pytest.raises(TreeSizeError):
        merkle.inclusion_proof(LEAF_HASHES, 8)
    with pytest.raises(TreeSizeError):
        merkle.consistency_proof(LEAF_HASHES[:3], 4)


def test_the_module_agrees_with_the_rfc_definitions_up_to_70_leaves() -> None:
    leaves = [merkle.hash_leaf(i.to_bytes(2, "big")) for i in range(70)]
    data = [i.to_bytes(2, "big") for i in range(70)]
    for n in range(71):
        assert merkle.root(leaves[:n]) == rfc_mth(data[:n])
        for m in range(n):
            assert merkle.inclusion_proof(leaves[:n], m) == rfc_path(m, data[:n])
        for m in range(1, n):
            assert merkle.consistency_proof(leaves[:n], m) == rfc_subproof(m, data[:n], True)
