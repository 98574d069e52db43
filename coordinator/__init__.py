"""The coordinator: Flower ServerApp, round orchestration, strategies, publication.

Talks to participants only through Flower messages; never imports ``participants``."""

from __future__ import annotations

from models._exports import lazy_exports

# Public name -> submodule, imported on first use (PEP 562; see models/_exports.py).
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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
