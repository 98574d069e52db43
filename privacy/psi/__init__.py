"""Private set intersection: align the ids of vertically partitioned parties privately.

Diffie-Hellman PSI over ristretto255 (:mod:`privacy.psi.protocol`); ids are canonicalised
and profiled first (:mod:`privacy.psi.ids`) so that duplicates and mismatched id formats are
refused with a clear error instead of silently shrinking the intersection.
"""

from __future__ import annotations

from .group import ELEMENT_BYTES
from .ids import IdFormat, canonical_ids, id_format
from .protocol import PSIAnswer, PSIGuest, PSIHost, PSIOffer, PSIResult, PSIReveal

__all__ = [
    "ELEMENT_BYTES",
    "IdFormat",
    "PSIAnswer",
    "PSIGuest",
    "PSIHost",
    "PSIOffer",
    "PSIResult",
    "PSIReveal",
    "canonical_ids",
    "id_format",
]
