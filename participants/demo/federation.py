"""Federation file for the demo's horizontal IoT federation over the factory nodes.

Writes the TOML the coordinator's federation parser reads: the federation settings, the DP
parameters, the shared schema (from the scenario manifest's indicator columns), the
steward's evaluation file and one ``[[participants]]`` entry per factory node. Paths are
relative to the TOML file's directory.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

from participants.demo.columns import ColumnSpec
from participants.demo.errors import ScenarioError
from participants.demo.manifest import ScenarioManifest
from participants.demo.toml_text import participant_lines, toml_feature
from participants.demo.toml_text import toml_number as _number
from participants.demo.toml_text import toml_path as _relative
from participants.demo.toml_text import toml_string as _string

__all__ = ["PRIVACY_MODES", "STRATEGIES", "write_iot_federation"]

logger = logging.getLogger(__name__)

PRIVACY_MODES: Final = ("none", "dp", "he", "dp+he")
STRATEGIES: Final = ("fedavg", "fedprox")


def _feature(spec: ColumnSpec) -> str:
    if spec.type == "category":
        raise ScenarioError(f"feature {spec.name!r} is categorical; the IoT schema has none")
    return f"  {toml_feature(spec.name, spec.type, spec.min, spec.max)},"


def write_iot_federation(
    manifest: ScenarioManifest,
    path: Path,
    *,
    privacy: str = "dp+he",
    strategy: str = "fedavg",
    rounds: int = 10,
    min_participants: int = 3,
    local_epochs: int = 2,
    batch_size: int = 64,
    learning_rate: float = 0.05,
    seed: int | None = None,
    target_epsilon: float = 3.0,
    delta: float = 1e-5,
    max_grad_norm: float = 1.0,
    name: str = "demo-iot",
    model: str = "iot_risk",
) -> Path:
    """Write the IoT federation TOML for ``manifest``'s factory nodes to ``path``.

    ``seed`` defaults to the scenario's seed; the consent reference time is the scenario's
    ``as_of``.
    """
    if privacy not in PRIVACY_MODES:
        raise ValueError(f"privacy must be one of {PRIVACY_MODES}, got {privacy!r}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    for label, value in (
        ("rounds", rounds),
        ("min_participants", min_participants),
        ("local_epochs", local_epochs),
        ("batch_size", batch_size),
    ):
        if value < 1:
            raise ValueError(f"{label} must be >= 1, got {value}")
    for label, number in (
        ("learning_rate", learning_rate),
        ("target_epsilon", target_epsilon),
        ("max_grad_norm", max_grad_norm),
    ):
        if not number > 0:
            raise ValueError(f"{label} must be > 0, got {number}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    factories = manifest.factory_nodes
    if len(factories) < min_participants:
        raise ValueError(
            f"min_participants={min_participants} exceeds the {len(factories)} factory nodes"
        )
    if privacy == "none":
        logger.warning("privacy mode 'none': updates leave the factories unprotected")

    path = Path(path)
    base = path.parent
    dataset = factories[0].dataset("indicators")
    as_of = manifest.as_of.isoformat().replace("+00:00", "Z")
    lines = [
        "# Demo IoT risk federation, generated from the scenario manifest.",
        "[federation]",
        f"name = {_string(name)}",
        f"model = {_string(model)}",
        'mode = "horizontal"',
        f"privacy = {_string(privacy)}",
        f"strategy = {_string(strategy)}",
        f"rounds = {rounds}",
        f"min_participants = {min_participants}",
        f"local_epochs = {local_epochs}",
        f"batch_size = {batch_size}",
        f"learning_rate = {_number(learning_rate)}",
        f"seed = {manifest.seed if seed is None else seed}",
        'consent_purpose = "model_training"',
        f"consent_as_of = {_string(as_of)}",
        "",
        "[privacy.dp]",
        f"target_epsilon = {_number(target_epsilon)}",
        f"delta = {_number(delta)}",
        f"max_grad_norm = {_number(max_grad_norm)}",
        "",
        "[schema]",
        f"id = {_string(dataset.id_column)}",
        f"label = {_string(dataset.label_column or 'label')}",
        "features = [",
        *(_feature(spec) for spec in dataset.columns),
        "]",
        "",
        "[evaluation]",
        f"file = {_relative(manifest.path(manifest.eval_file), base)}",
    ]
    for node in factories:
        indicators = node.dataset("indicators")
        if indicators.feature_names != dataset.feature_names:
            raise ScenarioError(f"{node.name} has a different indicator schema")
        lines += participant_lines(manifest, node, indicators, base)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    logger.info("wrote IoT federation with %d participants", len(factories))
    return path
