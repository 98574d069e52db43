"""RFC 6962 hashing and proofs: the published vectors, and proofs checked both ways."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent.ledger import merkle

# ../shared/REFERENCE.md, "Merkle log (RFC 6962 hashing)".
EIGHT_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                "606162636465666768696a6b6c6d6e6f"]  # fmt: skip


def test_published_vectors() -> None:
    assert merkle.EMPTY_ROOT.hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert merkle.root_of([]) == merkle.EMPTY_ROOT
    assert merkle.leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert merkle.leaf_hash(b"L123456").hex() == (
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert merkle.node_hash(b"N123", b"N456").hex() == (
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )
    leaves = [bytes.fromhex(h) for h in EIGHT_LEAVES]
    assert merkle.root_of(leaves).hex() == (
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )


def test_consistency_proof_sizes_from_the_reference() -> None:
    assert len(merkle.consistency_ranges(1, 2)) == 1
    assert merkle.consistency_ranges(0, 2) == []


def _all_nodes(leaves: list[bytes]) -> dict[merkle.NodeKey, bytes]:
    """Every perfect aligned subtree's hash, computed directly."""
    nodes: dict[merkle.NodeKey, bytes] = {}
    level, row = 0, [merkle.leaf_hash(d) for d in leaves]
    while row:
        nodes.update({(level, i): h for i, h in enumerate(row)})
        row = [merkle.node_hash(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)]
        level += 1
    return nodes


def _proof(ranges: list[tuple[int, int]], leaves: list[bytes]) -> list[bytes]:
    return merkle.hashes_for(ranges, lambda keys: _all_nodes(leaves))


def _leaves(n: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(n)]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 9, 16, 17, 31, 33])
def test_every_leaf_is_proved_in_every_tree_size(size: int) -> None:
    leaves = _leaves(size)
    root = merkle.root_of(leaves)
    assert merkle.range_hash(0, size, _all_nodes(leaves)) == root
    for index in range(size):
        path = _proof(merkle.inclusion_ranges(index, size), leaves)
        leaf = merkle.leaf_hash(leaves[index])
        assert merkle.verify_inclusion(leaf, index=index, size=size, path=path, root=root)


@given(st.integers(1, 70).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_a_tampered_inclusion_proof_fails(case: tuple[int, int]) -> None:
    size, index = case
    leaves = _leaves(size)
    root = merkle.root_of(leaves)
    leaf = merkle.leaf_hash(leaves[index])
    path = _proof(merkle.inclusion_ranges(index, size), leaves)

    other = merkle.leaf_hash(b"forged")
    assert not merkle.verify_inclusion(other, index=index, size=size, path=path, root=root)
    if path:
        bent = [path[0][:-1] + bytes([path[0][-1] ^ 1]), *path[1:]]
        assert not merkle.verify_inclusion(leaf, index=index, size=size, path=bent, root=root)
        assert not merkle.verify_inclusion(leaf, index=index, size=size, path=path[:-1], root=root)
    if size > 1:
        wrong = (index + 1) % size
        assert not merkle.verify_inclusion(leaf, index=wrong, size=size, path=path, root=root)
    assert not merkle.verify_inclusion(leaf, index=size, size=size, path=path, root=root)


@given(st.integers(1, 70).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_consistency_proofs_hold_and_fail_when_the_old_tree_is_rewritten(
    case: tuple[int, int],
) -> None:
    old, new = case
    leaves = _leaves(new)
    old_root, new_root = merkle.root_of(leaves[:old]), merkle.root_of(leaves)
    proof = _proof(merkle.consistency_ranges(old, new), leaves)
    assert merkle.verify_consistency(
        old_size=old, new_size=new, old_root=old_root, new_root=new_root, proof=proof
    )
    if old > 0:
        rewritten = merkle.root_of([b"rewritten history", *leaves[1:old]])
        assert not merkle.verify_consistency(
            old_size=old, new_size=new, old_root=rewritten, new_root=new_root, proof=proof
        )
    if 0 < old < new:
        assert not merkle.verify_consistency(
            old_size=old, new_size=new, old_root=old_root, new_root=new_root, proof=proof[:-1]
        )


def test_bad_ranges_are_refused() -> None:
    with pytest.raises(ValueError, match="leaf index"):
        merkle.inclusion_ranges(3, 3)
    with pytest.raises(ValueError, match="old_size <= new_size"):
        merkle.consistency_ranges(4, 3)
