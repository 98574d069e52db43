"""A file-system registry of published model versions.

Layout: ``root/<name>/<version>/`` holds ``model.onnx`` (what serving runs), ``model.pt``
(the network's state dict, to resume training), ``card.json`` and ``card.md``. Versions
are ``v1``, ``v2``, … in order of registration.

A version appears atomically: its files are written into a hidden temporary directory
beside the versions, flushed to disk, and the directory is renamed into place. A rename
onto an existing non-empty directory fails, so two concurrent registrations can never
share a version; the loser takes the next number. A crash leaves at most a hidden
``.partial-*`` directory, which no reader lists.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnx
import torch
from torch import nn

from .card import ModelCard
from .errors import ModelNotFoundError, did_you_mean
from .nets import build_network, network_config
from .occlusion import CARD_KEY, groups_to_card
from .onnx_export import OutputKind, export_onnx
from .parameters import count_parameters, plain_state_dict
from .schema import TabularSchema
from .specs import MODEL_SPECS
from .vertical_parts import PartRef

__all__ = ["ModelRegistry", "RegisteredModel"]

logger = logging.getLogger(__name__)

ONNX_FILE: Final = "model.onnx"
STATE_FILE: Final = "model.pt"
CARD_JSON: Final = "card.json"
CARD_MARKDOWN: Final = "card.md"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_VERSION = re.compile(r"^v([1-9][0-9]*)$")
_PARTIAL_PREFIX: Final = ".partial-"
_MAX_RENAME_ATTEMPTS: Final = 100


@dataclass(frozen=True)
class RegisteredModel:
    """One registered version: where its files are and its card."""

    name: str
    version: str
    dir: Path
    card: ModelCard
    onnx_path: Path

    @property
    def state_path(self) -> Path:
        """The network's saved ``state_dict``."""
        return self.dir / STATE_FILE

    def load_network(self) -> nn.Module:
        """Rebuild the PyTorch network from the card's architecture and saved weights."""
        architecture = self.card.architecture
        net = build_network(
            str(architecture["kind"]),
            n_features=int(architecture["n_features"]),
            hidden=tuple(int(width) for width in architecture.get("hidden", ())),
            seed=0,
            feature_shift=tuple(float(v) for v in architecture.get("feature_shift", ())),
            feature_scale=tuple(float(v) for v in architecture.get("feature_scale", ())),
        )
        state = torch.load(self.state_path, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        return net


class ModelRegistry:
    """Published model versions under ``root``.

    ``clock`` gives the creation time written into cards (UTC now by default; inject a
    fixed clock for reproducible cards).
    """

    def __init__(self, root: Path, *, clock: Callable[[], datetime] | None = None) -> None:
        self.root = Path(root)
        self._clock = clock or (lambda: datetime.now(UTC))

    def register(
        self,
        *,
        model: nn.Module,
        name: str,
        spec_name: str,
        schema: TabularSchema,
        n_features: int,
        mode: str,
        participants: Mapping[str, int],
        rounds: int,
        strategy: str,
        privacy_mode: str,
        privacy_parameters: Mapping[str, Any] | None = None,
        epsilon: Mapping[str, float] | None = None,
        metrics: Mapping[str, Any] | None = None,
        notes: str = "",
        data_categories: Mapping[str, Sequence[str]] | None = None,
        output: OutputKind = "probability",
    ) -> RegisteredModel:
        """Publish ``model`` as the next version of ``name`` and return it.

        ``n_features`` must match the schema's feature count. The ONNX graph, state dict
        and card (JSON and Markdown) appear together or not at all.
        """
        if n_features != len(schema.features):
            raise ValueError(
                f"n_features={n_features} but schema has {len(schema.features)} features"
            )
        if rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {rounds}")

        def build(partial: Path) -> ModelCard:
            onnx_path = export_onnx(
                model, n_features=n_features, path=partial / ONNX_FILE, output=output
            )
            torch.save(plain_state_dict(model), partial / STATE_FILE)
            return ModelCard(
                name=name,
                version="",
                created_at=self._clock().isoformat(timespec="seconds"),
                spec_name=spec_name,
                architecture={
                    **_architecture(model, n_features=n_features, output=output),
                    **_groups(spec_name, schema.feature_names),
                },
                schema=schema.to_dict(),
                schema_hash=schema.hash(),
                mode=mode,
                participants=dict(participants),
                rounds=rounds,
                strategy=strategy,
                privacy_mode=privacy_mode,
                privacy_parameters=dict(privacy_parameters or {}),
                epsilon=dict(epsilon or {}),
                metrics=dict(metrics or {}),
                onnx_sha256=_sha256(onnx_path),
                n_parameters=count_parameters(model),
                notes=notes,
                data_categories={k: sorted(v) for k, v in (data_categories or {}).items()},
            )

        registered = self._staged(name, build)
        card = registered.card
        logger.info(
            "registered model %s %s (%d parameters, onnx %s)",
            name,
            registered.version,
            card.n_parameters,
            card.onnx_sha256[:12],
        )
        return registered

    def register_vertical(
        self,
        *,
        name: str,
        spec_name: str,
        combiner: onnx.ModelProto,
        parts: Sequence[PartRef],
        kind: str = "vertical-logistic",
        schemas: Mapping[str, TabularSchema],
        participants: Mapping[str, int],
        rounds: int,
        strategy: str,
        privacy_mode: str,
        privacy_parameters: Mapping[str, Any] | None = None,
        epsilon: Mapping[str, float] | None = None,
        metrics: Mapping[str, Any] | None = None,
        notes: str = "",
        data_categories: Mapping[str, Sequence[str]] | None = None,
    ) -> RegisteredModel:
        """Publish a vertical model version: the coordinator's combiner (``model.onnx``)
        and a card naming each party's part by export id and SHA-256 (the parts stay on
        the parties' nodes)."""
        if sorted(p.party for p in parts) != sorted(schemas):
            raise ValueError(f"parts of {[p.party for p in parts]} but schemas of {list(schemas)}")
        for ref in parts:
            if tuple(ref.features) != schemas[ref.party].feature_names:
                raise ValueError(f"part of {ref.party!r} reads other features than its schema")

        def build(partial: Path) -> ModelCard:
            (partial / ONNX_FILE).write_bytes(combiner.SerializeToString())
            hashes = {party: schema.hash() for party, schema in schemas.items()}
            return ModelCard(
                name=name,
                version="",
                created_at=self._clock().isoformat(timespec="seconds"),
                spec_name=spec_name,
                architecture={
                    "kind": kind,
                    "output": "probability",
                    "parts": [
                        {**ref.to_dict(), **_groups(spec_name, ref.features)} for ref in parts
                    ],
                },
                schema={"parties": {party: s.to_dict() for party, s in schemas.items()}},
                schema_hash=hashlib.sha256(
                    ",".join(f"{k}:{v}" for k, v in sorted(hashes.items())).encode()
                ).hexdigest(),
                mode="vertical",
                participants=dict(participants),
                rounds=rounds,
                strategy=strategy,
                privacy_mode=privacy_mode,
                privacy_parameters=dict(privacy_parameters or {}),
                epsilon=dict(epsilon or {}),
                metrics=dict(metrics or {}),
                onnx_sha256=_sha256(partial / ONNX_FILE),
                n_parameters=_vertical_parameters(kind, parts, combiner),
                notes=notes,
                data_categories={k: sorted(v) for k, v in (data_categories or {}).items()},
            )

        registered = self._staged(name, build)
        logger.info("registered vertical model %s %s (%d parts)", name, registered.version,
                    len(parts))  # fmt: skip
        return registered

    def _staged(self, name: str, build: Callable[[Path], ModelCard]) -> RegisteredModel:
        """Write a version's files with ``build`` into a hidden folder, then publish it."""
        _check_name(name)
        model_dir = self.root / name
        model_dir.mkdir(parents=True, exist_ok=True)
        partial = model_dir / f"{_PARTIAL_PREFIX}{uuid.uuid4().hex}"
        partial.mkdir()
        try:
            return self._publish(partial, model_dir, build(partial))
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise

    def _publish(self, partial: Path, model_dir: Path, card: ModelCard) -> RegisteredModel:
        """Write the card for the next free version and rename the directory into place."""
        for _ in range(_MAX_RENAME_ATTEMPTS):
            version = f"v{self._next_number(model_dir)}"
            versioned = replace(card, version=version)
            _write_card(partial, versioned)
            _fsync_tree(partial)
            target = model_dir / version
            try:
                partial.rename(target)
            except OSError:
                if target.exists():  # another registration took this version first
                    continue
                raise
            _fsync_dir(model_dir)
            return RegisteredModel(
                name=card.name,
                version=version,
                dir=target,
                card=versioned,
                onnx_path=target / ONNX_FILE,
            )
        raise OSError(f"could not allocate a version under {model_dir}")

    def _next_number(self, model_dir: Path) -> int:
        numbers = [
            int(match.group(1))
            for entry in model_dir.iterdir()
            if (match := _VERSION.match(entry.name))
        ]
        return max(numbers, default=0) + 1

    def names(self) -> list[str]:
        """Names of models with at least one version, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self.root.iterdir()
            if entry.is_dir() and self._versions(entry.name)
        )

    def _versions(self, name: str) -> list[str]:
        model_dir = self.root / name
        if not model_dir.is_dir():
            return []
        found = [
            (int(match.group(1)), entry.name)
            for entry in model_dir.iterdir()
            if (match := _VERSION.match(entry.name)) and (entry / CARD_JSON).is_file()
        ]
        return [version for _, version in sorted(found)]

    def versions(self, name: str) -> list[str]:
        """Versions of ``name``, oldest first; :class:`ModelNotFoundError` if none."""
        _check_name(name)
        versions = self._versions(name)
        if not versions:
            raise ModelNotFoundError(self._unknown_model(name))
        return versions

    def get(self, name: str, version: str) -> RegisteredModel:
        """One version of a model; :class:`ModelNotFoundError` names what exists."""
        versions = self.versions(name)
        if version not in versions:
            raise ModelNotFoundError(
                f"model {name!r} has no version {version!r}; versions: {', '.join(versions)}"
            )
        directory = self.root / name / version
        card = ModelCard.from_json((directory / CARD_JSON).read_text(encoding="utf-8"))
        return RegisteredModel(
            name=name, version=version, dir=directory, card=card, onnx_path=directory / ONNX_FILE
        )

    def latest(self, name: str) -> RegisteredModel:
        """The most recently registered version of ``name``."""
        return self.get(name, self.versions(name)[-1])

    def resolve(self, name: str, version: str | None) -> RegisteredModel:
        """``get(name, version)``, or :meth:`latest` when ``version`` is ``None``."""
        return self.latest(name) if version is None else self.get(name, version)

    def list(self) -> list[RegisteredModel]:
        """Every version of every model, by name then version."""
        return [
            self.get(name, version) for name in self.names() for version in self._versions(name)
        ]

    def _unknown_model(self, name: str) -> str:
        known = self.names()
        listing = ", ".join(known) if known else "none yet"
        return (
            f"no registered model {name!r}{did_you_mean(name, known)} under {self.root}; "
            f"registered models: {listing}"
        )


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(
            f"model name must be letters, digits, '_', '-' or '.' (not leading), got {name!r}"
        )


def _architecture(model: nn.Module, *, n_features: int, output: str) -> dict[str, Any]:
    try:
        config = network_config(model)
    except TypeError:
        return {"kind": type(model).__name__, "n_features": n_features, "output": output}
    if config.n_features != n_features:
        raise ValueError(f"n_features={n_features} but the network takes {config.n_features}")
    return {**config.to_dict(), "output": output}


def _groups(spec_name: str, features: Sequence[str]) -> dict[str, Any]:
    """The categorical occlusion groups over ``features`` for the card (none: no key), so
    that serving occludes what this version was published with (:mod:`models.occlusion`)."""
    spec = MODEL_SPECS.get(spec_name)
    groups = groups_to_card(spec.occlusion_groups(features)) if spec is not None else []
    return {CARD_KEY: groups} if groups else {}


def _write_card(directory: Path, card: ModelCard) -> None:
    (directory / CARD_JSON).write_text(card.to_json(), encoding="utf-8")
    (directory / CARD_MARKDOWN).write_text(card.to_markdown(), encoding="utf-8")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_tree(directory: Path) -> None:
    for entry in directory.iterdir():
        with entry.open("rb") as handle:
            os.fsync(handle.fileno())
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _vertical_parameters(kind: str, parts: Sequence[PartRef], combiner: onnx.ModelProto) -> int:
    """Parameters of a vertical model: one weight per feature and the bias (logistic), or
    the combiner's (the top network's) here; the parties' bottom networks stay with them."""
    if kind == "vertical-logistic":
        return sum(len(ref.features) for ref in parts) + 1
    return sum(int(np.prod(t.dims)) for t in combiner.graph.initializer)
