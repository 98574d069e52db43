"""Federation files for the demo's vertical models: bank (labels) x government platform.

One file per model (``farmer_credit``, ``sme_risk``): each party names the model-input
table its node derived (:mod:`participants.demo.model_views`), its id column, its consent
log and categories, and the features :mod:`models.specs` gives it; the bank names the label.
"""

from __future__ import annotations

import logging
from pathlib import Path

from models.specs import get_spec
from participants.demo.errors import ScenarioError
from participants.demo.manifest import ScenarioManifest
from participants.demo.toml_text import participant_lines, toml_feature, toml_number, toml_string

__all__ = ["VERTICAL_DEMO_MODELS", "write_vertical_federation"]

logger = logging.getLogger(__name__)

#: The demo's vertical models, in the order the demo trains them.
VERTICAL_DEMO_MODELS = ("farmer_credit", "sme_risk")


def write_vertical_federation(
    manifest: ScenarioManifest,
    path: Path,
    *,
    model: str,
    privacy: str = "he",
    epochs: int = 6,
    batch_size: int = 256,
    learning_rate: float = 0.15,
    holdout: float = 0.25,
    label_noise_multiplier: float | None = None,
    seed: int | None = None,
    protocol: str = "logistic-regression",
) -> Path:
    """Write the vertical federation TOML of ``model`` over the scenario's bank and gov.

    ``protocol = "split-nn"`` writes a split network instead (privacy ``dp``: cut-layer DP
    at the federation-file defaults, or ``none``)."""
    if model not in VERTICAL_DEMO_MODELS:
        raise ValueError(f"model must be one of {VERTICAL_DEMO_MODELS}, got {model!r}")
    allowed = ("dp", "none") if protocol == "split-nn" else ("he", "none")
    if privacy not in allowed:
        raise ValueError(f"{protocol} privacy must be one of {allowed}, got {privacy!r}")
    suffix = "-split" if protocol == "split-nn" else ""
    spec = get_spec(model)
    path = Path(path)
    base = path.parent
    as_of = manifest.as_of.isoformat().replace("+00:00", "Z")
    lines = [
        f"# Demo {model} federation (vertical: bank x government platform), generated from the",
        "# scenario manifest.",
        "[federation]",
        f"name = {toml_string('demo-' + model.replace('_', '-') + suffix)}",
        f"model = {toml_string(model)}",
        'mode = "vertical"',
        f"privacy = {toml_string(privacy)}",
        f"rounds = {epochs}",
        f"batch_size = {batch_size}",
        f"learning_rate = {toml_number(learning_rate)}",
        f"seed = {manifest.seed if seed is None else seed}",
        'consent_purpose = "model_training"',
        f"consent_as_of = {toml_string(as_of)}",
        "",
        "[vertical]",
        f"protocol = {toml_string(protocol)}",
        f"holdout = {toml_number(holdout)}",
    ]
    if label_noise_multiplier is not None:
        lines.append(f"label_noise_multiplier = {toml_number(label_noise_multiplier)}")
    nodes = {node.name: node for node in manifest.nodes}
    for party in spec.parties:
        node = nodes.get(party)
        if node is None:
            raise ScenarioError(f"the scenario has no {party} node")
        table = node.dataset(model)
        label = f", label = {toml_string(table.label_column)}" if table.label_column else ""
        features = ", ".join(
            toml_feature(f.name, f.type, f.min, f.max) for f in spec.party_schema(party).features
        )
        lines += [
            *participant_lines(manifest, node, table, base),
            f"schema = {{ id = {toml_string(table.id_column)}{label}, features = [{features}] }}",
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    logger.info("wrote the %s vertical federation", model)
    return path
