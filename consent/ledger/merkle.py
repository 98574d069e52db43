"""Merkle tree hashing, proofs and their verification as RFC 6962 (and RFC 9162 §2.1) define.

A tree over leaves ``D[0:n]`` hashes a leaf as ``SHA-256(0x00 || d)`` and an interior node as
``SHA-256(0x01 || left || right)``; the left subtree of ``D[lo:hi]`` holds the largest power of
two of leaves below ``hi - lo``. Every left subtree is therefore *perfect and aligned*: a
store that keeps the hash of each perfect aligned subtree (:func:`perfect_ranges`) answers any
root or proof with O(log n) lookups, fetched in one batch.

Proofs are described first as lists of leaf ranges (:func:`inclusion_ranges`,
:func:`consistency_ranges`: pure arithmetic), then hashed from a lookup of node hashes
(:func:`range_hash`). Verification needs only hashes (:func:`verify_inclusion`,
:func:`verify_consistency`, the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = [
    "EMPTY_ROOT",
    "NodeKey",
    "consistency_ranges",
    "hashes_for",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "perfect_ranges",
    "range_hash",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

#: (level, index): the perfect subtree over leaves [index * 2**level, (index + 1) * 2**level).
NodeKey = tuple[int, int]
Range = tuple[int, int]

EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 §2.1: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 §2.1: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_ranges(lo: int, hi: int) -> list[NodeKey]:
    """The perfect aligned subtrees whose hashes make up ``MTH(D[lo:hi])``, left to right.

    ``lo`` must start a subtree of the tree of size ``hi`` (every range a proof names does).
    """
    keys: list[NodeKey] = []
    while hi - lo > 0:
        n = hi - lo
        if n & (n - 1) == 0 and lo % n == 0:
            keys.append((n.bit_length() - 1, lo // n))
            break
        k = _split(n)
        keys.append(((k.bit_length() - 1), lo // k))
        lo += k
    return keys


def range_hash(lo: int, hi: int, nodes: Mapping[NodeKey, bytes]) -> bytes:
    """``MTH(D[lo:hi])`` from the hashes of its perfect subtrees (``nodes``)."""
    if hi <= lo:
        return EMPTY_ROOT
    parts = [nodes[key] for key in perfect_ranges(lo, hi)]
    value = parts[-1]
    for left in reversed(parts[:-1]):
        value = node_hash(left, value)
    return value


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The ranges whose hashes form the audit path of leaf ``index`` (RFC 6962 §2.1.1)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index must be in [0, {size}), got {index}")
    path: list[Range] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append((lo + k, hi))
            hi = lo + k
        else:
            path.append((lo, lo + k))
            lo += k
    path.reverse()
    return path


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """The ranges whose hashes prove that the tree of ``old_size`` is a prefix of the tree of
    ``new_size`` (RFC 6962 §2.1.2, SUBPROOF)."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"need 0 <= old_size <= new_size, got {old_size} and {new_size}")
    if old_size in (0, new_size):
        return []
    proof: list[Range] = []
    lo, hi, m, complete = 0, new_size, old_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            proof.append((lo + k, hi))
            hi = lo + k
        else:
            proof.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    if not complete:
        proof.append((lo, hi))
    proof.reverse()
    return proof


def root_of(leaves: Sequence[bytes]) -> bytes:
    """``MTH`` of raw leaf data, computed directly (tests and small trees)."""
    hashes = [leaf_hash(d) for d in leaves]
    return _mth(hashes) if hashes else EMPTY_ROOT


def _mth(hashes: Sequence[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return node_hash(_mth(hashes[:k]), _mth(hashes[k:]))


def verify_inclusion(
    leaf: bytes, *, index: int, size: int, path: Iterable[bytes], root: bytes
) -> bool:
    """Whether ``path`` proves leaf hash ``leaf`` at ``index`` in the tree ``root`` of
    ``size`` leaves (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    *, old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree ``old_root`` (``old_size`` leaves) is a prefix of
    ``new_root`` (``new_size`` leaves), as RFC 9162 §2.1.4.2 checks it."""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    if not proof:
        return False
    nodes = list(proof)
    if old_size & (old_size - 1) == 0:
        nodes = [old_root, *nodes]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = nodes[0]
    for c in nodes[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == old_root and sr == new_root and sn == 0


def hashes_for(
    ranges: Iterable[Range], lookup: Callable[[set[NodeKey]], Mapping[NodeKey, bytes]]
) -> list[bytes]:
    """The hash of each range, with every node they need fetched by one ``lookup`` call."""
    ranges = list(ranges)
    keys = {key for lo, hi in ranges for key in perfect_ranges(lo, hi)}
    nodes = lookup(keys) if keys else {}
    return [range_hash(lo, hi, nodes) for lo, hi in ranges]
