"""Model cards: what a published model version is, how it was trained and what it cost.

A card travels with every registered version (``card.json`` for machines, ``card.md`` for
people), after Mitchell et al. 2019, "Model Cards for Model Reporting" (FAT*). It records
the privacy parameters actually used and the ε each participant spent (DESIGN.md: the
privacy parameters actually used are recorded with the model), and the SHA-256 of the
ONNX graph, which identifies the served parameters.

JSON cannot carry NaN or infinity: :meth:`ModelCard.to_json` writes such numbers as
``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Final

from .errors import ModelsError

__all__ = ["CARD_FORMAT", "ModelCard"]

#: Format tag written into every card; bumped when the card's fields change meaning.
CARD_FORMAT: Final = "fedrisk.model-card/1"


@dataclass(frozen=True)
class ModelCard:
    """The record of one model version.

    ``participants`` maps participant names to the number of rows they trained on;
    ``epsilon`` maps participant names to the ε they spent on this model (only DP
    participants appear); ``privacy_parameters`` holds what the privacy mode used (noise
    multiplier, max grad norm, δ, accountant, CKKS parameters); ``metrics`` holds the final
    ``auc`` and ``log_loss`` and the per-round list under ``rounds``.
    """

    name: str
    version: str
    created_at: str
    spec_name: str
    architecture: Mapping[str, Any]
    schema: Mapping[str, Any]
    schema_hash: str
    mode: str
    participants: Mapping[str, int]
    rounds: int
    strategy: str
    privacy_mode: str
    privacy_parameters: Mapping[str, Any] = field(default_factory=dict)
    epsilon: Mapping[str, float] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    onnx_sha256: str = ""
    n_parameters: int = 0
    notes: str = ""
    #: Data categories each participant declared for this model (what consent must cover).
    data_categories: Mapping[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping, with the format tag first."""
        body = {item.name: _plain(getattr(self, item.name)) for item in fields(self)}
        return {"format": CARD_FORMAT, **body}

    def to_json(self) -> str:
        """Indented UTF-8 JSON; NaN and infinities become ``null``."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        """Inverse of :meth:`to_dict`; unknown keys are an error (a newer card format)."""
        tag = data.get("format")
        if tag != CARD_FORMAT:
            raise ModelsError(f"unsupported model card format {tag!r}; expected {CARD_FORMAT!r}")
        names = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - names - {"format"})
        if unknown:
            raise ModelsError(f"model card has unknown fields {unknown}")
        missing = sorted(
            item.name for item in fields(cls) if item.name not in data and _required(item.name)
        )
        if missing:
            raise ModelsError(f"model card lacks fields {missing}")
        values = {key: value for key, value in data.items() if key in names}
        values["rounds"] = int(values["rounds"])
        values["n_parameters"] = int(values.get("n_parameters", 0))
        values["participants"] = {str(k): int(v) for k, v in values["participants"].items()}
        values["epsilon"] = {
            str(k): (float("nan") if v is None else float(v))
            for k, v in values.get("epsilon", {}).items()
        }
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        """Parse a card written by :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelsError(f"model card is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ModelsError("model card must be a JSON object")
        return cls.from_dict(data)

    def to_markdown(self) -> str:
        """A readable summary for model stewards, auditors and loan-officer documentation."""
        lines = [
            f"# Model card: {self.name} {self.version}",
            "",
            f"- Created: {self.created_at}",
            f"- Model spec: `{self.spec_name}`",
            f"- Architecture: {_architecture_text(self.architecture)}"
            f" ({self.n_parameters} parameters)",
            f"- Federation mode: {self.mode}; strategy {self.strategy}; {self.rounds} rounds",
            f"- Schema hash: `{self.schema_hash}`",
            f"- ONNX SHA-256: `{self.onnx_sha256}`",
            "",
            "## Participants",
            "",
            "| participant | rows | epsilon spent |",
            "|---|---:|---:|",
        ]
        for participant, rows in sorted(self.participants.items()):
            spent = self.epsilon.get(participant)
            lines.append(
                f"| {participant} | {rows} | {_number(spent) if spent is not None else '-'} |"
            )
        lines += ["", "## Privacy", "", f"- Mode: `{self.privacy_mode}`"]
        lines += [
            f"- {key}: {_number(value)}" for key, value in sorted(self.privacy_parameters.items())
        ]
        lines += ["", "## Metrics", ""]
        lines += [
            f"- {key}: {_number(value)}"
            for key, value in sorted(self.metrics.items())
            if not isinstance(value, Sequence | Mapping) or isinstance(value, str)
        ]
        per_round = self.metrics.get("rounds")
        if isinstance(per_round, Sequence) and per_round and not isinstance(per_round, str):
            lines += ["", _round_table(per_round)]
        lines += ["", "## Features", ""]
        parties = self.schema.get("parties")
        if isinstance(parties, Mapping):
            parts = {p.get("party"): p for p in self.architecture.get("parts", [])}
            for party, schema in parties.items():
                part = parts.get(party, {})
                lines += [
                    f"### At {party} (part `{str(part.get('sha256', '?'))[:16]}…`, "
                    f"export {part.get('export_id', '?')}; never leaves {party}'s node)",
                    "",
                    *_feature_lines(schema.get("features", [])),
                    "",
                ]
        else:
            lines += _feature_lines(self.schema.get("features", []))
        if self.notes:
            lines += ["", "## Notes", "", self.notes]
        return "\n".join(lines) + "\n"


def _feature_lines(features: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    for feature in features:
        bounds = ""
        if "min" in feature or "max" in feature:
            bounds = f" [{feature.get('min', '-inf')}, {feature.get('max', 'inf')}]"
        lines.append(f"- `{feature['name']}` ({feature['type']}){bounds}")
    return lines


def _required(name: str) -> bool:
    return name not in {
        "privacy_parameters",
        "epsilon",
        "metrics",
        "onnx_sha256",
        "n_parameters",
        "notes",
        "data_categories",
    }


def _plain(value: Any) -> Any:
    """Mappings to dicts, tuples to lists, non-finite floats to ``None``."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else "n/a"
    if value is None:
        return "n/a"
    if isinstance(value, Mapping):
        return ", ".join(f"{key}={_number(item)}" for key, item in sorted(value.items()))
    return str(value)


def _architecture_text(architecture: Mapping[str, Any]) -> str:
    kind = architecture.get("kind", "?")
    parts = architecture.get("parts")
    if isinstance(parts, Sequence) and parts:
        widths = " + ".join(f"{p.get('party')}: {len(p.get('features', []))}" for p in parts)
        combiner = (
            "the guest's top network on the joined cut layers, then the sigmoid"
            if kind == "vertical-split-nn"
            else "sigmoid of the sum"
        )
        return f"{kind} (parts {widths} features; combiner: {combiner})"
    hidden = architecture.get("hidden") or []
    width = architecture.get("n_features", "?")
    layers = " -> ".join(str(item) for item in [width, *hidden, 1])
    return f"{kind} ({layers})"


def _round_table(per_round: Sequence[Any]) -> str:
    keys = sorted({key for row in per_round if isinstance(row, Mapping) for key in row})
    if "round" in keys:
        keys.remove("round")
        keys.insert(0, "round")
    header = "| " + " | ".join(keys) + " |"
    rule = "|" + "---:|" * len(keys)
    rows = [
        "| " + " | ".join(_number(row.get(key)) for key in keys) + " |"
        for row in per_round
        if isinstance(row, Mapping)
    ]
    return "\n".join([header, rule, *rows])
