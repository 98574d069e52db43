"""The participant node: Flower ClientApp, local data and consent filter, local training.

Talks to the coordinator only through Flower messages; never imports ``coordinator``."""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> submodule. Resolved on first use (PEP 562) so that importing one
# light submodule (e.g. the message vocabulary) does not load torch or ONNX.
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


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
