"""Training and evaluation primitives shared by federated participants and baselines.

:func:`train_local` is one participant's local update: binary cross-entropy on logits,
optionally with the FedProx proximal term (Li et al. 2020, "Federated Optimization in
Heterogeneous Networks", MLSys). It runs unchanged on a plain model/optimizer/loader or on
the Opacus-wrapped ones that ``privacy`` returns for DP-SGD (Abadi et al. 2016); this module
never imports Opacus, it recognises a DP optimizer by its public ``pre_step`` /
``original_optimizer`` interface.

Under DP-SGD the proximal gradient ``mu * (w - w_global)`` does not depend on any record, so
it is added *after* per-sample clipping and noising (post-processing: it costs no privacy).
Added to the loss instead, Opacus would silently drop it, because it replaces ``p.grad`` by
the noised sum of per-sample gradients.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, cast, runtime_checkable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .nets import build_network, predict_proba

__all__ = [
    "PROBABILITY_CLIP",
    "EvalMetrics",
    "TrainStats",
    "evaluate",
    "make_loader",
    "train_centralized",
    "train_local",
]

logger = logging.getLogger(__name__)

#: Probabilities are clipped to ``[PROBABILITY_CLIP, 1 - PROBABILITY_CLIP]`` for log-loss.
PROBABILITY_CLIP = 1e-7


@dataclass(frozen=True)
class TrainStats:
    """What one call of :func:`train_local` did.

    ``steps`` counts parameter updates actually applied (with Opacus, a step the DP
    optimizer skips is not counted; a step on an empty Poisson batch is: it applies noise
    only). ``examples`` counts rows seen over all epochs. ``mean_loss`` is the
    example-weighted mean of the data loss (without the proximal term); ``nan`` if no
    example was seen.
    """

    steps: int
    examples: int
    mean_loss: float


@dataclass(frozen=True)
class EvalMetrics:
    """Discrimination and calibration of a model on a labelled set.

    ``auc`` is ``nan`` when the labels hold a single class (AUC is undefined then).
    """

    auc: float
    log_loss: float
    n: int
    positive_rate: float

    def to_dict(self) -> dict[str, float | int]:
        """A JSON-ready form (model cards, round metrics)."""
        return {
            "auc": self.auc,
            "log_loss": self.log_loss,
            "n": self.n,
            "positive_rate": self.positive_rate,
        }


@runtime_checkable
class _DPOptimizer(Protocol):
    """The part of Opacus' ``DPOptimizer`` interface used here."""

    original_optimizer: torch.optim.Optimizer

    def pre_step(self) -> bool | None: ...


def make_loader(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    seed: int,
    shuffle: bool = True,
) -> DataLoader[tuple[torch.Tensor, ...]]:
    """A loader of ``(features float32 (b, d), labels float32 (b,))`` batches.

    Shuffling uses its own generator seeded by ``seed``, so batches are reproducible and
    independent of torch's global random state.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    x = np.asarray(features, dtype=np.float32)
    y = np.asarray(labels, dtype=np.float32).reshape(-1)
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D array (n, d), got shape {x.shape}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"features have {x.shape[0]} rows but labels have {y.shape[0]}")
    dataset = TensorDataset(torch.from_numpy(x.copy()), torch.from_numpy(y.copy()))
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)


def _anchor(
    params: Sequence[nn.Parameter], global_params: Sequence[torch.Tensor] | None
) -> list[torch.Tensor]:
    if global_params is None:
        return [param.detach().clone() for param in params]
    if len(global_params) != len(params):
        raise ValueError(
            f"global_params has {len(global_params)} tensors, the model has {len(params)}"
        )
    anchors: list[torch.Tensor] = []
    for index, (param, anchor) in enumerate(zip(params, global_params, strict=True)):
        if tuple(anchor.shape) != tuple(param.shape):
            raise ValueError(
                f"global_params[{index}]: expected shape {tuple(param.shape)}, "
                f"got {tuple(anchor.shape)}"
            )
        anchors.append(anchor.detach().to(device=param.device, dtype=param.dtype))
    return anchors


def _add_proximal_gradient(
    params: Sequence[nn.Parameter], anchors: Sequence[torch.Tensor], *, proximal_mu: float
) -> None:
    """Add ``mu * (w - w_global)``, the gradient of ``mu/2 * ||w - w_global||^2``."""
    with torch.no_grad():
        for param, anchor in zip(params, anchors, strict=True):
            term = proximal_mu * (param.detach() - anchor)
            if param.grad is None:
                param.grad = term.clone()
            else:
                param.grad.add_(term)


def _batch_loss(
    model: nn.Module, batch: Sequence[torch.Tensor], criterion: nn.Module
) -> tuple[torch.Tensor, int]:
    features, labels = batch[0], batch[1]
    n_rows = int(features.shape[0])
    logits = model(features.float())
    if n_rows == 0:
        # An empty Poisson batch: a zero loss still runs backward, so Opacus sees empty
        # per-sample gradients and its step adds noise only, as DP-SGD requires.
        return logits.sum() * 0.0, 0
    loss = criterion(logits, labels.float().reshape(n_rows, 1))
    return cast(torch.Tensor, loss), n_rows


def train_local(
    model: nn.Module,
    loader: Iterable[Sequence[torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    proximal_mu: float = 0.0,
    global_params: Sequence[torch.Tensor] | None = None,
) -> TrainStats:
    """Train ``model`` for ``epochs`` passes over ``loader``; return what was done.

    The loss is the batch mean of binary cross-entropy on logits. With
    ``proximal_mu > 0`` the FedProx term ``mu/2 * ||w - w_global||^2`` is added, anchored
    at ``global_params`` (in ``model.parameters()`` order), or at the parameters on entry
    when ``global_params`` is ``None`` (the global model a round starts from).
    ``optimizer`` is a ``torch.optim.Optimizer`` or an Opacus ``DPOptimizer``.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if not math.isfinite(proximal_mu) or proximal_mu < 0:
        raise ValueError(f"proximal_mu must be a finite number >= 0, got {proximal_mu}")
    params = [param for param in model.parameters() if param.requires_grad]
    anchors = _anchor(params, global_params) if proximal_mu > 0 else []
    criterion = nn.BCEWithLogitsLoss()
    dp_optimizer = optimizer if isinstance(optimizer, _DPOptimizer) else None
    steps = examples = 0
    loss_sum = 0.0
    model.train()
    for _ in range(epochs):
        for batch in loader:
            optimizer.zero_grad()
            loss, n_rows = _batch_loss(model, batch, criterion)
            torch.autograd.backward(loss)
            if dp_optimizer is not None:
                applied = dp_optimizer.pre_step() is not False
                if applied:
                    if anchors:
                        _add_proximal_gradient(params, anchors, proximal_mu=proximal_mu)
                    dp_optimizer.original_optimizer.step()
            else:
                if anchors:
                    _add_proximal_gradient(params, anchors, proximal_mu=proximal_mu)
                optimizer.step()
                applied = True
            steps += int(applied)
            examples += n_rows
            loss_sum += float(loss.detach()) * n_rows
    optimizer.zero_grad()
    mean_loss = loss_sum / examples if examples else float("nan")
    logger.debug(
        "local training: %d epochs, %d steps, %d examples, mean loss %.4f, mu=%g, dp=%s",
        epochs,
        steps,
        examples,
        mean_loss,
        proximal_mu,
        dp_optimizer is not None,
    )
    return TrainStats(steps=steps, examples=examples, mean_loss=mean_loss)


