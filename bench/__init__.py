"""fedrisk's benchmarks: utility of the privacy modes and the cost of CKKS aggregation.

Run ``python -m bench`` (or ``make bench``) from the project root: it runs every part in
one process and rewrites ``BENCHMARKS.md`` and ``bench/out/results.json``. Parts:

- ``utility_real``: AUC / log-loss of ``none``, ``he``, ``dp`` (ε = 1, 3) and ``dp+he`` on
  the FATE split of UCI credit-card default data, against pooled (centralized) training.
- ``utility_demo``: the demo's IoT risk model, federated vs pooled vs the best single factory.
- ``he_cost``: seconds per round of ``he`` vs ``none`` at 10 participants for models of
  about 1k, 10k and 100k parameters, with a micro-benchmark of the CKKS primitives.
- ``vertical_lr``: vertical logistic regression (CKKS) on the vertical credit split vs
  scikit-learn on the joined data, and its speed against the Paillier baseline.
- ``vertical_flower``: the same vertical LR run through Flower with CKKS and in plaintext,
  and the latency of scoring one subject through the parties' ONNX parts and the combiner.
- ``split_demo``: the split network vs vertical LR on the demo's farmers and SMEs, at the
  demo's size and four times it.
- ``serving``: the scoring API under load on loopback (one part, two parts, a batch of
  100,000), with the consent check and the ledger append on every decision.
- ``psi``: private set intersection throughput at 100k and 1M ids a side.
- ``skewed_splits``: FedAvg, FedProx, FedAdam and FedYogi on feature- and label-skewed
  splits of the credit data: rounds to reach pooled - 0.005 and final AUC.
- ``consent_ledger``: consent check latency at 1M grants in SQLite and PostgreSQL, and the
  evidence ledger's append rates, ``verify()`` time and proof sizes at 1M entries.
- ``scale``: Flower's simulation engine (Ray) with 100, 300 and 1,000 simulated factory
  edge nodes, 10 % sampled per round, ``dp+he``: seconds per round, handshake, peak memory
  of the whole process tree, and the largest node count that fits the machine's memory.
- ``deployment``: Flower's deployment engine across six processes on loopback with TLS and
  node authentication vs the same federation in process (seconds per round), and recovery
  from a coordinator killed with SIGKILL (restart to the next committed round).
- ``decisions``: ``fedrisk decide`` over 100,000 applicants (consent check, scoring, policy,
  ledger) per stage, twice on the same root, and the share of the ledger's decisions
  ``replay_ledger`` reproduces exactly (must be 100 %).
- ``cross_verification``: the factory node's ERP/MES/energy checks on the steel plant's
  real readings with injected inconsistencies: detection rate and false alarms.
- ``iot_real``: the IoT risk federation on real factory data (the steel plant's year in six
  two-month factories, AI4I 2020 by machine type), ``dp+he`` and ``none``, vs the best
  single node and pooled training.
- ``monitoring``: post-loan change detection on the steel plant's real readings with
  injected events (detection, delay, false alarms per factory-year), and reading-to-webhook
  latency at 1,000 factories streaming 15-minute readings through the coordinator's API.

``--only PART`` runs some parts; ``--quick`` is a smoke run (few rounds, fewer runs).
Neither rewrites ``BENCHMARKS.md`` unless ``--markdown`` says so.
"""

from __future__ import annotations

PARTS = (
    "utility_real",
    "utility_demo",
    "he_cost",
    "vertical_lr",
    "vertical_flower",
    "split_demo",
    "serving",
    "psi",
    "consent_ledger",
    "skewed_splits",
    "scale",
    "deployment",
    "decisions",
    "cross_verification",
    "iot_real",
    "monitoring",
)

__all__ = ["PARTS"]
