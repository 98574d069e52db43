"""A participant node's served parts, found from its federation files and the registry."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from models.errors import ModelsError
from models.federation import load_federation
from models.registry import ModelRegistry

from .parts import ServedPart, ServingError, load_part

__all__ = ["node_parts"]

logger = logging.getLogger(__name__)


def node_parts(
    registry: ModelRegistry, federations: Iterable[Path], *, party: str
) -> dict[str, ServedPart]:
    """Every published model (latest version) of a federation ``party`` takes part in,
    that this node can serve, by model name; what it cannot serve is logged and skipped."""
    parts: dict[str, ServedPart] = {}
    for path in federations:
        spec = load_federation(path)
        participant = next((p for p in spec.participants if p.name == party), None)
        if participant is None or spec.name not in registry.names():
            continue
        try:
            parts[spec.name] = load_part(
                registry, model=spec.name, version=None, federation=spec, participant=participant
            )
        except (ServingError, ModelsError, OSError) as exc:
            logger.warning("%s does not serve %s: %s", party, spec.name, exc)
    return parts
