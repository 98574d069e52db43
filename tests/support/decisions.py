"""A small decision root: a registered horizontal model, a consent store with grants, and
application files, laid out as ``fedrisk decide --root`` expects (ROOT/runs, ROOT/serving)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.decisions import register_model, write_applications
from consent.registry import ConsentRegistry
from coordinator.serving.service import consent_registry
from coordinator.serving.settings import ServeSettings
from models.registry import ModelRegistry

CATEGORIES = ["iot.erp", "iot.production"]  # what the model's card declares
INSTITUTION = "demo-bank"


@dataclass(frozen=True)
class DecisionRoot:
    root: Path
    registry: ModelRegistry

    @property
    def settings(self) -> ServeSettings:
        return ServeSettings.for_root(self.root)

    def consent(self) -> ConsentRegistry:
        return consent_registry(self.settings)


def make_root(root: Path, *, created: datetime | None = None) -> DecisionRoot:
    """A registry holding one logistic ``demo-iot`` version (a real ONNX export) over
    ``receivable_overdue_days``, ``mes_erp_mismatch`` and ``order_growth``."""
    register_model(root, published=created)
    return DecisionRoot(root=root, registry=ModelRegistry(root / "runs" / "registry"))


def applications(path: Path, *, rows: int, seed: int = 0) -> Path:
    """``rows`` applications with features, an ask, and for some an existing line."""
    return write_applications(path, rows=rows, seed=seed)


def grant(consent: ConsentRegistry, subject: str, *, days: int = 365) -> str:
    now = datetime.now(UTC)
    recorded = consent.grant(
        subject_id=subject,
        institution=INSTITUTION,
        purpose="credit_scoring",
        categories=CATEGORIES,
        starts_at=now - timedelta(days=1),
        expires_at=now + timedelta(days=days),
        evidence_hash="ab" * 32,
        channel="branch",
    )
    return recorded.event.grant_id
