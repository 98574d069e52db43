"""CKKS encryption parameters, checked against the HomomorphicEncryption.org standard.

CKKS (Cheon, Kim, Kim & Song 2017, "Homomorphic Encryption for Arithmetic of Approximate
Numbers") packs N/2 complex numbers (here two real values each) into one ciphertext.
Security depends on the ring degree N and on the total bit size of the coefficient
modulus chain; the limits below are the 128-bit classical-security bounds of the
Homomorphic Encryption Security Standard (Albrecht et al. 2018, HomomorphicEncryption.org),
the same table SEAL enforces.

Choice of default chain. Federated aggregation needs ciphertext *additions* only (each
participant scales its own update by its weight before encrypting), so no level is spent
on multiplications and a short chain suffices. In SEAL the last prime is the special
(key-switching) prime; the others hold data, and a sum must stay below
``max_abs_value = 2**(data_bits - global_scale_bits - 2)`` or it wraps around silently.
Measured with ``python -m tests.privacy.bench_ckks`` (TenSEAL 0.3.18, N=8192, scale 2**40,
this 2-core machine, best of 5, 100 000 values, encrypted as
:func:`~privacy.he.secret.encrypt_update` does: secret-key encryption, two values per
complex slot):

================  ========  ========  =======  ========  =======  =======  ==========
chain             total     encrypt   check    sum of 3  decrypt  update   max error,
                                                                           sum of 10
================  ========  ========  =======  ========  =======  =======  ==========
(60, 40, 40, 60)  200 bits  0.040 s   0.005 s  0.027 s   0.018 s  4.3 MB   3e-9
(60, 40, 60)      160 bits  0.023 s   0.004 s  0.015 s   0.012 s  3.1 MB   3e-9
(60, 40)          100 bits  0.015 s   0.001 s  0.005 s   0.006 s  1.7 MB   3e-9
(60,)              60 bits  rejected by TenSEAL: "keyswitching is not supported"
================  ========  ========  =======  ========  =======  =======  ==========

Every valid chain keeps the error of a sum of ten vectors of magnitude 1 near 3e-9, far
below 1e-6. The default is ``(60, 40)``, the fastest and
smallest: its single 60-bit data prime bounds a sum by 2**18 ≈ 2.6e5 in magnitude, which is
ample because participants encrypt ``num_examples · example_scale · weights`` with
``example_scale`` = 1 / the rows declared for the round, so a sum of FedAvg numerators stays
at the magnitude of the weights themselves (each value must be below 2**18 / 1024 = 256).
Longer chains are for protocols that multiply (vertical logistic regression spends a level
per ciphertext-plaintext product); :func:`~privacy.he.secret.encrypt_update` refuses
values that could overflow under any chain.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..errors import InvalidParametersError

__all__ = ["CKKSParams", "MAX_COEFF_MODULUS_BITS"]

#: HomomorphicEncryption.org standard, 128-bit classical security: N -> max total bits.
MAX_COEFF_MODULUS_BITS: Mapping[int, int] = MappingProxyType(
    {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881}
)

#: SEAL's bounds on the size of one coefficient-modulus prime.
_MIN_PRIME_BITS = 2
_MAX_PRIME_BITS = 60


@dataclass(frozen=True)
class CKKSParams:
    """Ring degree, coefficient-modulus chain (bits per prime) and scale (bits) of CKKS."""

    poly_modulus_degree: int = 8192
    coeff_mod_bit_sizes: tuple[int, ...] = (60, 40)
    global_scale_bits: int = 40

    def __post_init__(self) -> None:
        n = self.poly_modulus_degree
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise InvalidParametersError(f"poly_modulus_degree must be an int, got {n!r}")
        limit = MAX_COEFF_MODULUS_BITS.get(int(n))
        if limit is None:
            raise InvalidParametersError(
                f"poly_modulus_degree must be one of {sorted(MAX_COEFF_MODULUS_BITS)}, got {n}"
            )
        sizes = self.coeff_mod_bit_sizes
        if isinstance(sizes, (str, bytes)) or not all(
            isinstance(b, numbers.Integral) and not isinstance(b, bool) for b in sizes
        ):
            raise InvalidParametersError(f"coeff_mod_bit_sizes must be ints, got {sizes!r}")
        sizes = tuple(int(b) for b in sizes)
        if len(sizes) < 2:
            raise InvalidParametersError(
                f"coeff_mod_bit_sizes needs at least two primes (data + special), got {sizes}"
            )
        bad = [b for b in sizes if not _MIN_PRIME_BITS <= b <= _MAX_PRIME_BITS]
        if bad:
            raise InvalidParametersError(
                f"each coefficient-modulus prime must have {_MIN_PRIME_BITS}.."
                f"{_MAX_PRIME_BITS} bits, got {bad} in {sizes}"
            )
        total = sum(sizes)
        if total > limit:
            raise InvalidParametersError(
                f"N={n} with coeff_mod_bit_sizes={sizes} has {total} bits of coefficient "
                f"modulus, over the 128-bit-security limit of {limit} bits for N={n} "
                "(HomomorphicEncryption.org standard)"
            )
        scale = self.global_scale_bits
        if isinstance(scale, bool) or not isinstance(scale, numbers.Integral) or scale < 1:
            raise InvalidParametersError(f"global_scale_bits must be an int >= 1, got {scale!r}")
        data_bits = sum(sizes[:-1])
        if scale + 2 > data_bits:
            raise InvalidParametersError(
                f"global_scale_bits={scale} leaves no room below the {data_bits} data bits of "
                f"{sizes} (need global_scale_bits <= {data_bits - 2})"
            )
        object.__setattr__(self, "poly_modulus_degree", int(n))
        object.__setattr__(self, "coeff_mod_bit_sizes", sizes)
        object.__setattr__(self, "global_scale_bits", int(scale))

    @property
    def slots(self) -> int:
        """Complex slots of one ciphertext (N/2); an update puts two values in each."""
        return self.poly_modulus_degree // 2

    @property
    def total_bits(self) -> int:
        """Bit size of the whole coefficient modulus, special prime included."""
        return sum(self.coeff_mod_bit_sizes)

    @property
    def data_bits(self) -> int:
        """Bit size of the modulus that holds data (the chain without the special prime)."""
        return sum(self.coeff_mod_bit_sizes[:-1])

    @property
    def max_abs_value(self) -> float:
        """Largest magnitude a decrypted value (a sum included) can have without wrapping."""
        return float(2.0 ** (self.data_bits - self.global_scale_bits - 2))

    def to_dict(self) -> dict[str, Any]:
        return {
            "poly_modulus_degree": self.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(self.coeff_mod_bit_sizes),
            "global_scale_bits": self.global_scale_bits,
        }