def evaluate(model: nn.Module, features: np.ndarray, labels: np.ndarray) -> EvalMetrics:
    """ROC AUC and log-loss of ``model`` on a labelled set (scikit-learn's definitions).

    Log-loss uses probabilities clipped to ``[PROBABILITY_CLIP, 1 - PROBABILITY_CLIP]``.
    """
    # scikit-learn costs seconds to import; a participant only needs it to evaluate.
    from sklearn.metrics import log_loss as sk_log_loss
    from sklearn.metrics import roc_auc_score

    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if y.shape[0] != np.asarray(features).shape[0]:
        raise ValueError(
            f"features have {np.asarray(features).shape[0]} rows but labels have {y.shape[0]}"
        )
    if y.shape[0] == 0:
        raise ValueError("cannot evaluate on an empty set")
    if not np.all((y == 0.0) | (y == 1.0)):
        raise ValueError("labels must be 0 or 1")
    probabilities = np.clip(predict_proba(model, features), PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)
    if np.unique(y).size < 2:
        logger.warning("evaluation set of %d rows holds one class only: AUC is nan", y.shape[0])
        auc = float("nan")
    else:
        auc = float(roc_auc_score(y, probabilities))
    return EvalMetrics(
        auc=auc,
        log_loss=float(sk_log_loss(y, probabilities, labels=[0.0, 1.0])),
        n=int(y.shape[0]),
        positive_rate=float(y.mean()),
    )


def train_centralized(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    kind: str = "logistic",
    hidden: Sequence[int] = (),
    epochs: int = 20,
    batch_size: int = 256,
    learning_rate: float = 0.05,
    optimizer: Literal["sgd", "adam"] = "adam",
    weight_decay: float = 0.0,
    seed: int,
    feature_shift: Sequence[float] = (),
    feature_scale: Sequence[float] = (),
) -> nn.Module:
    """Train one model on pooled data: the non-federated baseline the benchmarks compare to.

    Uses the same loop as :func:`train_local` (no proximal term, no DP).
    """
    if learning_rate <= 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D array (n, d), got shape {x.shape}")
    model = build_network(
        kind,
        n_features=x.shape[1],
        hidden=hidden,
        seed=seed,
        feature_shift=feature_shift,
        feature_scale=feature_scale,
    )
    loader = make_loader(x, labels, batch_size=batch_size, seed=seed)
    opt: torch.optim.Optimizer
    if optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    else:
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    stats = train_local(model, loader, opt, epochs=epochs)
    logger.info(
        "centralized %s baseline: %d rows, %d epochs, final mean loss %.4f",
        kind,
        x.shape[0],
        epochs,
        stats.mean_loss,
    )
    return model
