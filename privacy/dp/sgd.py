"""DP-SGD for one federated round: Opacus's per-sample clipping and Gaussian noise.

DP-SGD (Abadi et al. 2016, "Deep Learning with Differential Privacy") clips each record's
gradient to ``max_grad_norm`` and adds Gaussian noise of standard deviation
``noise_multiplier · max_grad_norm`` to every batch sum; with Poisson sampling each step is
a subsampled Gaussian mechanism that :mod:`privacy.dp.accounting` composes.

Opacus's :class:`~opacus.PrivacyEngine` does the clipping and noising. Its own accountant
is not used for budgets: a fresh engine is built every round and the round's cost is read
back as one :class:`~privacy.dp.events.DPEvent` (:func:`dp_event_for`), which the caller
composes across rounds and charges to the dataset's budget. Opacus errors (unsupported
layers such as BatchNorm, mismatched optimizer, missing ``torchcsprng``) are translated to
:mod:`privacy.errors`; its warnings go to the log.

Torch warns "Full backward hook is firing when gradients are computed with respect to
module outputs since no inputs require gradients" on the first backward pass of a wrapped
model; that is expected with Opacus's hooks and harmless.
"""

from __future__ import annotations

import logging
import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import nn
from torch.optim import Optimizer
from torch.utils.data import DataLoader

from ..errors import InvalidParametersError, PrivacyError
from .events import DPEvent

if TYPE_CHECKING:
    from opacus import PrivacyEngine
    from opacus.accountants.accountant import IAccountant

__all__ = ["PrivateTraining", "dp_event_for", "make_private"]

logger = logging.getLogger(__name__)

_insecure_rng_logged = False


@dataclass(frozen=True)
class PrivateTraining:
    """The DP-wrapped model, optimizer and data loader of one round.

    ``model`` computes per-sample gradients, ``optimizer`` clips and noises them,
    ``data_loader`` samples batches (Poisson sampling unless turned off); train with these
    three only. ``sample_rate`` is the rate Opacus's accounting assumes (1 / batches per
    epoch). Call :meth:`release` after the round to get the plain module back.
    """

    model: nn.Module
    optimizer: Optimizer
    data_loader: DataLoader[Any]
    sample_rate: float
    noise_multiplier: float
    max_grad_norm: float
    _accountant: IAccountant = field(repr=False, compare=False)

    @property
    def steps_taken(self) -> int:
        """Noisy optimizer steps taken so far with this optimizer."""
        return sum(int(steps) for _, _, steps in self._accountant.history)

    def release(self) -> nn.Module:
        """Remove Opacus's hooks and return the plain module (same parameters)."""
        from opacus import GradSampleModule  # loaded already: make_private built self

        if isinstance(self.model, GradSampleModule):
            module: nn.Module = self.model.to_standard_module()
            return module
        return self.model


def make_private(
    *,
    model: nn.Module,
    optimizer: Optimizer,
    data_loader: DataLoader[Any],
    noise_multiplier: float,
    max_grad_norm: float,
    secure_rng: bool = False,
    poisson_sampling: bool = True,
) -> PrivateTraining:
    """Wrap ``model``, ``optimizer`` and ``data_loader`` for DP-SGD with a fresh engine.

    ``secure_rng=True`` uses Opacus's secure mode (a CSPRNG for noise and sampling, and
    noise robust to the floating-point attack of Mironov 2012, following Holohan & Braghin
    2021, "Secure Random Sampling in Differential Privacy"); it needs the
    ``torchcsprng`` package, and its absence is a :class:`PrivacyError`, never a silent
    fallback. ``poisson_sampling=False`` keeps the caller's batching, which the accountants'
    guarantee does not strictly cover.
    """
    # Opacus is imported on first use: it costs seconds, and a participant process that
    # does not train with DP (a fresh process per Flower message) never needs it.
    from opacus import GradSampleModule
    from opacus.validators.errors import UnsupportedModuleError

    _check_positive("noise_multiplier", noise_multiplier)
    _check_positive("max_grad_norm", max_grad_norm)
    if not isinstance(model, nn.Module):
        raise InvalidParametersError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(model, GradSampleModule) or hasattr(model, "autograd_grad_sample_hooks"):
        raise InvalidParametersError(
            "model is still wrapped by a previous make_private; pass the module returned by "
            "PrivateTraining.release() or a fresh model"
        )
    if not isinstance(optimizer, Optimizer):
        raise InvalidParametersError(
            f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
        )
    _check_loader(data_loader)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine = _new_engine(secure_rng=secure_rng)
        try:
            dp_model, dp_optimizer, dp_loader = engine.make_private(
                module=model,
                optimizer=optimizer,
                data_loader=data_loader,
                noise_multiplier=float(noise_multiplier),
                max_grad_norm=float(max_grad_norm),
                poisson_sampling=poisson_sampling,
            )
        except UnsupportedModuleError as exc:
            raise InvalidParametersError(f"model cannot be trained with DP-SGD: {exc}") from exc
        except (ValueError, TypeError, NotImplementedError, ArithmeticError) as exc:
            raise InvalidParametersError(f"Opacus refused the training set-up: {exc}") from exc
        except RuntimeError as exc:
            raise PrivacyError(f"Opacus failed to set up DP-SGD: {exc}") from exc
    _log_warnings(caught)
    sample_rate = 1.0 / len(dp_loader)
    logger.info(
        "DP-SGD set up: noise multiplier %.4f, clip norm %g, sample rate %.6f, poisson=%s",
        noise_multiplier,
        max_grad_norm,
        sample_rate,
        poisson_sampling,
    )
    return PrivateTraining(
        model=dp_model,
        optimizer=dp_optimizer,
        data_loader=dp_loader,
        sample_rate=sample_rate,
        noise_multiplier=float(noise_multiplier),
        max_grad_norm=float(max_grad_norm),
        _accountant=engine.accountant,
    )


