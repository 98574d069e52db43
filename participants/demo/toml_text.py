"""Writing TOML values by hand for the generated federation files (no TOML writer needed)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

from participants.demo.errors import ScenarioError
from participants.demo.manifest import DatasetManifest, NodeManifest, ScenarioManifest

__all__ = [
    "participant_lines",
    "toml_feature",
    "toml_number",
    "toml_path",
    "toml_string",
    "toml_strings",
]


def toml_string(value: str) -> str:
    """A TOML basic string (JSON string escapes are valid TOML escapes)."""
    return json.dumps(value, ensure_ascii=False)


def toml_number(value: float) -> str:
    """A TOML integer or float; NaN, infinities and booleans are refused."""
    if isinstance(value, bool) or not math.isfinite(value):
        raise ScenarioError(f"cannot write {value!r} as a TOML number")
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def toml_strings(values: Sequence[str]) -> str:
    """A TOML array of strings."""
    return "[" + ", ".join(toml_string(v) for v in values) + "]"


def toml_path(target: Path, base: Path) -> str:
    """``target`` relative to ``base`` (the TOML file's folder), with forward slashes."""
    return toml_string(Path(os.path.relpath(target.resolve(), base.resolve())).as_posix())


def toml_feature(name: str, type: str, low: float | None, high: float | None) -> str:
    """One schema feature as an inline table; bounds written as the feature's type."""
    parts = [f"name = {toml_string(name)}", f"type = {toml_string(type)}"]
    for key, bound in (("min", low), ("max", high)):
        if bound is not None:
            parts.append(f"{key} = {toml_number(float(bound) if type == 'float' else int(bound))}")
    return "{ " + ", ".join(parts) + " }"


def participant_lines(
    manifest: ScenarioManifest, node: NodeManifest, table: DatasetManifest, base: Path
) -> list[str]:
    """A ``[[participants]]`` entry for ``node`` training on ``table`` (consent log included)."""
    if node.consent_db is None:
        raise ScenarioError(f"{node.name} has no consent database")
    return [
        "",
        "[[participants]]",
        f"name = {toml_string(node.name)}",
        f"file = {toml_path(manifest.path(table.file), base)}",
        f"categories = {toml_strings(node.categories)}",
        f"consent_db = {toml_path(manifest.path(node.consent_db), base)}",
        f"subject_column = {toml_string(table.subject_column)}",
    ]
