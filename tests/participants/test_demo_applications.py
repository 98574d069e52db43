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


def test_a_firm_with_monthly_rows_applies_once_under_its_own_id_with_its_latest_month(
    tmp_path: Path,
) -> None:
    # Arrange: three firms, each with rows for three months (ids "<firm>-<month>").
    firms = [f"9133{k:014d}" for k in range(3)]
    months = ["2025-03", "2025-04", "2025-05"]
    rows = [(f, m, k + 10 * j) for j, f in enumerate(firms) for k, m in enumerate(months)]
    frame = pd.DataFrame(rows, columns=["firm_id", "month", "utilisation"])
    frame.insert(0, "row_id", frame["firm_id"] + "-" + frame["month"])
    frame["label"] = 0
    frame.to_csv(tmp_path / "eval.csv", index=False)

    # Act
    path = write_iot_applications(
        tmp_path / "eval.csv",
        tmp_path / "apps.csv",
        id_column="row_id",
        label_column="label",
        seed=7,
        firm_column="firm_id",
        period_column="month",
    )

    # Assert
    apps = pd.read_csv(path, dtype={"row_id": str, "firm_id": str})
    assert apps["row_id"].tolist() == firms  # the applicant is the firm
    assert (apps["month"] == "2025-05").all()
    assert apps["utilisation"].tolist() == [2, 12, 22]  # each firm's latest month's figures
