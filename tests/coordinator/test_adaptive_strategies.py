"""FedAdam / FedYogi (Flower's server optimisers) and stopping on an AUC plateau."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flwr.supercore.task_identity import TaskIdentity

from coordinator.early_stopping import PlateauStop
from coordinator.rounds import FederationResult, run_federation
from coordinator.strategies.fedavg import FedAvg
from coordinator.strategies.server_optimizer import ServerOptimizer
from models import wire
from models.errors import FederationFileError
from models.federation import FederationSpec, load_federation
from models.parameters import to_arrays
from participants.cli import ensure_keys
from participants.client_app import make_client_app
from tests.support.builders import make_federation
from tests.support.local_grid import LocalGrid


class _Quiet:
    def print(self, *args: object, **kwargs: object) -> None:
        pass


def run(spec: FederationSpec) -> tuple[FederationResult, LocalGrid]:
    ensure_keys(spec, console=_Quiet())  # type: ignore[arg-type]
    grid = LocalGrid(make_client_app(spec.path), n_nodes=len(spec.participants))
    return run_federation(grid, spec, connect_timeout_s=5), grid  # type: ignore[arg-type]


def adaptive(**optimizer: float) -> str:
    lines = "\n".join(f"{k} = {v}" for k, v in optimizer.items())
    return f"[server_optimizer]\n{lines}\n"


# --- the server step against Reddi et al. (2021), Algorithm 2 --------------------------


def reddi_steps(
    deltas: list[np.ndarray], x0: np.ndarray, *, yogi: bool, eta: float, b1: float, b2: float,
    tau: float,
) -> np.ndarray:  # fmt: skip
    """The paper's server update, written out; FedAdam's η has Adam's bias correction
    (Kingma & Ba 2014, sec. 2) at t = round + 1, as Flower applies it."""
    x, m, v = x0.astype(np.float64), np.zeros_like(x0, np.float64), np.zeros_like(x0, np.float64)
    for t, delta in enumerate(deltas, start=1):
        m = b1 * m + (1 - b1) * delta
        if yogi:
            v = v - (1 - b2) * delta**2 * np.sign(v - delta**2)
            step = eta
        else:
            v = b2 * v + (1 - b2) * delta**2
            step = eta * np.sqrt(1 - b2 ** (t + 1)) / (1 - b1 ** (t + 1))
        x = x + step * m / (np.sqrt(v) + tau)
    return x


@pytest.mark.parametrize("optimizer", ["fedadam", "fedyogi"])
def test_server_step_matches_the_papers_update(optimizer: str) -> None:
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1
    rng = np.random.default_rng(5)
    strategy = ServerOptimizer(FedAvg(), optimizer=optimizer, learning_rate=0.05,  # type: ignore[arg-type]
                               beta_1=0.9, beta_2=0.99, tau=1e-3)  # fmt: skip
    x = rng.normal(size=7).astype(np.float32)
    start, deltas = x.copy(), []

    for server_round in range(1, 5):
        delta = rng.normal(scale=0.1, size=7).astype(np.float32)
        deltas.append(delta.astype(np.float64))
        (x,) = strategy.step([x], [x + delta], server_round=server_round)

    expected = reddi_steps(deltas, start, yogi=optimizer == "fedyogi", eta=0.05, b1=0.9,
                           b2=0.99, tau=1e-3)  # fmt: skip
    np.testing.assert_allclose(x, expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(x, start + sum(deltas))  # not plain averaging


def test_invalid_server_optimizer_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="optimizer must be one of"):
        ServerOptimizer(FedAvg(), optimizer="fedsgd", learning_rate=0.1, beta_1=0.9,  # type: ignore[arg-type]
                        beta_2=0.99, tau=1e-3)  # fmt: skip
    with pytest.raises(ValueError, match="learning_rate and tau must be > 0"):
        ServerOptimizer(FedAvg(), optimizer="fedadam", learning_rate=0.0, beta_1=0.9,
                        beta_2=0.99, tau=1e-3)  # fmt: skip


# --- federations -------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["fedadam", "fedyogi"])
def test_adaptive_federation_trains_and_differs_from_fedavg(tmp_path: Path, strategy: str) -> None:
    fedavg, _ = run(load_federation(make_federation(tmp_path / "avg", rounds=3)))
    extra = adaptive(learning_rate=0.3)
    spec = load_federation(
        make_federation(tmp_path / strategy, rounds=3, strategy=strategy, extra=extra)
    )

    result, _ = run(spec)

    assert result.report.strategy == strategy
    assert [r.status for r in result.report.rounds] == ["ok"] * 3
    assert result.report.final["auc"] > 0.75
    a, b = to_arrays(fedavg.model), to_arrays(result.model)
    assert not all(np.allclose(x, y) for x, y in zip(a, b, strict=True))


def test_adaptive_step_under_ckks_equals_the_plain_one(tmp_path: Path) -> None:
    extra = adaptive(learning_rate=0.05)
    plain, _ = run(load_federation(make_federation(
        tmp_path / "a", rounds=3, strategy="fedadam", extra=extra)))  # fmt: skip
    spec = load_federation(make_federation(
        tmp_path / "b", privacy="he", rounds=3, strategy="fedadam", extra=extra))  # fmt: skip

    encrypted, grid = run(spec)

    assert encrypted.report.strategy == "encrypted-fedadam"
    assert grid.sent.count(wire.DECRYPT) == 3  # the server step needs each round's sum
    for a, b in zip(to_arrays(plain.model), to_arrays(encrypted.model), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.parametrize(("privacy", "rounds_run"), [("none", 2), ("he", 3)])
def test_a_plateau_stops_the_federation_and_the_report_says_why(
    tmp_path: Path, privacy: str, rounds_run: int
) -> None:
    # No round can gain 0.5 AUC: the plateau is seen at round 2 (patience 1).
    extra = "[early_stopping]\npatience = 1\nmin_delta = 0.5\n"
    spec = load_federation(make_federation(tmp_path, privacy=privacy, rounds=6, extra=extra))

    result, _ = run(spec)

    stopped = result.report.final["stopped"]
    assert len(result.report.rounds) == rounds_run  # under CKKS one round more settles
    assert stopped["reason"] == "plateau" and stopped["detected_at_round"] == 2
    assert stopped["round"] == rounds_run and stopped["planned"] == 6
    assert stopped["best_round"] == 1 and stopped["patience"] == 1


def test_a_federation_without_early_stopping_runs_every_round(tmp_path: Path) -> None:
    result, _ = run(load_federation(make_federation(tmp_path, rounds=2)))

    assert result.report.final["stopped"] == {"reason": "rounds_completed", "round": 2,
                                              "planned": 2}  # fmt: skip


def test_plateau_rule() -> None:
    stop = PlateauStop(patience=2, min_delta=0.01)

    seen = [stop.observe(r, auc) for r, auc in enumerate([0.70, 0.75, 0.755, 0.759], 1)]

    # 0.755 and 0.759 gain less than 0.01 over 0.75: two stale rounds stop it at round 4.
    assert seen == [False, False, False, True]
    assert stop.best_auc == 0.75 and stop.best_round == 2 and stop.stopped_at == 4
    assert stop.observe(5, 0.9)  # once stopped, it stays stopped


def test_plateau_counts_failed_rounds_and_a_slow_climb_resets_it() -> None:
    stop = PlateauStop(patience=3, min_delta=0.01)

    seen = [stop.observe(r, a) for r, a in enumerate([0.7, None, 0.705, 0.711, None], 1)]

    assert seen == [False, False, False, False, False]
    assert stop.best_round == 4 and stop.stale == 1
    with pytest.raises(ValueError, match="patience"):
        PlateauStop(patience=0, min_delta=0.0)


@pytest.mark.parametrize(
    ("strategy", "extra", "message"),
    [
        ("fedavg", "[server_optimizer]\nlearning_rate = 0.1\n", "applies only to strategy"),
        ("fedadam", "[server_optimizer]\nbeta_1 = 1.0\n", "beta_1: must be in [0, 1)"),
        ("fedadam", "[server_optimizer]\nlearning_rat = 0.1\n", "did you mean"),
        ("fedavg", "[early_stopping]\nmin_delta = 0.01\n", "patience: missing"),
        ("fedavg", "[early_stopping]\npatience = 2\nmin_delta = -1\n", "must be >= 0"),
    ],
)
def test_bad_adaptive_or_stopping_settings_name_the_key(
    tmp_path: Path, strategy: str, extra: str, message: str
) -> None:
    path = make_federation(tmp_path, strategy=strategy, extra=extra)

    with pytest.raises(FederationFileError, match=message.replace("[", r"\[").replace(")", r"\)")):
        load_federation(path)


def test_early_stopping_needs_an_evaluation_file(tmp_path: Path) -> None:
    path = make_federation(tmp_path, extra="[early_stopping]\npatience = 2\n")
    path.write_text(path.read_text().replace('[evaluation]\nfile = "eval.csv"\n', ""))

    with pytest.raises(FederationFileError, match="needs an \\[evaluation\\] file"):
        load_federation(path)
