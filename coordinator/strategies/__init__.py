"""Aggregation strategies; the CKKS one wraps an averaging one."""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> submodule. Resolved on first use (PEP 562) so that importing one
# light submodule (e.g. the message vocabulary) does not load torch or ONNX.
_EXPORTS = {
    "Aggregate": "base",
    "EncryptedAggregation": "encrypted_aggregation",
    "FedAvg": "fedavg",
    "FedProx": "fedavg",
    "RoundContext": "base",
    "Strategy": "base",
    "weighted_mean": "fedavg",
}

__all__ = [
    "Aggregate",
    "EncryptedAggregation",
    "FedAvg",
    "FedProx",
    "RoundContext",
    "Strategy",
    "weighted_mean",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
