"""The ristretto255 prime-order group (RFC 9496) from libsodium, for Diffie-Hellman PSI.

Ids are mapped to group elements with ristretto255's hash-to-group (RFC 9496 §4.3.4, the
element derived from 64 uniform bytes; here SHA-512 of a domain-separated, length-prefixed
encoding of the session and the id), then raised to a party's secret scalar. Ristretto255 has
prime order, so there is no cofactor to clear and every valid 32-byte encoding is a group
element; an invalid encoding from the other side is refused, never silently used.

Element lists travel as one ``bytes`` of ``n * 32`` (a Flower byte array). libsodium runs
with the GIL released, so a :class:`Blinder` spreads large lists over threads.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import rbcl

from ..errors import PSIError

__all__ = ["ELEMENT_BYTES", "Blinder", "hash_ids", "join_elements", "split_elements"]

ELEMENT_BYTES = rbcl.crypto_core_ristretto255_BYTES  # 32
_HASH_DOMAIN = b"fedrisk-psi/v1/ristretto255/sha512"
#: Below this many elements per thread, threads cost more than they save.
_MIN_PER_THREAD = 2_000


def hash_ids(ids: Sequence[bytes], *, session: bytes, workers: int | None = None) -> list[bytes]:
    """Map each (canonical, encoded) id to a ristretto255 element, bound to ``session``."""
    prefix = _HASH_DOMAIN + len(session).to_bytes(2, "big") + session

    def one(value: bytes) -> bytes:
        digest = hashlib.sha512(prefix + len(value).to_bytes(4, "big") + value).digest()
        return rbcl.crypto_core_ristretto255_from_hash(digest)

    return _map(one, ids, workers=workers)


class Blinder:
    """A party's secret exponent: raises elements to it. Never serialised, never sent."""

    __slots__ = ("_scalar", "_workers")

    def __init__(self, *, workers: int | None = None, scalar: bytes | None = None) -> None:
        if scalar is not None and (not isinstance(scalar, bytes) or len(scalar) != 32):
            raise PSIError("a PSI secret scalar is 32 bytes")
        self._scalar = scalar or rbcl.crypto_core_ristretto255_scalar_random()
        self._workers = workers

    def secret_bytes(self, *, include_secret: bool) -> bytes:
        """The secret scalar, for a party's own state file between two protocol messages;
        ``include_secret=True`` must be explicit."""
        if include_secret is not True:
            raise PSIError("exporting a PSI secret scalar needs include_secret=True")
        return bytes(self._scalar)

    def blind(self, elements: Sequence[bytes]) -> list[bytes]:
        """Each element to the power of the secret scalar; invalid encodings are refused."""
        scalar = self._scalar

        def one(element: bytes) -> bytes:
            try:
                return rbcl.crypto_scalarmult_ristretto255(scalar, element)
            except Exception as exc:  # libsodium refuses non-canonical or identity results
                raise PSIError(f"not a valid ristretto255 element: {exc}") from exc

        return _map(one, elements, workers=self._workers)

    def __repr__(self) -> str:
        return "Blinder(<secret scalar>)"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a PSI secret scalar is never pickled")


def join_elements(elements: Iterable[bytes]) -> bytes:
    """Elements as one byte string (the wire form)."""
    return b"".join(elements)


def split_elements(data: bytes, *, expected: int | None = None, what: str = "list") -> list[bytes]:
    """The wire form back as elements; a length that is not a multiple of 32 is refused."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise PSIError(f"{what}: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) % ELEMENT_BYTES:
        raise PSIError(f"{what}: {len(data)} bytes is not a whole number of 32-byte elements")
    count = len(data) // ELEMENT_BYTES
    if expected is not None and count != expected:
        raise PSIError(f"{what}: expected {expected} elements, got {count}")
    elements = [data[i : i + ELEMENT_BYTES] for i in range(0, len(data), ELEMENT_BYTES)]
    bad = next((i for i, e in enumerate(elements) if not _is_valid(e)), None)
    if bad is not None:
        raise PSIError(f"{what}: element {bad} is not a valid ristretto255 encoding")
    return elements


def _is_valid(element: bytes) -> bool:
    return bool(rbcl.crypto_core_ristretto255_is_valid_point(element))


def _map(fn, items: Sequence[bytes], *, workers: int | None) -> list[bytes]:  # type: ignore[no-untyped-def]
    n_threads = workers if workers is not None else (os.cpu_count() or 1)
    n_threads = max(1, min(n_threads, len(items) // _MIN_PER_THREAD))
    if n_threads == 1:
        return [fn(item) for item in items]
    size = -(-len(items) // n_threads)
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        parts = list(pool.map(lambda chunk: [fn(item) for item in chunk], chunks))
    return [element for part in parts for element in part]
