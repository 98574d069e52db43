"""Model registry (models/registry.py) and model cards (models/card.py)."""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from torch import nn

import models.registry as registry_module
from models.card import ModelCard
from models.errors import ModelNotFoundError
from models.nets import build_network
from models.parameters import get_flat
from models.registry import ModelRegistry, RegisteredModel
from models.schema import FeatureSpec, TabularSchema

SCHEMA = TabularSchema(
    id="subject_id",
    label="default_12m",
    features=(
        FeatureSpec(name="a", type="float", min=0.0, max=1.0),
        FeatureSpec(name="b", type="int", min=0.0, max=10.0),
        FeatureSpec(name="c", type="bool"),
    ),
)


def _registry(root: Path) -> ModelRegistry:
    return ModelRegistry(root, clock=lambda: datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))


def _register(registry: ModelRegistry, *, seed: int = 0, name: str = "iot_risk") -> RegisteredModel:
    return registry.register(
        model=build_network("mlp", n_features=3, hidden=(4,), seed=seed),
        name=name,
        spec_name="mlp",
        schema=SCHEMA,
        n_features=3,
        mode="horizontal",
        participants={"factory-1": 120, "factory-2": 80},
        rounds=5,
        strategy="FedAvg",
        privacy_mode="dp",
        privacy_parameters={"noise_multiplier": 1.1, "max_grad_norm": 1.0, "delta": 1e-5},
        epsilon={"factory-1": 2.5, "factory-2": 2.9},
        metrics={"auc": 0.81, "log_loss": 0.42, "rounds": [{"round": 1, "auc": 0.7}]},
    )


def _fake_export(model: nn.Module, *, n_features: int, path: Path, output: str) -> Path:
    """Stands in for the ONNX exporter (about a second per call) in version-logic tests."""
    path.write_bytes(f"onnx:{get_flat(model).sum():.6f}:{n_features}:{output}".encode())
    return path


@pytest.fixture
def fast_export(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_module, "export_onnx", _fake_export)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> RegisteredModel:
    """One real registration (real ONNX export), shared by the read-only tests."""
    return _register(_registry(tmp_path_factory.mktemp("registry")), seed=0)


def _card(**changes: Any) -> ModelCard:
    fields: dict[str, Any] = {
        "name": "sme_risk",
        "version": "v3",
        "created_at": "2025-01-02T03:04:05+00:00",
        "spec_name": "sme_risk",
        "architecture": {"kind": "logistic", "n_features": 3, "hidden": []},
        "schema": SCHEMA.to_dict(),
        "schema_hash": SCHEMA.hash(),
        "mode": "vertical",
        "participants": {"bank": 1500, "gov": 1500},
        "rounds": 10,
        "strategy": "vertical-lr",
        "privacy_mode": "dp+he",
        "privacy_parameters": {"accountant": "rdp", "ckks": {"poly_modulus_degree": 8192}},
        "epsilon": {"bank": 1.5},
        "metrics": {"auc": 0.77, "rounds": [{"round": 1, "auc": 0.7, "log_loss": 0.5}]},
        "onnx_sha256": "ab" * 32,
        "n_parameters": 4,
        "notes": "demo",
    }
    fields.update(changes)
    return ModelCard(**fields)


def _entries(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "iot_risk").iterdir())


def test_version_holds_onnx_state_and_cards(published: RegisteredModel) -> None:
    model = build_network("mlp", n_features=3, hidden=(4,), seed=0)
    card = published.card

    files = sorted(p.name for p in published.dir.iterdir())

    assert files == ["card.json", "card.md", "model.onnx", "model.pt"]
    assert (published.version, card.version) == ("v1", "v1")
    assert card.onnx_sha256 == hashlib.sha256(published.onnx_path.read_bytes()).hexdigest()
    assert card.n_parameters == 21
    assert card.architecture == {
        "kind": "mlp",
        "n_features": 3,
        "hidden": [4],
        "output": "probability",
    }
    assert card.schema_hash == SCHEMA.hash()
    assert card.created_at == "2025-01-02T03:04:05+00:00"
    assert card.epsilon == {"factory-1": 2.5, "factory-2": 2.9}
    assert np.array_equal(get_flat(published.load_network()), get_flat(model))
    assert "# Model card: iot_risk v1" in (published.dir / "card.md").read_text()


def test_registered_version_reads_back_identically(published: RegisteredModel) -> None:
    registry = ModelRegistry(published.dir.parent.parent)

    again = registry.get("iot_risk", "v1")

    assert again == published
    assert registry.latest("iot_risk") == published
    assert registry.list() == [published]


