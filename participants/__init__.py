"""The participant node: Flower ClientApp, local data and consent filter, local training.

Talks to the coordinator only through Flower messages; never imports ``coordinator``."""

from __future__ import annotations

from models._exports import lazy_exports

# Public name -> submodule, imported on first use (PEP 562; see models/_exports.py).
_EXPORTS = {
    "EligibleData": "local_data",
    "LocalResult": "local_training",
    "ParticipantError": "local_data",
    "ParticipantResolver": "client_app",
    "RoundPlan": "local_training",
    "UnknownParticipantError": "local_data",
    "consent_as_of": "local_data",
    "declared_schema": "local_data",
    "load_eligible": "local_data",
    "make_client_app": "client_app",
    "make_encrypt_mod": "mods",
    "participant_spec": "local_data",
    "plan_dp_event": "local_training",
    "train_round": "local_training",
}

__all__ = [
    "EligibleData",
    "LocalResult",
    "ParticipantError",
    "ParticipantResolver",
    "RoundPlan",
    "UnknownParticipantError",
    "consent_as_of",
    "declared_schema",
    "load_eligible",
    "make_client_app",
    "make_encrypt_mod",
    "participant_spec",
    "plan_dp_event",
    "train_round",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
