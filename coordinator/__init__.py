"""The coordinator: Flower ServerApp, round orchestration, strategies, publication.

Talks to participants only through Flower messages; never imports ``participants``."""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> submodule. Resolved on first use (PEP 562) so that importing one
# light submodule (e.g. the message vocabulary) does not load torch or ONNX.
_EXPORTS = {
    "CoordinatorError": "handshake",
    "FederationAbortedError": "handshake",
    "FederationReport": "report",
    "FederationResult": "rounds",
    "ParticipantRecord": "report",
    "PlainUpdate": "update_checks",
    "Rejection": "update_checks",
    "Roster": "handshake",
    "RoundRecord": "report",
    "build_strategy": "rounds",
    "check_plain": "update_checks",
    "latest_checkpoint": "checkpoints",
    "log_rejections": "update_checks",
    "main": "server_app",
    "make_server_app": "server_app",
    "num_examples_of": "update_checks",
    "participant_of": "update_checks",
    "plot_auc_per_round": "plots",
    "publish": "publish",
    "reply_error": "update_checks",
    "run_federation": "rounds",
    "run_handshake": "handshake",
    "save_checkpoint": "checkpoints",
    "wait_for_nodes": "handshake",
}

__all__ = [
    "CoordinatorError",
    "FederationAbortedError",
    "FederationReport",
    "FederationResult",
    "ParticipantRecord",
    "PlainUpdate",
    "Rejection",
    "Roster",
    "RoundRecord",
    "build_strategy",
    "check_plain",
    "latest_checkpoint",
    "log_rejections",
    "main",
    "make_server_app",
    "num_examples_of",
    "participant_of",
    "plot_auc_per_round",
    "publish",
    "reply_error",
    "run_federation",
    "run_handshake",
    "save_checkpoint",
    "wait_for_nodes",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
