"""Tabular schemas: which columns a participant's table holds, their types and ranges.

A schema is the data contract of a federation: every participant must hold the same
features in the same order (horizontal mode), and the schema's hash goes into model cards
so that a model can be traced to the exact contract it was trained on.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast, get_args

from models.errors import SchemaError, did_you_mean

__all__ = ["FEATURE_TYPES", "FeatureSpec", "FeatureType", "TabularSchema"]

FeatureType = Literal["float", "int", "bool"]
FEATURE_TYPES: Final[tuple[str, ...]] = get_args(FeatureType)

#: Tag mixed into the hash so a future change of the canonical form changes every hash.
_HASH_FORMAT: Final = "fedrisk.tabular-schema/1"
_SCHEMA_KEYS: Final = ("id", "label", "features")
_FEATURE_KEYS: Final = ("name", "type", "min", "max")


@dataclass(frozen=True)
class FeatureSpec:
    """One feature column: its name, value type and optional inclusive range.

    ``min`` and ``max`` are stored as floats (``0`` and ``0.0`` are the same bound), so
    that equal schemas always hash alike. ``bool`` features take no range.
    """

    name: str
    type: FeatureType
    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise SchemaError(f"feature name must be a non-empty string, got {self.name!r}")
        if self.type not in FEATURE_TYPES:
            raise SchemaError(
                f"feature {self.name!r}: type must be one of {', '.join(FEATURE_TYPES)}, "
                f"got {self.type!r}{did_you_mean(str(self.type), FEATURE_TYPES)}"
            )
        for bound in ("min", "max"):
            object.__setattr__(self, bound, self._as_bound(bound, getattr(self, bound)))
        if self.type == "bool" and (self.min is not None or self.max is not None):
            raise SchemaError(f"feature {self.name!r}: a bool feature takes no min/max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise SchemaError(f"feature {self.name!r}: min {self.min} is above max {self.max}")

    def _as_bound(self, which: str, value: object) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SchemaError(f"feature {self.name!r}: {which} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise SchemaError(f"feature {self.name!r}: {which} must be finite, got {value}")
        return float(value)

    def to_dict(self) -> dict[str, Any]:
        """Mapping form; the range keys appear only when set."""
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, key: str = "feature") -> FeatureSpec:
        """Build from a mapping such as a TOML inline table; ``key`` locates it in errors."""
        if not isinstance(data, Mapping):
            raise SchemaError(f"must be a table with name and type, got {data!r}", key=key)
        _reject_unknown(data, _FEATURE_KEYS, key)
        for required in ("name", "type"):
            if required not in data:
                raise SchemaError("missing", key=f"{key}.{required}")
        try:
            return cls(
                name=data["name"],
                type=cast(FeatureType, data["type"]),
                min=data.get("min"),
                max=data.get("max"),
            )
        except SchemaError as exc:
            raise SchemaError(exc.reason, key=key) from None


@dataclass(frozen=True)
class TabularSchema:
    """The columns of a participant's table.

    ``id`` names the column of row identifiers (subject ids), ``label`` the 0/1 outcome
    column (``None`` for feature-only parties and scoring data) and ``features`` the model
    inputs, in the order the model sees them.
    """

    id: str
    label: str | None
    features: tuple[FeatureSpec, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        if not isinstance(self.id, str) or not self.id.strip():
            raise SchemaError(f"id column must be a non-empty string, got {self.id!r}")
        if self.label is not None and (not isinstance(self.label, str) or not self.label):
            raise SchemaError(f"label column must be a non-empty string, got {self.label!r}")
        if not self.features:
            raise SchemaError("a schema needs at least one feature")
        if self.label == self.id:
            raise SchemaError(f"label column {self.label!r} is also the id column")
        seen: set[str] = set()
        for spec in self.features:
            if not isinstance(spec, FeatureSpec):
                raise SchemaError(f"features must be FeatureSpec, got {spec!r}")
            if spec.name in seen:
                raise SchemaError(f"feature {spec.name!r} appears twice")
            if spec.name in (self.id, self.label):
                raise SchemaError(f"feature {spec.name!r} is also the id or label column")
            seen.add(spec.name)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Feature column names in model order."""
        return tuple(spec.name for spec in self.features)

    def feature(self, name: str) -> FeatureSpec:
        """The spec of feature ``name``; raises :class:`SchemaError` if there is none."""
        for spec in self.features:
            if spec.name == name:
                return spec
        raise SchemaError(f"no feature {name!r}{did_you_mean(name, self.feature_names)}")

    def without_label(self) -> TabularSchema:
        """The same schema for a party or a scoring request that holds no labels."""
        return TabularSchema(id=self.id, label=None, features=self.features)

    def to_dict(self) -> dict[str, Any]:
        """JSON- and TOML-friendly mapping; ``label`` is omitted when there is none."""
        out: dict[str, Any] = {"id": self.id}
        if self.label is not None:
            out["label"] = self.label
        out["features"] = [spec.to_dict() for spec in self.features]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TabularSchema:
        """Inverse of :meth:`to_dict`; errors carry the key path (``features[1].type``)."""
        if not isinstance(data, Mapping):
            raise SchemaError(f"must be a table, got {type(data).__name__}")
        _reject_unknown(data, _SCHEMA_KEYS, None)
        if "id" not in data:
            raise SchemaError("missing", key="id")
        for name in ("id", "label"):
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                raise SchemaError(f"must be a string, got {value!r}", key=name)
        raw_features = data.get("features")
        if not isinstance(raw_features, list | tuple) or not raw_features:
            raise SchemaError("must be a non-empty list of {name, type} tables", key="features")
        features = tuple(
            FeatureSpec.from_dict(item, key=f"features[{i}]") for i, item in enumerate(raw_features)
        )
        return cls(id=data["id"], label=data.get("label"), features=features)

    def hash(self) -> str:
        """Hex SHA-256 of the schema's canonical JSON.

        Canonical form: ``{"format": ..., "id", "label", "features": [...]}`` with sorted
        keys, no whitespace, floats for ranges and features **in model order** — a
        reordered feature list is a different contract (the weights would be
        misaligned), so it hashes differently. Any change of a name, type or range
        changes the hash too.
        """
        canonical = {
            "format": _HASH_FORMAT,
            "id": self.id,
            "label": self.label,
            "features": [[s.name, s.type, s.min, s.max] for s in self.features],
        }
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def compare(self, other: TabularSchema) -> list[str]:
        """Describe in words how ``other`` differs from this (expected) schema.

        Returns an empty list when both are the same contract. Wording is meant for
        refusal messages, e.g. ``"feature 'x3' missing"``, ``"feature 'x1' type int vs
        float"`` (expected type first), ``"range of 'x2' differs: [0.0, 1.0] vs [0.0, 2.0]"``.
        """
        out: list[str] = []
        if self.id != other.id:
            out.append(f"id column {self.id!r} vs {other.id!r}")
        if self.label != other.label:
            out.append(f"label {_or_none(self.label)} vs {_or_none(other.label)}")
        theirs = {spec.name: spec for spec in other.features}
        mine = set(self.feature_names)
        for spec in self.features:
            if (their := theirs.get(spec.name)) is None:
                out.append(f"feature {spec.name!r} missing")
            elif spec.type != their.type:
                out.append(f"feature {spec.name!r} type {spec.type} vs {their.type}")
            elif (spec.min, spec.max) != (their.min, their.max):
                out.append(f"range of {spec.name!r} differs: {_range(spec)} vs {_range(their)}")
        out.extend(f"feature {n!r} unexpected" for n in other.feature_names if n not in mine)
        common_mine = [n for n in self.feature_names if n in theirs]
        common_theirs = [n for n in other.feature_names if n in mine]
        if common_mine != common_theirs:
            pos = next(
                i for i, (a, b) in enumerate(zip(common_mine, common_theirs, strict=True)) if a != b
            )
            out.append(
                f"feature order differs: position {pos + 1} is {common_mine[pos]!r} "
                f"vs {common_theirs[pos]!r}"
            )
        return out


def _reject_unknown(data: Mapping[str, Any], allowed: Iterable[str], key: str | None) -> None:
    allowed = tuple(allowed)
    for name in data:
        if name not in allowed:
            where = f"{key}.{name}" if key else str(name)
            raise SchemaError(f"unknown key{did_you_mean(str(name), allowed)}", key=where)


def _or_none(value: str | None) -> str:
    return "none" if value is None else repr(value)


def _range(spec: FeatureSpec) -> str:
    low = "-inf" if spec.min is None else repr(spec.min)
    high = "inf" if spec.max is None else repr(spec.max)
    return f"[{low}, {high}]"
