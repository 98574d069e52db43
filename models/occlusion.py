"""Occlusion groups: the feature columns a reason code occludes, and phrases, together.

Reason codes come from occlusion (Zeiler & Fergus 2014, "Visualizing and Understanding
Convolutional Networks", applied to tabular inputs): a feature's contribution is how much the
score falls when it is set to the node's average. A loan officer reads a categorical (the
farmer's main crop) as one feature, while the model reads it one-hot encoded
(``main_crop_rice``, ``main_crop_corn``, ...). Occluding one indicator at a time would give a
fruit farmer a reason per crop ("main crop: corn"); so a categorical's columns form one
*group*, replaced together by their averages (the category frequencies) in one evaluation,
and phrased once with the subject's own category. Every other feature is a group of its own.

The groups travel with the published model (the card records a part's categorical groups), so
the node that occludes and the coordinator that phrases agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .errors import SchemaError

__all__ = [
    "CARD_KEY",
    "OcclusionGroup",
    "cover",
    "groups_from_card",
    "groups_to_card",
    "one_hot_name",
]

#: Key of a part's (or a horizontal model's architecture's) categorical groups in a card.
CARD_KEY: Final = "occlusion_groups"


def one_hot_name(column: str, level: str) -> str:
    """The indicator feature for ``column == level`` (``main_crop_rice``)."""
    return f"{column}_{level}"


@dataclass(frozen=True)
class OcclusionGroup:
    """Columns occluded together: one feature (``levels`` empty, ``columns == (name,)``) or
    a categorical's one-hot columns, ``levels[i]`` being the category ``columns[i]`` marks."""

    name: str
    columns: tuple[str, ...]
    levels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "levels", tuple(self.levels))
        if not self.name or not self.columns:
            raise SchemaError(f"an occlusion group needs a name and columns, got {self!r}")
        if len(set(self.columns)) != len(self.columns):
            raise SchemaError(f"group {self.name!r} names a column twice: {list(self.columns)}")
        if self.levels and len(self.levels) != len(self.columns):
            raise SchemaError(
                f"group {self.name!r}: one level per column expected, got {len(self.levels)} "
                f"levels for {len(self.columns)} columns"
            )
        if not self.levels and self.columns != (self.name,):
            raise SchemaError(
                f"group {self.name!r} without levels must be that one feature, got "
                f"{list(self.columns)}"
            )

    @property
    def categorical(self) -> bool:
        """Whether this is a categorical's one-hot columns (phrased with a level)."""
        return bool(self.levels)

    @classmethod
    def one_hot(cls, column: str, levels: Sequence[str]) -> OcclusionGroup:
        """The group of ``column``'s indicators, :func:`one_hot_name` of each level."""
        return cls(column, tuple(one_hot_name(column, lv) for lv in levels), tuple(levels))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "columns": list(self.columns), "levels": list(self.levels)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OcclusionGroup:
        try:
            return cls(
                str(data["name"]),
                tuple(str(c) for c in data["columns"]),
                tuple(str(lv) for lv in data.get("levels", ())),
            )
        except (KeyError, TypeError, AttributeError, SchemaError) as exc:
            raise SchemaError(f"malformed occlusion group {data!r}: {exc}") from None


def cover(
    features: Sequence[str], categoricals: Sequence[OcclusionGroup]
) -> tuple[OcclusionGroup, ...]:
    """Every feature in exactly one group, in feature order (a categorical where its first
    column is): ``categoricals`` whose columns are among ``features`` (a vertical party holds
    its own), every other feature alone."""
    index = {f: k for k, f in enumerate(features)}
    chosen: list[tuple[int, OcclusionGroup]] = []
    taken: set[str] = set()
    for group in categoricals:
        if not group.categorical:
            raise SchemaError(f"{group.name!r} is not a categorical's group")
        pairs = zip(group.columns, group.levels, strict=True)
        held = [(index[c], c, lv) for c, lv in pairs if c in index]
        if not held:
            continue
        clash = taken.intersection(c for _, c, _ in held)
        if clash:
            raise SchemaError(f"columns {sorted(clash)} are in two occlusion groups")
        taken.update(c for _, c, _ in held)
        held.sort()
        group = OcclusionGroup(
            group.name, tuple(c for _, c, _ in held), tuple(lv for *_, lv in held)
        )
        chosen.append((held[0][0], group))
    chosen += [(k, OcclusionGroup(f, (f,))) for f, k in index.items() if f not in taken]
    chosen.sort(key=lambda item: item[0])
    groups = tuple(group for _, group in chosen)
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        raise SchemaError(f"occlusion group names clash with feature names: {names}")
    return groups


def groups_to_card(groups: Sequence[OcclusionGroup]) -> list[dict[str, Any]]:
    """The categorical groups among ``groups``, as a card records them."""
    return [g.to_dict() for g in groups if g.categorical]


def groups_from_card(entry: Mapping[str, Any]) -> tuple[OcclusionGroup, ...] | None:
    """The categorical groups a card entry (a part, or a horizontal architecture) records;
    ``None`` for a card published before groups were recorded."""
    recorded = entry.get(CARD_KEY)
    if recorded is None:
        return None
    if not isinstance(recorded, Sequence) or isinstance(recorded, str):
        raise SchemaError(f"{CARD_KEY} must be a list, got {type(recorded).__name__}")
    groups = tuple(OcclusionGroup.from_dict(g) for g in recorded)
    if not all(g.categorical for g in groups):
        raise SchemaError(f"{CARD_KEY} lists only categoricals")
    return groups
