"""Timing of the CKKS update path for candidate modulus chains (not collected by pytest).

Run: ``python -m tests.privacy.bench_ckks``. Prints, per chain, the best of five runs of
encrypting / validating / summing three / decrypting 100 000 values, the update size, and
the largest error of a sum of ten vectors of magnitude 1, with the secret-key encryption
and two-values-per-slot packing the package uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import numpy as np

from privacy.he.params import CKKSParams
from privacy.he.secret import SecretContext, decrypt_aggregate, encrypt_update
from privacy.he.updates import sum_encrypted, validate_update

T = TypeVar("T")
LENGTH = 100_000


def best_of(fn: Callable[[], T], repeats: int = 5) -> tuple[float, T]:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    rng = np.random.default_rng(0)
    vectors = [rng.uniform(-1.0, 1.0, LENGTH) for _ in range(10)]
    print("chain              t_enc   t_val   t_sum3  t_dec   size_MB  err_sum10")
    for chain in [(60, 40, 40, 60), (60, 40, 60), (60, 40)]:
        secret = SecretContext.generate(CKKSParams(coeff_mod_bit_sizes=chain))
        public = secret.public()
        t_enc, update = best_of(partial(encrypt_update, secret, vectors[0]))
        updates = [encrypt_update(secret, v) for v in vectors]
        t_val, _ = best_of(partial(validate_update, public, update, expected_length=LENGTH))
        t_sum, total3 = best_of(partial(sum_encrypted, public, updates[:3]))
        t_dec, _ = best_of(
            partial(
                decrypt_aggregate,
                secret,
                total3,
                contributors=3,
                min_contributors=3,
                round_decimals=None,
            )
        )
        total10 = sum_encrypted(public, updates)
        plain = decrypt_aggregate(
            secret, total10, contributors=10, min_contributors=3, round_decimals=None
        )
        err = float(np.max(np.abs(plain - np.sum(vectors, axis=0))))
        print(
            f"{chain!s:18} {t_enc:6.3f}  {t_val:6.3f}  {t_sum:6.3f}  {t_dec:6.3f}"
            f"  {update.nbytes / 1e6:6.2f}   {err:.1e}"
        )


if __name__ == "__main__":
    main()
