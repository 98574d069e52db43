"""What a participant serves: its part of a published model over its own rows.

A vertical model's part is the ONNX graph the party filed at the end of training (in its
node folder, checked against the SHA-256 the model card records); a horizontal model (the
IoT model) is served whole by each node that holds subjects' features. Either way the
participant answers only partial results: the part's output for each subject and, for
reason codes, the output again with each occlusion group in turn set to the node's average
(:mod:`models.occlusion`: a feature alone, or a categorical's one-hot columns together), so
the coordinator can rank them by how much they moved the score. Raw feature values never
leave, with one exception a reason code needs: asked to explain, the node names the subject's
own category of each categorical it holds (the phrase "main crop: fruit" says it anyway).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.card import ModelCard
from models.federation import FederationSpec, ParticipantSpec
from models.occlusion import OcclusionGroup, cover
from models.onnx_export import OnnxModel
from models.registry import ModelRegistry
from models.schema import TabularSchema
from models.specs import card_occlusion_groups
from models.tabular import TabularData, load_table
from models.vertical_parts import PartScorer
from participants.local_data import declared_schema
from participants.vertical_state import part_dir

__all__ = ["PartialResult", "ServedPart", "ServingError", "load_part"]

logger = logging.getLogger(__name__)

PART_FILE = "part.onnx"


class ServingError(Exception):
    """A part cannot be served as asked; ``status`` is the HTTP status it maps to."""

    def __init__(self, message: str, *, status: int = 404) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PartialResult:
    """Outputs for the subjects this node holds (``missing``: those it does not); when
    explaining, the outputs with each occlusion group occluded, by group name, and each
    subject's own category of each categorical (``levels``, by group name)."""

    outputs: dict[str, list[float]]
    occluded: dict[str, dict[str, list[float]]]
    missing: list[str]
    levels: dict[str, dict[str, str]] = field(default_factory=dict)


class ServedPart:
    """One model version's part at this node: a scorer and the node's own rows."""

    def __init__(
        self,
        *,
        model: str,
        version: str,
        party: str,
        features: Sequence[str],
        categories: Sequence[str],
        table: TabularData,
        run: PartScorer | OnnxModel,
        groups: Sequence[OcclusionGroup] = (),
    ) -> None:
        self.model, self.version, self.party = model, version, party
        self.features = tuple(features)
        self.categories = tuple(categories)
        stray = sorted({c for g in groups for c in g.columns} - set(self.features))
        if stray:
            raise ServingError(
                f"occlusion groups name features {stray} that {model} does not read", status=409
            )
        #: What one occluded evaluation replaces: a feature alone or a categorical's columns.
        self.groups = cover(self.features, groups)
        column = {f: j for j, f in enumerate(self.features)}
        self._masks = np.zeros((len(self.groups), len(self.features)), dtype=bool)
        for j, group in enumerate(self.groups):
            self._masks[j, [column[c] for c in group.columns]] = True
        self._categoricals = [
            (g.name, np.array([column[c] for c in g.columns]), g.levels)
            for g in self.groups
            if g.categorical
        ]
        self._row = {str(i): n for n, i in enumerate(table.ids)}
        self._x = np.asarray(table.features, dtype=np.float32)
        self._baseline = (
            self._x.mean(axis=0) if len(self._x) else np.zeros(len(self.features), np.float32)
        )
        self._run = run
        #: "partial" for a vertical part, else the whole model's "probability" or "logit".
        self.output_kind = run.output_kind if isinstance(run, OnnxModel) else "partial"

    def pseudonyms(self, key: bytes) -> list[str]:
        """HMAC-SHA-256 under ``key`` of every id this node holds (routing, not identity)."""
        return sorted(hmac.new(key, s.encode(), hashlib.sha256).hexdigest() for s in self._row)

    def _outputs(self, matrix: np.ndarray) -> np.ndarray:
        if isinstance(self._run, OnnxModel):
            return self._run.predict(matrix).astype(np.float64).reshape(-1, 1)
        out = self._run.score(matrix)
        return out.reshape(len(matrix), -1)

    def infer(self, subject_ids: Sequence[str], *, explain: bool) -> PartialResult:
        """The part's output for each held subject; with ``explain``, also with each
        occlusion group occluded, and each subject's own category of each categorical."""
        held = [s for s in subject_ids if s in self._row]
        missing = [s for s in subject_ids if s not in self._row]
        if not held:
            return PartialResult({}, {}, missing)
        rows = self._x[[self._row[s] for s in held]]
        base = self._outputs(rows)
        outputs = {s: base[k].tolist() for k, s in enumerate(held)}
        if not explain:
            return PartialResult(outputs, {}, missing)
        # One evaluation per subject and group: the group's columns set to their averages.
        stacked = np.where(self._masks[None], self._baseline[None, None], rows[:, None])
        moved = self._outputs(stacked.reshape(-1, len(self.features)))
        moved = moved.reshape(len(held), len(self.groups), -1)
        occluded = {
            s: {g.name: moved[k, j].tolist() for j, g in enumerate(self.groups)}
            for k, s in enumerate(held)
        }
        return PartialResult(outputs, occluded, missing, self._levels(held, rows))

    def _levels(self, held: Sequence[str], rows: np.ndarray) -> dict[str, dict[str, str]]:
        """Each subject's category of each categorical: the one indicator set (none named
        when no indicator or several are; a subject with none named is left out)."""
        levels: dict[str, dict[str, str]] = {}
        for name, columns, names in self._categoricals:
            on = rows[:, columns] > 0.5
            (single,) = np.nonzero(on.sum(axis=1) == 1)
            picked = on.argmax(axis=1)
            for k in single.tolist():
                levels.setdefault(held[k], {})[name] = names[int(picked[k])]
        return levels


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_part(
    registry: ModelRegistry,
    *,
    model: str,
    version: str | None,
    federation: FederationSpec,
    participant: ParticipantSpec,
) -> ServedPart:
    """This participant's part of ``model`` (latest version if ``None``), over its rows."""
    registered = registry.resolve(model, version)
    card: ModelCard = registered.card
    schema = declared_schema(federation, participant)
    if card.mode == "vertical":
        refs = {p["party"]: p for p in card.architecture.get("parts", [])}
        ref = refs.get(participant.name)
        if ref is None:
            raise ServingError(f"{model} {registered.version} has no part at {participant.name}")
        path = part_dir(federation.name, participant.name, str(ref["export_id"])) / PART_FILE
        if not path.exists():
            raise ServingError(f"the part of {model} {registered.version} is not on this node")
        if _sha256(path) != ref["sha256"]:
            raise ServingError(
                f"the part of {model} {registered.version} on this node does not match the "
                "card's SHA-256; refusing to serve it",
                status=409,
            )
        features = tuple(ref["features"])
        run: PartScorer | OnnxModel = PartScorer(path, threads=1)
        groups = card_occlusion_groups(card, party=participant.name)
    else:
        features = TabularSchema.from_dict(card.schema).feature_names
        run = OnnxModel(registered.onnx_path, threads=1)
        groups = card_occlusion_groups(card)
    if features != schema.feature_names:
        raise ServingError(
            f"{participant.name}'s data file declares other features than {model} reads",
            status=409,
        )
    table = load_table(participant.file, schema, require_label=False)
    logger.info(
        "serving %s %s at %s over %d rows",
        model,
        registered.version,
        participant.name,
        len(table.ids),
    )
    return ServedPart(
        model=model,
        version=registered.version,
        party=participant.name,
        features=features,
        categories=participant.categories,
        table=table,
        run=run,
        groups=[g for g in groups if g.categorical],
    )
