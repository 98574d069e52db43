"""The Flower message vocabulary that the coordinator and the participants share.

Coordinator and participants never import each other (DESIGN.md): they talk through Flower
messages only, so the names of message types and record keys live here, below both.
"""

from __future__ import annotations

from typing import Final

#: Before round 1: each participant reports its schema, row counts and key fingerprint.
HANDSHAKE: Final = "query.handshake"
#: One round of local training.
TRAIN: Final = "train"
#: Ask the key holder to decrypt an aggregate (CKKS modes only).
DECRYPT: Final = "query.decrypt"

#: Plain model parameters (global model going out, or a plain update coming back).
ARRAYS: Final = "arrays"
#: Round configuration sent by the coordinator.
CONFIG: Final = "config"
#: Numbers a participant reports (row counts, epsilon, loss): counts and aggregates only.
METRICS: Final = "metrics"
#: A CKKS-encrypted update (chunks of ciphertext bytes + fingerprint + length).
ENCRYPTED: Final = "encrypted"
#: Descriptive answers (schema JSON, participant name, refusal reasons).
INFO: Final = "info"

#: Metric key holding the number of training examples a reply stands for.
NUM_EXAMPLES: Final = "num-examples"
