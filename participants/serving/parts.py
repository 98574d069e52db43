"""What a participant serves: its part of a published model over its own rows.

A vertical model's part is the ONNX graph the party filed at the end of training (in its
node folder, checked against the SHA-256 the model card records); a horizontal model (the
IoT model) is served whole by each node that holds subjects' features. Either way the
participant answers only partial results: the part's output for each subject and, for
reason codes, the output again with each feature in turn set to the node's average value
(occlusion), so the coordinator can rank features by how much they moved the score. Raw
feature values never leave.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.card import ModelCard
from models.federation import FederationSpec, ParticipantSpec
from models.onnx_export import OnnxModel
from models.registry import ModelRegistry
from models.schema import TabularSchema
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
    """Outputs for the subjects this node holds (``missing``: those it does not)."""

    outputs: dict[str, list[float]]
    occluded: dict[str, dict[str, list[float]]]
    missing: list[str]


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
    ) -> None:
        self.model, self.version, self.party = model, version, party
        self.features = tuple(features)
        self.categories = tuple(categories)
        self._row = {str(i): n for n, i in enumerate(table.ids)}
        self._x = np.asarray(table.features, dtype=np.float32)
        self._baseline = self._x.mean(axis=0) if len(self._x) else np.zeros(len(self.features))
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
        """The part's output for each held subject; with ``explain``, also per feature."""
        held = [s for s in subject_ids if s in self._row]
        missing = [s for s in subject_ids if s not in self._row]
        if not held:
            return PartialResult({}, {}, missing)
        rows = self._x[[self._row[s] for s in held]]
        base = self._outputs(rows)
        outputs = {s: base[k].tolist() for k, s in enumerate(held)}
        occluded: dict[str, dict[str, list[float]]] = {}
        if explain:
            d = len(self.features)
            stacked = np.repeat(rows, d, axis=0)
            columns = np.tile(np.arange(d), len(held))
            stacked[np.arange(len(stacked)), columns] = self._baseline[columns]
            moved = self._outputs(stacked).reshape(len(held), d, -1)
            occluded = {
                s: {f: moved[k, j].tolist() for j, f in enumerate(self.features)}
                for k, s in enumerate(held)
            }
        return PartialResult(outputs, occluded, missing)


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
    else:
        features = TabularSchema.from_dict(card.schema).feature_names
        run = OnnxModel(registered.onnx_path, threads=1)
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
    )
