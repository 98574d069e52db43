"""Serving a node from the command line: its parts, its verifier, its HTTP server."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from fastapi import FastAPI

from consent.assertions import AssertionVerifier
from models.federation import load_federation
from models.registry import ModelRegistry

from .app import create_participant_app
from .node import node_parts

__all__ = ["node_app", "node_names"]


def node_names(federations: Iterable[Path]) -> list[str]:
    """Every participant named in the federation files, in first-seen order."""
    names: dict[str, None] = {}
    for path in federations:
        names.update(dict.fromkeys(p.name for p in load_federation(path).participants))
    return list(names)


def node_app(
    *, party: str, registry: Path, federations: Iterable[Path], coordinator_key: str
) -> tuple[FastAPI, list[str]]:
    """The partial-inference app of ``party`` and the models it serves."""
    parts = node_parts(ModelRegistry(registry), list(federations), party=party)
    verifier = AssertionVerifier(coordinator_key, audience=party)
    return create_participant_app(party=party, parts=parts, verifier=verifier), sorted(parts)
