"""PrivacyBudget: charges accumulate, over-budget rounds are refused before anything is
written, the file survives reloads and concurrent writers, and corruption is loud."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from privacy.dp.accounting import epsilon_for
from privacy.dp.budget import PrivacyBudget
from privacy.dp.events import DPEvent
from privacy.errors import BudgetExceededError, InvalidParametersError, PrivacyError

ROUND = DPEvent(noise_multiplier=1.0, sample_rate=0.01, steps=100)
DELTA = 1e-5


def open_budget(path: Path, *, limit: float = 10.0) -> PrivacyBudget:
    return PrivacyBudget.open(path, epsilon_limit=limit, delta=DELTA, kind="rdp", dataset="bank-a")


def test_charges_accumulate(tmp_path: Path) -> None:
    # Arrange
    budget = open_budget(tmp_path / "budget.json")

    # Act
    first = budget.charge([ROUND], run_id="run-1", model="farmer", round=1)
    second = budget.charge(ROUND, run_id="run-1", model="farmer", round=2)

    # Assert
    assert 0 < first < second
    assert second == pytest.approx(epsilon_for([ROUND, ROUND], delta=DELTA, kind="rdp"))
    assert budget.spent() == pytest.approx(second)
    assert budget.remaining() == pytest.approx(10.0 - second)
    assert [(c.run_id, c.model, c.round) for c in budget.charges()] == [
        ("run-1", "farmer", 1),
        ("run-1", "farmer", 2),
    ]


def test_over_budget_round_is_refused_before_anything_is_recorded(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "budget.json"
    budget = open_budget(path, limit=2.0)
    budget.charge([ROUND], run_id="run-1", model="sme", round=1)
    before = path.read_bytes()
    big = DPEvent(noise_multiplier=0.8, sample_rate=0.1, steps=1000)

    # Act
    refused = budget.would_exceed([big])
    with pytest.raises(BudgetExceededError) as caught:
        budget.charge([big], run_id="run-2", model="sme", round=1)

    # Assert
    assert refused
    message = str(caught.value)
    assert "bank-a" in message and "limit of 2" in message and "nothing was charged" in message
    assert path.read_bytes() == before
    assert len(budget.charges()) == 1


def test_budget_survives_reload(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "budget.json"
    spent = open_budget(path).charge([ROUND], run_id="run-1", model="iot", round=3)

    # Act
    reloaded = PrivacyBudget.load(path)
    reopened = open_budget(path)

    # Assert
    assert reloaded.spent() == pytest.approx(spent)
    assert reopened.spent() == pytest.approx(spent)
    assert reloaded.charges()[0].event == ROUND
    assert (reloaded.dataset, reloaded.epsilon_limit, reloaded.kind) == ("bank-a", 10.0, "rdp")


def test_two_writers_on_one_file_lose_no_charge(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "budget.json"
    a, b = open_budget(path), open_budget(path)

    # Act
    a.charge([ROUND], run_id="run-1", model="farmer", round=1)
    b.charge([ROUND], run_id="run-2", model="sme", round=1)

    # Assert
    assert [c.model for c in PrivacyBudget.load(path).charges()] == ["farmer", "sme"]


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"format": "other"}', b"\xff\xfe"])
def test_corrupt_budget_file_is_an_error_not_a_reset(tmp_path: Path, content: bytes) -> None:
    # Arrange
    path = tmp_path / "budget.json"
    path.write_bytes(content)

    # Act / Assert
    with pytest.raises(PrivacyError, match="corrupt"):
        open_budget(path)
    with pytest.raises(PrivacyError, match="corrupt"):
        PrivacyBudget.load(path)
    assert path.read_bytes() == content


def test_budget_settings_are_fixed_at_creation(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "budget.json"
    open_budget(path, limit=8.0)

    # Act / Assert
    with pytest.raises(InvalidParametersError, match=r"epsilon_limit 8\.0"):
        open_budget(path, limit=80.0)


def test_budget_file_is_private_and_written_atomically(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "budget.json"
    budget = open_budget(path)

    # Act
    budget.charge([ROUND], run_id="run-1", model="farmer", round=1)

    # Assert
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["budget.json", "budget.json.lock"]


@pytest.mark.parametrize(
    ("kwargs", "shown"),
    [
        ({"run_id": "", "model": "m", "round": 1}, "run_id"),
        ({"run_id": "r", "model": "m", "round": -1}, "-1"),
    ],
)
def test_bad_charge_tags_are_refused(tmp_path: Path, kwargs: dict[str, object], shown: str) -> None:
    budget = open_budget(tmp_path / "budget.json")
    with pytest.raises(InvalidParametersError, match=shown):
        budget.charge([ROUND], **kwargs)  # type: ignore[arg-type]
    assert budget.charges() == ()


def test_missing_budget_file_cannot_be_loaded(tmp_path: Path) -> None:
    with pytest.raises(PrivacyError, match="no privacy budget"):
        PrivacyBudget.load(tmp_path / "absent.json")
