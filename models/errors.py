"""Exceptions of the ``models`` package.

Every exception raised on purpose by ``models`` derives from :class:`ModelsError`, so a
caller can catch the whole package with one clause. Errors about bad arguments or bad
input files also derive from :class:`ValueError`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "ConfigFileError",
    "DataError",
    "ExportError",
    "FederationFileError",
    "MessageError",
    "ModelNotFoundError",
    "ModelsError",
    "ParameterShapeError",
    "SchemaError",
    "did_you_mean",
]


class ModelsError(Exception):
    """Root of every error raised by the ``models`` package."""


class SchemaError(ModelsError, ValueError):
    """A tabular schema is malformed (bad feature type, bad range, duplicate names, ...).

    ``key`` optionally names where in a schema mapping the problem sits
    (``"features[2].type"``) so that callers parsing a larger file can point at it.
    """

    def __init__(self, reason: str, *, key: str | None = None) -> None:
        self.reason = reason
        self.key = key
        super().__init__(f"{key}: {reason}" if key else reason)


class DataError(ModelsError, ValueError):
    """A data file does not satisfy its schema.

    Row numbering: ``row`` counts the header as row 1, so the first data row is row 2.
    For a CSV file this is the line number an editor shows (as long as no quoted field
    spans several lines); Parquet files use the same numbering so that a table reports
    the same row whichever format it is stored in. ``row`` is ``None`` for problems of
    the whole file and ``column`` is ``None`` for problems of a whole row or file.
    """

    def __init__(self, *, file: str, row: int | None, column: str | None, reason: str) -> None:
        self.file = file
        self.row = row
        self.column = column
        self.reason = reason
        parts = [file]
        if row is not None:
            parts.append(f"row {row}")
        if column is not None:
            parts.append(f"column {column!r}")
        super().__init__(f"{', '.join(parts)}: {reason}")


class ConfigFileError(ModelsError, ValueError):
    """A configuration file (TOML) is unreadable or invalid; names the file and the key."""

    def __init__(self, *, file: str, key: str | None, reason: str) -> None:
        self.file = file
        self.key = key
        self.reason = reason
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {reason}")


class FederationFileError(ConfigFileError):
    """A federation TOML file is unreadable or invalid; names the file and the key."""


class MessageError(ModelsError, ValueError):
    """A Flower message lacks a record or value, or holds one of the wrong type."""


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest option, or ``""`` if none is close."""
    matches = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


class ModelNotFoundError(ModelsError, LookupError):
    """A model spec, registered model or model version does not exist; names what does."""


class ExportError(ModelsError):
    """A network could not be exported to, or loaded from, ONNX."""


class ParameterShapeError(ModelsError, ValueError):
    """Parameters (a flat vector or a list of arrays) do not fit a network's shapes.

    Raised for a malformed or tampered model update before it touches the model.
    """
