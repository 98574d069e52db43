"""The scenario manifest: what was generated where, for whoever builds federations from it.

Paths are relative to the scenario root (the folder holding ``manifest.json``), so a scenario
can be moved or copied as a whole.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

from participants.demo.columns import ColumnSpec
from participants.demo.errors import ScenarioError

__all__ = [
    "MANIFEST_FILE",
    "DatasetManifest",
    "NodeManifest",
    "ScenarioManifest",
    "read_manifest",
]

MANIFEST_FILE: Final = "manifest.json"
_FORMAT_VERSION: Final = 1

NodeKind = Literal["bank", "gov", "factory", "coordinator"]


@dataclass(frozen=True)
class DatasetManifest:
    """One table a node holds: where, how many rows, its id, subject and label columns."""

    name: str
    file: str
    rows: int
    id_column: str
    subject_column: str
    label_column: str | None
    columns: tuple[ColumnSpec, ...]
    description: str = ""

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the feature columns, in file order."""
        return tuple(c.name for c in self.columns)


@dataclass(frozen=True)
class NodeManifest:
    """One node: its folder, institution, consent database and datasets."""

    name: str
    kind: NodeKind
    institution: str
    directory: str
    categories: tuple[str, ...]
    consent_db: str | None
    datasets: tuple[DatasetManifest, ...]
    profile: str | None = None
    consent: dict[str, int] = field(default_factory=dict)

    def dataset(self, name: str) -> DatasetManifest:
        """The dataset called ``name``."""
        for dataset in self.datasets:
            if dataset.name == name:
                return dataset
        raise KeyError(f"node {self.name!r} has no dataset {name!r}")


@dataclass(frozen=True)
class ScenarioManifest:
    """Everything the demo scenario generator wrote, and the fixed times it assumed."""

    root: Path
    seed: int
    months: int
    window_start: str
    window_end: str
    as_of: datetime
    nodes: tuple[NodeManifest, ...]
    eval_file: str
    eval_rows: int
    bytes_written: int = 0

    def node(self, name: str) -> NodeManifest:
        """The node called ``name``."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"scenario has no node {name!r}")

    @property
    def factory_nodes(self) -> tuple[NodeManifest, ...]:
        """The factory edge nodes, in order."""
        return tuple(n for n in self.nodes if n.kind == "factory")

    def path(self, relative: str) -> Path:
        """Absolute path of a manifest-relative path."""
        return self.root / relative

    def to_json(self) -> str:
        """The manifest as JSON (``root`` is implied by the file's location)."""
        data = asdict(self)
        del data["root"]
        data["as_of"] = self.as_of.isoformat().replace("+00:00", "Z")
        data["format_version"] = _FORMAT_VERSION
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    def write(self) -> Path:
        """Write ``manifest.json`` into the scenario root and return its path."""
        path = self.root / MANIFEST_FILE
        path.write_text(self.to_json(), encoding="utf-8")
        return path


def _column(data: dict[str, Any]) -> ColumnSpec:
    return ColumnSpec(**{**data, "levels": tuple(data.get("levels", ()))})


def _dataset(data: dict[str, Any]) -> DatasetManifest:
    return DatasetManifest(**{**data, "columns": tuple(_column(c) for c in data["columns"])})


def read_manifest(root: Path) -> ScenarioManifest:
    """Read ``manifest.json`` from the scenario folder ``root``."""
    path = Path(root) / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"cannot read scenario manifest {path}: {exc}") from exc
    if data.pop("format_version", None) != _FORMAT_VERSION:
        raise ScenarioError(f"{path} has an unsupported format version")
    nodes = tuple(
        NodeManifest(
            **{
                **n,
                "categories": tuple(n["categories"]),
                "datasets": tuple(_dataset(d) for d in n["datasets"]),
            }
        )
        for n in data.pop("nodes")
    )
    as_of = datetime.fromisoformat(data.pop("as_of").replace("Z", "+00:00"))
    return ScenarioManifest(root=Path(root), nodes=nodes, as_of=as_of, **data)
