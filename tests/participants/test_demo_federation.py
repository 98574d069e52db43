"""The IoT federation file written from the scenario manifest."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from participants.demo import INDICATOR_COLUMNS, write_iot_federation
from tests.participants.test_demo_support import small_scenario


def test_federation_file_has_the_agreed_keys_and_resolvable_paths(tmp_path: Path) -> None:
    manifest = small_scenario()
    path = tmp_path / "federations" / "iot.toml"

    write_iot_federation(manifest, path, rounds=5, privacy="dp")
    data = tomllib.loads(path.read_text(encoding="utf-8"))

    assert set(data) == {"federation", "privacy", "schema", "evaluation", "participants"}
    assert data["federation"] == {
        "name": "demo-iot",
        "model": "iot_risk",
        "mode": "horizontal",
        "privacy": "dp",
        "strategy": "fedavg",
        "rounds": 5,
        "min_participants": 3,
        "local_epochs": 2,
        "batch_size": 64,
        "learning_rate": 0.05,
        "seed": 7,
        "consent_purpose": "model_training",
        "consent_as_of": "2026-06-30T00:00:00Z",
    }
    assert data["privacy"] == {"dp": {"target_epsilon": 3.0, "delta": 1e-5, "max_grad_norm": 1.0}}
    schema = data["schema"]
    assert (schema["id"], schema["label"]) == ("row_id", "label")
    assert [f["name"] for f in schema["features"]] == list(INDICATOR_COLUMNS)
    assert all(f["type"] == "float" and f["min"] < f["max"] for f in schema["features"])
    assert (path.parent / data["evaluation"]["file"]).resolve() == manifest.path(
        manifest.eval_file
    ).resolve()
    assert [p["name"] for p in data["participants"]] == [f"factory-{i:02d}" for i in range(1, 7)]
    for participant in data["participants"]:
        assert set(participant) == {"name", "file", "categories", "consent_db", "subject_column"}
        assert (path.parent / participant["file"]).is_file()
        assert (path.parent / participant["consent_db"]).is_file()
        assert participant["categories"] == ["iot.energy", "iot.erp", "iot.mes"]
        assert participant["subject_column"] == "firm_id"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"privacy": "secret"},
        {"strategy": "fedsgd"},
        {"rounds": 0},
        {"min_participants": 7},
        {"learning_rate": 0.0},
        {"delta": 1.0},
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        write_iot_federation(small_scenario(), tmp_path / "iot.toml", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "iot.toml").exists()
