"""The demo firms' credit applications (participants/demo/applications.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from participants.demo import write_iot_applications
from participants.demo.applications import EXISTING_SHARE


def _evaluation(path: Path, rows: int = 400) -> Path:
    rng = np.random.default_rng(0)
    ids = [f"9133{k:014d}" for k in range(rows)]
    frame = {
        "subject_id": ids,
        "default_12m": rng.integers(0, 2, rows),
        "utilisation": rng.random(rows),
    }
    pd.DataFrame(frame).to_csv(path, index=False)
    return path


def test_each_firm_applies_once_as_new_or_existing_without_its_label(tmp_path: Path) -> None:
    evaluation = _evaluation(tmp_path / "eval.csv")

    path = write_iot_applications(
        evaluation,
        tmp_path / "apps.csv",
        id_column="subject_id",
        label_column="default_12m",
        seed=7,
    )

    apps = pd.read_csv(path, dtype={"subject_id": str})
    assert "default_12m" not in apps.columns and "utilisation" in apps.columns
    assert apps["subject_id"].is_unique and len(apps) == 400
    existing = apps["current_limit"].notna()
    assert (existing == apps["previous_score"].notna()).all()
    assert (existing != apps["requested_amount"].notna()).all()  # one or the other
    assert abs(existing.mean() - EXISTING_SHARE) < 0.08
    assert (apps["requested_amount"].dropna() > 0).all()


def test_the_same_seed_gives_the_same_applications_and_another_seed_others(
    tmp_path: Path,
) -> None:
    evaluation = _evaluation(tmp_path / "eval.csv")

    def write(name: str, seed: int) -> str:
        return write_iot_applications(
            evaluation, tmp_path / name, id_column="subject_id", label_column=None, seed=seed
        ).read_text()

    assert write("a.csv", 7) == write("b.csv", 7)
    assert write("a.csv", 7) != write("c.csv", 8)
