"""A small decision root: a registered horizontal model, a consent store with grants, and
application files, laid out as ``fedrisk decide --root`` expects (ROOT/runs, ROOT/serving)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from consent.registry import ConsentRegistry
from coordinator.serving.service import consent_registry
from coordinator.serving.settings import ServeSettings
from models.nets import build_network
from models.parameters import set_flat
from models.registry import ModelRegistry
from models.schema import FeatureSpec, TabularSchema

FEATURES = ("receivable_overdue_days", "mes_erp_mismatch", "order_growth")
SCHEMA = TabularSchema(
    id="subject_id",
    label="default_12m",
    features=(
        FeatureSpec(name="receivable_overdue_days", type="float", min=0.0, max=3650.0),
        FeatureSpec(name="mes_erp_mismatch", type="float", min=0.0, max=1.0),
        FeatureSpec(name="order_growth", type="float", min=-1.0, max=10.0),
    ),
)
CATEGORIES = ["iot.erp", "iot.machines"]
INSTITUTION = "demo-bank"


@dataclass(frozen=True)
class DecisionRoot:
    root: Path
    registry: ModelRegistry

    @property
    def settings(self) -> ServeSettings:
        return ServeSettings(
            state_dir=self.root / "serving", registry=self.root / "runs" / "registry"
        )

    def consent(self) -> ConsentRegistry:
        return consent_registry(self.settings)


def make_root(root: Path, *, created: datetime | None = None) -> DecisionRoot:
    """A registry holding one logistic ``demo-iot`` version (a real ONNX export)."""
    when = created or datetime.now(UTC)
    registry = ModelRegistry(root / "runs" / "registry", clock=lambda: when)
    net = build_network("logistic", n_features=len(FEATURES), seed=0)
    set_flat(net, np.array([0.02, 4.0, -3.0, -4.0]))
    registry.register(
        model=net,
        name="demo-iot",
        spec_name="iot_risk",
        schema=SCHEMA,
        n_features=len(FEATURES),
        mode="horizontal",
        participants={"factory-1": 10},
        rounds=1,
        strategy="FedAvg",
        privacy_mode="none",
        data_categories={"factory-1": CATEGORIES},
    )
    return DecisionRoot(root=root, registry=ModelRegistry(root / "runs" / "registry"))


def applications(path: Path, *, rows: int, seed: int = 0, existing_share: float = 0.3) -> Path:
    """``rows`` applications with features, an ask, and for some an existing line."""
    rng = np.random.default_rng(seed)
    existing = rng.random(rows) < existing_share
    frame = pd.DataFrame(
        {
            "subject_id": [f"F{k:07d}" for k in range(rows)],
            "receivable_overdue_days": rng.gamma(2.0, 20.0, rows).round(1),
            "mes_erp_mismatch": rng.beta(1.2, 60.0, rows).round(4),
            "order_growth": rng.normal(0.05, 0.2, rows).clip(-1, 10).round(4),
            "requested_amount": np.where(existing, np.nan, rng.integers(1, 40, rows) * 50_000.0),
            "current_limit": np.where(existing, rng.integers(2, 40, rows) * 50_000.0, np.nan),
            "previous_score": np.where(existing, rng.uniform(0.0, 0.2, rows).round(4), np.nan),
        }
    )
    frame.to_csv(path, index=False)
    return path


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
