"""The models the scoring API serves: each one's parties, data categories and combination.

A served model is the latest version of a registered model whose data categories are known
(from its model spec): a vertical model fans out to each party of its card and combines
their outputs with the card's combiner; a horizontal model (the IoT model) is run whole by
whichever of its nodes holds the subject. Reason codes come from occlusion: each party also
answers its output with each of its features set to the node's average, and a feature's
contribution is how much the score falls when it is (DESIGN.md, Serving).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from models.errors import ModelsError
from models.registry import ModelRegistry, RegisteredModel
from models.schema import TabularSchema
from models.scoring import risk_band
from models.specs import MODEL_SPECS, ModelSpec
from models.vertical_parts import Combiner

__all__ = ["Catalog", "Reason", "ServedModel"]

logger = logging.getLogger(__name__)

TOP_REASONS = 4


@dataclass(frozen=True)
class Reason:
    """One reason code: the feature, its phrase for a loan officer, and its weight."""

    feature: str
    party: str
    text: str
    contribution: float


@dataclass(frozen=True)
class ServedModel:
    """One servable model version."""

    name: str
    version: str
    mode: str
    parties: Mapping[str, tuple[str, ...]]
    categories: frozenset[str]
    spec: ModelSpec | None
    combiner: Combiner | None

    def reason_text(self, feature: str) -> str:
        if self.spec is not None:
            return self.spec.reason_phrase(feature)
        return f"unusual value of {feature.replace('_', ' ')}"

    def combine(self, outputs: Mapping[str, np.ndarray], *, kind: str = "partial") -> np.ndarray:
        """Probabilities from each party's outputs ((n, width) arrays)."""
        if self.combiner is not None:
            return self.combiner.combine({p: np.asarray(v) for p, v in outputs.items()})
        (values,) = outputs.values()
        scores = np.asarray(values, dtype=np.float64).reshape(-1)
        return 1.0 / (1.0 + np.exp(-scores)) if kind == "logit" else scores

    def explain(
        self,
        outputs: Mapping[str, np.ndarray],
        occluded: Mapping[str, Mapping[str, Sequence[float]]],
        *,
        score: float,
        kind: str = "partial",
    ) -> list[Reason]:
        """The features that pushed one subject's score up the most (top four)."""
        rows, keys = [], []
        for party, by_feature in occluded.items():
            for feature, values in by_feature.items():
                parts = {p: np.asarray(v).reshape(1, -1) for p, v in outputs.items()}
                parts[party] = np.asarray(values).reshape(1, -1)
                rows.append(parts)
                keys.append((party, feature))
        if not rows:
            return []
        stacked = {p: np.vstack([r[p] for r in rows]) for p in outputs}
        moved = self.combine(stacked, kind=kind)
        reasons = [
            Reason(
                feature=f,
                party=p,
                text=self.reason_text(f),
                contribution=round(float(score - m), 6),
            )
            for (p, f), m in zip(keys, moved, strict=True)
            if score - m > 1e-9
        ]
        reasons.sort(key=lambda r: -r.contribution)
        return reasons[:TOP_REASONS]

    @staticmethod
    def band(score: float) -> str:
        return risk_band(score)


def _served(registered: RegisteredModel) -> ServedModel:
    card = registered.card
    spec = MODEL_SPECS.get(card.spec_name)
    if card.mode == "vertical":
        parties = {p["party"]: tuple(p["features"]) for p in card.architecture.get("parts", [])}
        combiner: Combiner | None = Combiner(registered.onnx_path, threads=1)
    else:
        features = TabularSchema.from_dict(card.schema).feature_names
        parties = {node: features for node in card.participants}
        combiner = None
    # What consent must cover: the categories each party declared for the model, else the
    # categories the model spec gives its features.
    categories = {c for party in parties for c in card.data_categories.get(party, [])}
    if not categories and spec is not None:
        wanted = {f for names in parties.values() for f in names}
        categories = {spec.feature_categories[f] for f in wanted if f in spec.feature_categories}
    if not categories:
        raise ModelsError(f"{card.name}: neither its card nor its spec names data categories")
    return ServedModel(
        name=card.name,
        version=registered.version,
        mode=card.mode,
        parties=parties,
        categories=frozenset(categories),
        spec=spec,
        combiner=combiner,
    )


class Catalog:
    """The servable models of a registry (latest version of each), loaded once."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.models: dict[str, ServedModel] = {}
        self.skipped: dict[str, str] = {}
        for name in registry.names():
            try:
                self.models[name] = _served(registry.latest(name))
            except (ModelsError, OSError, ValueError) as exc:
                self.skipped[name] = str(exc)
                logger.warning("not serving %s: %s", name, exc)

    def get(self, name: str) -> ServedModel | None:
        return self.models.get(name)
