"""Ids as private set intersection sees them: canonical bytes, duplicates, format profiles.

Two parties can only intersect ids written the same way: ``"00123"`` and ``"123"`` are
different strings and would silently never match. Each party therefore publishes a coarse
*format profile* of its id column (the kind of id and its length range: nothing about any
single id), and the protocol refuses to start when the profiles cannot describe the same
ids, saying what differs.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import PSIError

__all__ = ["IdFormat", "canonical_ids", "id_format"]

_KINDS = (
    ("integer", re.compile(r"[+-]?[0-9]+")),
    ("uscc", re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}")),
    ("alphanumeric", re.compile(r"[0-9A-Za-z_.-]+")),
)


@dataclass(frozen=True)
class IdFormat:
    """What kind of ids a column holds: ``kind``, shortest and longest length, leading zeros."""

    kind: str
    min_length: int
    max_length: int
    leading_zeros: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "min_length": self.min_length,
            "max_length": self.max_length,
            "leading_zeros": self.leading_zeros,
        }

    @classmethod
    def from_dict(cls, data: object) -> IdFormat:
        if not isinstance(data, dict):
            raise PSIError(f"id format profile must be a mapping, got {type(data).__name__}")
        try:
            return cls(
                kind=str(data["kind"]),
                min_length=int(data["min_length"]),
                max_length=int(data["max_length"]),
                leading_zeros=bool(data["leading_zeros"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PSIError(f"malformed id format profile: {exc}") from exc

    def mismatch(self, other: IdFormat) -> str | None:
        """Why ids of ``self`` and ``other`` cannot be the same ids, or None."""
        if self.kind != other.kind:
            return f"ids look like {self.kind} values here and like {other.kind} values there"
        if self.kind == "integer" and self.leading_zeros != other.leading_zeros:
            return "one side writes integer ids with leading zeros, the other without"
        if self.max_length < other.min_length or other.max_length < self.min_length:
            return (
                f"id lengths do not overlap ({self.min_length}-{self.max_length} characters "
                f"here, {other.min_length}-{other.max_length} there)"
            )
        return None


def canonical_ids(values: Iterable[object], *, where: str = "id column") -> list[str]:
    """Ids as stripped strings; empty ids and duplicates are refused, naming a few."""
    ids: list[str] = []
    for row, value in enumerate(values, start=1):
        if value is None or (isinstance(value, float) and value != value):
            raise PSIError(f"{where}: row {row} has no id")
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # pandas reads an int column with gaps as float
        text = str(value).strip()
        if not text:
            raise PSIError(f"{where}: row {row} has an empty id")
        ids.append(text)
    if not ids:
        raise PSIError(f"{where}: no ids")
    counts = Counter(ids)
    duplicates = [value for value, n in counts.items() if n > 1]
    if duplicates:
        shown = ", ".join(repr(v) for v in duplicates[:3])
        raise PSIError(
            f"{where}: {len(duplicates)} id(s) occur more than once (e.g. {shown}); "
            f"{len(ids) - len(counts)} duplicate row(s) in all. Ids must be unique: "
            "deduplicate the file or choose another id column"
        )
    return ids


def id_format(ids: Sequence[str]) -> IdFormat:
    """The coarse format profile of a canonical id list (see the module docstring)."""
    kind = next(
        (name for name, pattern in _KINDS if all(pattern.fullmatch(i) for i in ids)), "text"
    )
    lengths = [len(i) for i in ids]
    zeros = kind == "integer" and any(len(i) > 1 and i.lstrip("+-").startswith("0") for i in ids)
    return IdFormat(kind, min(lengths), max(lengths), zeros)
