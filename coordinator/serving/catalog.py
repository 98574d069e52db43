"""The models the scoring API serves: each one's parties, data categories and combination.

A served model is the latest version of a registered model whose data categories are known
(from its model spec): a vertical model fans out to each party of its card and combines
their outputs with the card's combiner; a horizontal model (the IoT model) is run whole by
whichever of its nodes holds the subject. Reason codes come from occlusion: each party also
answers its output with each of its occlusion groups set to the node's average (a feature
alone, or a categorical's one-hot columns together: :mod:`models.occlusion`, as the card
records them), and a group's contribution is how much the score falls when it is (DESIGN.md,
Serving). A categorical is one reason, phrased with the subject's own category.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from models.card import ModelCard
from models.errors import ModelsError
from models.occlusion import OcclusionGroup
from models.registry import ModelRegistry, RegisteredModel
from models.schema import TabularSchema
from models.scoring import risk_band
from models.specs import MODEL_SPECS, ModelSpec, card_occlusion_groups
from models.vertical_parts import Combiner

__all__ = ["Catalog", "Reason", "ServedModel", "consent_categories"]

logger = logging.getLogger(__name__)

TOP_REASONS = 4


@dataclass(frozen=True)
class Reason:
    """One reason code: the feature (a categorical's name for all its one-hot columns), its
    phrase for a loan officer, and its weight."""

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
    #: Per party: its occlusion groups by group name and by each of their columns' names.
    groups: Mapping[str, Mapping[str, OcclusionGroup]] = field(default_factory=dict)
    #: When this version was published (its card's ``created_at``): its age in decisions.
    created_at: str = ""

    def reason_text(self, feature: str, level: str | None = None) -> str:
        """The phrase of a feature, or of a categorical with the subject's own ``level``."""
        if self.spec is not None:
            return self.spec.group_phrase(feature, level)
        readable = feature.replace("_", " ")
        return f"{readable}: {level}" if level is not None else f"unusual value of {readable}"

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
        levels: Mapping[str, Mapping[str, str]] | None = None,
    ) -> list[Reason]:
        """The occlusion groups that pushed one subject's score up the most (top four), one
        reason per group. ``occluded`` holds each party's outputs by group (an older node's,
        by one-hot column: folded into the column's group), ``levels`` each party's answer of
        the subject's own category per categorical (one its card does not list is ignored).
        """
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
        best: dict[tuple[str, str], Reason] = {}
        for (party, key), m in zip(keys, moved, strict=True):
            if score - m <= 1e-9:
                continue
            group = self.groups.get(party, {}).get(key)
            name = group.name if group is not None else key
            level = (levels or {}).get(party, {}).get(name)
            if group is None or level not in group.levels:
                level = None
            reason = Reason(
                feature=name,
                party=party,
                text=self.reason_text(name, level),
                contribution=round(float(score - m), 6),
            )
            kept = best.get((party, name))
            if kept is None or reason.contribution > kept.contribution:
                best[(party, name)] = reason
        reasons = sorted(best.values(), key=lambda r: -r.contribution)
        return reasons[:TOP_REASONS]

    @staticmethod
    def band(score: float) -> str:
        return risk_band(score)


def _served(registered: RegisteredModel) -> ServedModel:
    card = registered.card
    spec = MODEL_SPECS.get(card.spec_name)
    parties = _parties(card)
    if card.mode == "vertical":
        combiner: Combiner | None = Combiner(registered.onnx_path, threads=1)
        groups = {p: _by_key(card_occlusion_groups(card, party=p)) for p in parties}
    else:
        combiner = None
        whole = _by_key(card_occlusion_groups(card))
        groups = dict.fromkeys(parties, whole)
    return ServedModel(
        name=card.name,
        version=registered.version,
        mode=card.mode,
        parties=parties,
        categories=_categories(card, parties),
        spec=spec,
        combiner=combiner,
        groups=groups,
        created_at=card.created_at,
    )


def _parties(card: ModelCard) -> dict[str, tuple[str, ...]]:
    """Each party of a model version and the features it holds."""
    if card.mode == "vertical":
        return {p["party"]: tuple(p["features"]) for p in card.architecture.get("parts", [])}
    features = TabularSchema.from_dict(card.schema).feature_names
    return {node: tuple(features) for node in card.participants}


def _categories(card: ModelCard, parties: Mapping[str, Sequence[str]]) -> frozenset[str]:
    # What consent must cover: the categories each party declared for the model, else the
    # categories the model spec gives its features.
    spec = MODEL_SPECS.get(card.spec_name)
    categories = {c for party in parties for c in card.data_categories.get(party, [])}
    if not categories and spec is not None:
        wanted = {f for names in parties.values() for f in names}
        categories = {spec.feature_categories[f] for f in wanted if f in spec.feature_categories}
    if not categories:
        raise ModelsError(f"{card.name}: neither its card nor its spec names data categories")
    return frozenset(categories)


def consent_categories(card: ModelCard) -> frozenset[str]:
    """The data categories a ``credit_scoring`` grant must cover to score with ``card``'s
    model (what the scoring API's consent gate asks for)."""
    return _categories(card, _parties(card))


def _by_key(groups: Sequence[OcclusionGroup]) -> dict[str, OcclusionGroup]:
    """Each group by its name and by each of its columns' names."""
    return {key: g for g in groups for key in {g.name, *g.columns}}


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
