"""Writing TOML values by hand for the generated federation files (no TOML writer needed)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

from participants.demo.errors import ScenarioError

__all__ = ["toml_number", "toml_path", "toml_string", "toml_strings"]


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
