"""Aggregation strategies; the CKKS one and the adaptive server optimisers wrap an averaging
one."""

from __future__ import annotations

from models._exports import lazy_exports

# Public name -> submodule, imported on first use (PEP 562; see models/_exports.py).
_EXPORTS = {
    "Aggregate": "base",
    "EncryptedAggregation": "encrypted_aggregation",
    "FedAvg": "fedavg",
    "FedProx": "fedavg",
    "RoundContext": "base",
    "ServerOptimizer": "server_optimizer",
    "Strategy": "base",
    "weighted_mean": "fedavg",
}

__all__ = [
    "Aggregate",
    "EncryptedAggregation",
    "FedAvg",
    "FedProx",
    "RoundContext",
    "ServerOptimizer",
    "Strategy",
    "weighted_mean",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
