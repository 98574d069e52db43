"""One round of local training at a participant, with or without DP-SGD.

The round's privacy cost is planned before any data is touched: the participant computes
the DP event the round will cost, checks it against its own budget and refuses the round
if the budget would be exceeded (DESIGN.md: a round over budget is refused before it starts).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from models.nets import build_network
from models.parameters import from_arrays, to_arrays
from models.training import make_loader, train_local
from privacy.dp.accounting import epsilon_for, noise_multiplier_for
from privacy.dp.budget import PrivacyBudget
from privacy.dp.events import DPEvent
from privacy.dp.sgd import make_private
from privacy.errors import BudgetExceededError, PrivacyError

from .local_data import EligibleData

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundPlan:
    """What the coordinator asks for this round (sent in the train message's config)."""

    server_round: int
    total_rounds: int
    model_kind: str
    hidden: tuple[int, ...]
    local_epochs: int
    batch_size: int
    learning_rate: float
    proximal_mu: float
    use_dp: bool
    target_epsilon: float
    delta: float
    max_grad_norm: float
    accountant: str
    seed: int
    feature_shift: tuple[float, ...] = ()
    feature_scale: tuple[float, ...] = ()


@dataclass(frozen=True)
class LocalResult:
    """A participant's trained parameters and the numbers it reports (never the data)."""

    arrays: list[np.ndarray]
    num_examples: int
    mean_loss: float
    steps: int
    epsilon_run: float
    dp_event: DPEvent | None


def plan_dp_event(plan: RoundPlan, *, n_rows: int) -> DPEvent:
    """The DP event one round of DP-SGD costs, with noise calibrated to the run's target.

    Noise is calibrated so that ``total_rounds`` rounds of ``local_epochs`` epochs compose
    to ``target_epsilon`` at ``delta`` (Abadi et al. 2016; composition by the accountant
    named in the plan). Steps and sample rate are the ones Opacus's Poisson loader takes:
    ``ceil(n_rows / batch_size)`` batches per epoch, each row drawn with rate 1 / batches.
    """
    if n_rows <= 0:
        raise ValueError(f"n_rows must be > 0, got {n_rows}")
    batches = math.ceil(n_rows / plan.batch_size)
    sample_rate = 1.0 / batches
    steps_per_round = batches * plan.local_epochs
    sigma = noise_multiplier_for(
        target_epsilon=plan.target_epsilon,
        delta=plan.delta,
        sample_rate=sample_rate,
        steps=steps_per_round * plan.total_rounds,
        kind=plan.accountant,
    )
    return DPEvent(noise_multiplier=sigma, sample_rate=sample_rate, steps=steps_per_round)


def train_round(
    plan: RoundPlan,
    *,
    global_arrays: list[np.ndarray],
    eligible: EligibleData,
    budget: PrivacyBudget | None,
    run_events: Sequence[DPEvent] = (),
    run_id: str,
    model_name: str,
    budget_name: str = "",
) -> LocalResult:
    """Train the global model on the eligible rows for one round and return the result."""
    data = eligible.data
    n_rows = len(data.ids)
    if n_rows == 0:
        raise ValueError("no eligible rows: every row lacks an active model_training grant")
    assert data.labels is not None
    torch.manual_seed(plan.seed * 1_000 + plan.server_round)
    model = build_network(
        plan.model_kind,
        n_features=data.features.shape[1],
        hidden=plan.hidden,
        seed=plan.seed,
        feature_shift=plan.feature_shift,
        feature_scale=plan.feature_scale,
    )
    from_arrays(model, global_arrays)
    global_params = [p.detach().clone() for p in model.parameters()]
    loader = make_loader(
        data.features, data.labels, batch_size=plan.batch_size, seed=plan.seed + plan.server_round
    )
    optimizer: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=plan.learning_rate)
    event: DPEvent | None = None
    if plan.use_dp:
        event = plan_dp_event(plan, n_rows=n_rows)
        if budget is not None:
            if budget.would_exceed([event]):
                raise BudgetExceededError(
                    f"round {plan.server_round} would take dataset {budget_name} over its "
                    f"lifetime budget of epsilon={budget.epsilon_limit:g} "
                    f"(spent {budget.spent():.3f}); refused before training"
                )
            # Charged before any data is touched: a crash mid-round still counts as spent.
            budget.charge([event], run_id=run_id, model=model_name, round=plan.server_round)
        private = make_private(
            model=model,
            optimizer=optimizer,
            data_loader=loader,
            noise_multiplier=event.noise_multiplier,
            max_grad_norm=plan.max_grad_norm,
        )
        model, optimizer, loader = private.model, private.optimizer, private.data_loader
    with warnings.catch_warnings():
        # Opacus's grad-sample hooks trip this torch warning on the first layer; harmless.
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        stats = train_local(
            model,
            loader,
            optimizer,
            epochs=plan.local_epochs,
            proximal_mu=plan.proximal_mu,
            global_params=global_params,
        )
    eps_total = 0.0
    if event is not None:
        if stats.steps > event.steps:
            raise PrivacyError(
                f"DP-SGD took {stats.steps} steps but {event.steps} were planned and charged"
            )
        eps_total = epsilon_for([*run_events, event], delta=plan.delta, kind=plan.accountant)
    return LocalResult(
        arrays=to_arrays(model),
        num_examples=n_rows,
        mean_loss=stats.mean_loss,
        steps=stats.steps,
        epsilon_run=eps_total,
        dp_event=event,
    )