def dp_event_for(private: PrivateTraining, *, steps: int | None = None) -> DPEvent:
    """The DP event a round of training with ``private`` cost.

    ``steps`` defaults to the noisy steps the optimizer actually took; a smaller value is
    refused because it would under-count privacy. If gradient accumulation raised the
    effective sample rate of some steps, the largest rate is used (ε grows with the rate,
    so this over- rather than under-counts).
    """
    taken = private.steps_taken
    if steps is None:
        steps = taken
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise InvalidParametersError(f"steps must be an int >= 1, got {steps!r}")
    if steps < taken:
        raise InvalidParametersError(
            f"steps={steps} is fewer than the {taken} noisy steps the optimizer took; "
            "that would under-count the privacy spent"
        )
    rates = [float(q) for _, q, _ in private._accountant.history]
    sample_rate = max([private.sample_rate, *rates])
    if sample_rate > private.sample_rate:
        logger.info(
            "effective sample rate %.6f > planned %.6f (gradient accumulation)",
            sample_rate,
            private.sample_rate,
        )
    return DPEvent(
        noise_multiplier=private.noise_multiplier,
        sample_rate=min(1.0, sample_rate),
        steps=int(steps),
    )


def _new_engine(*, secure_rng: bool) -> PrivacyEngine:
    from opacus import PrivacyEngine

    try:
        return PrivacyEngine(accountant="rdp", secure_mode=bool(secure_rng))
    except ImportError as exc:
        raise PrivacyError(
            "secure_rng=True needs Opacus's secure mode, which needs the torchcsprng package "
            f"(not installed): {exc}"
        ) from exc


def _check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidParametersError(f"{name} must be a number, got {value!r}")
    if not (math.isfinite(value) and float(value) > 0):
        raise InvalidParametersError(f"{name} must be finite and > 0, got {value}")


def _check_loader(data_loader: Any) -> None:
    if not isinstance(data_loader, DataLoader):
        raise InvalidParametersError(
            f"data_loader must be a torch DataLoader, got {type(data_loader).__name__}"
        )
    try:
        size = len(data_loader.dataset)  # type: ignore[arg-type]
    except TypeError as exc:
        raise InvalidParametersError("DP-SGD needs a dataset with a length") from exc
    if size == 0:
        raise InvalidParametersError("data_loader's dataset is empty")
    if data_loader.batch_sampler is None:
        raise InvalidParametersError("data_loader must batch records (it has no batch sampler)")


def _log_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Opacus's warnings go to the log; the insecure-RNG notice once per process."""
    global _insecure_rng_logged
    for message in dict.fromkeys(str(w.message) for w in caught):
        if message.startswith("Secure RNG turned off"):
            if not _insecure_rng_logged:
                logger.warning(
                    "DP-SGD noise uses torch's default PRNG, not a CSPRNG (secure_rng=False); "
                    "use secure_rng=True for production runs"
                )
                _insecure_rng_logged = True
            continue
        logger.warning("Opacus: %s", message)
