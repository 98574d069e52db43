"""Vertical federated protocols: FATE-style logistic regression with CKKS (or, in the
benchmarks, Paillier and plaintext) over ids aligned by private set intersection.

The guest-only codec :mod:`privacy.vertical.ckks_guest` (it holds the secret key) is not
imported here: a host or the coordinator importing this package never loads a secret.
"""

from __future__ import annotations

from .codecs import VERTICAL_CKKS, CKKSHostCodec, MaskedColumns, PlainCodec
from .lr import (
    BatchPlan,
    VerticalLRConfig,
    VerticalLRGuest,
    VerticalLRHost,
    batch_plan,
    holdout_split,
    run_epoch,
)

__all__ = [
    "VERTICAL_CKKS",
    "BatchPlan",
    "CKKSHostCodec",
    "MaskedColumns",
    "PlainCodec",
    "VerticalLRConfig",
    "VerticalLRGuest",
    "VerticalLRHost",
    "batch_plan",
    "holdout_split",
    "run_epoch",
]
