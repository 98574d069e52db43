"""Where a federation's files live: keys, budgets, checkpoints, registry, reports.

Both sides of a federation derive these paths from the same federation file, so they are
computed in one place below both.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .federation import FederationSpec


def secret_key_path(spec: FederationSpec, participant: str) -> Path:
    """A participant's provisioned CKKS secret context (it never leaves that node)."""
    return spec.he.keys_dir / participant / "secret.ckks"


def public_key_path(spec: FederationSpec) -> Path:
    """The coordinator's CKKS context: public material only."""
    return spec.he.keys_dir / "coordinator" / "public.ckks"


def node_home() -> Path:
    """The node's own state folder: ``$FEDRISK_HOME``, else ``~/.fedrisk``."""
    return Path(os.environ.get("FEDRISK_HOME") or Path.home() / ".fedrisk")


def budget_path(data_file: Path) -> Path:
    """A dataset's lifetime privacy budget, in the node's state folder (never beside the
    data, which may be read-only or shared), keyed by the dataset's absolute path so that
    every federation and model training on it draws on the same budget."""
    key = hashlib.sha256(str(data_file.resolve()).encode()).hexdigest()[:16]
    return node_home() / "budgets" / f"{data_file.name}-{key}.json"


def dp_journal_path(data_file: Path, run_id: str) -> Path:
    """The DP events a dataset spent in one training run, in the node's state folder: the
    run's ε survives a restart of the coordinator or the node."""
    key = hashlib.sha256(str(data_file.resolve()).encode()).hexdigest()[:16]
    safe = "".join(c for c in run_id if c.isalnum() or c in "-_") or "run"
    return node_home() / "dp-runs" / f"{data_file.name}-{key}" / f"{safe}.json"


def registry_dir(spec: FederationSpec) -> Path:
    """The local model registry written by the coordinator."""
    return spec.output_dir / "registry"


def ledger_dir(spec: FederationSpec) -> Path:
    """The evidence ledger the coordinator records published models in (``fedrisk serve``
    over the same folder records its decisions in it too)."""
    return spec.output_dir / "ledger"


def commitment_salt_path() -> Path:
    """The node's secret salt for data commitments (hiding: the hash alone reveals nothing)."""
    return node_home() / "commitment-salt"


def checkpoint_dir(spec: FederationSpec) -> Path:
    """The coordinator's per-round checkpoints of the global model."""
    return spec.output_dir / "checkpoints" / spec.name


def deployment_dir(spec: FederationSpec) -> Path:
    """The steward's deployment folder: TLS material, the node allow-list (``nodes/``),
    the SuperLink's state file and the ``flwr`` connection (``flwr-home/``)."""
    return spec.output_dir / "deployment"


def node_keys_dir(spec: FederationSpec) -> Path:
    """A node's Flower authentication keys for this federation, in its state folder."""
    return node_home() / "node-keys" / spec.name