def test_versions_increase_and_latest_is_the_newest(tmp_path: Path, fast_export: None) -> None:
    registry = _registry(tmp_path)

    first = _register(registry, seed=1)
    second = _register(registry, seed=2)

    assert (first.version, second.version) == ("v1", "v2")
    assert registry.versions("iot_risk") == ["v1", "v2"]
    assert registry.latest("iot_risk").version == "v2"
    assert registry.get("iot_risk", "v1").card == first.card
    assert [(m.name, m.version) for m in registry.list()] == [
        ("iot_risk", "v1"),
        ("iot_risk", "v2"),
    ]


def test_failure_mid_write_leaves_no_partial_version(
    tmp_path: Path, fast_export: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = _registry(tmp_path)
    _register(registry)

    def crash(directory: Path, card: ModelCard) -> None:
        (directory / "card.json").write_text("{trunc")
        raise OSError("disk full")

    monkeypatch.setattr(registry_module, "_write_card", crash)
    with pytest.raises(OSError, match="disk full"):
        _register(registry, seed=5)

    assert registry.versions("iot_risk") == ["v1"]
    assert _entries(tmp_path) == ["v1"]


def test_leftover_partial_directory_from_a_crash_is_invisible(
    tmp_path: Path, fast_export: None
) -> None:
    registry = _registry(tmp_path)
    _register(registry)
    leftover = tmp_path / "iot_risk" / ".partial-deadbeef"
    leftover.mkdir()
    (leftover / "model.onnx").write_bytes(b"half")

    second = _register(registry)

    assert second.version == "v2"
    assert [m.version for m in registry.list()] == ["v1", "v2"]
    assert _entries(tmp_path) == [".partial-deadbeef", "v1", "v2"]


def test_version_taken_concurrently_moves_to_the_next_number(
    tmp_path: Path, fast_export: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = _registry(tmp_path)
    _register(registry)
    stale = iter([1, 2])  # the first allocation still sees v1 as free: a lost race
    monkeypatch.setattr(ModelRegistry, "_next_number", lambda self, model_dir: next(stale))

    second = _register(registry)

    assert second.version == "v2"
    assert second.card.version == "v2"
    assert registry.get("iot_risk", "v1").card.version == "v1"


def test_unknown_model_and_version_name_what_exists(published: RegisteredModel) -> None:
    registry = ModelRegistry(published.dir.parent.parent)

    with pytest.raises(ModelNotFoundError, match="registered models: iot_risk"):
        registry.latest("farmer_credit")
    with pytest.raises(ModelNotFoundError, match="has no version 'v9'; versions: v1"):
        registry.get("iot_risk", "v9")


def test_empty_registry_says_so(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="none yet"):
        _registry(tmp_path / "empty").latest("iot_risk")


def test_register_refuses_a_schema_of_another_width(tmp_path: Path) -> None:
    registry = _registry(tmp_path)

    with pytest.raises(ValueError, match="n_features=4 but schema has 3 features"):
        registry.register(
            model=build_network("logistic", n_features=4, seed=0),
            name="x",
            spec_name="logistic",
            schema=SCHEMA,
            n_features=4,
            mode="horizontal",
            participants={},
            rounds=1,
            strategy="FedAvg",
            privacy_mode="none",
        )


def test_card_json_round_trip() -> None:
    card = _card()

    assert ModelCard.from_json(card.to_json()) == card


def test_card_writes_non_finite_numbers_as_null() -> None:
    card = _card(metrics={"auc": float("nan")}, epsilon={"bank": float("inf")})

    back = ModelCard.from_json(card.to_json())

    assert '"auc": null' in card.to_json()
    assert back.metrics["auc"] is None
    assert math.isnan(back.epsilon["bank"])


def test_card_refuses_unknown_fields_and_formats() -> None:
    data = _card().to_dict()

    with pytest.raises(Exception, match="unknown fields"):
        ModelCard.from_dict({**data, "surprise": 1})
    with pytest.raises(Exception, match="unsupported model card format"):
        ModelCard.from_dict({**data, "format": "other/9"})


def test_card_markdown_is_readable() -> None:
    text = _card().to_markdown()

    assert "# Model card: sme_risk v3" in text
    assert "| bank | 1500 | 1.5 |" in text
    assert "| gov | 1500 | - |" in text
    assert "- Mode: `dp+he`" in text
    assert "- ckks: poly_modulus_degree=8192" in text
    assert "| round | auc | log_loss |" in text
    assert "- `c` (bool)" in text
