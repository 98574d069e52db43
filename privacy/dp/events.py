"""Privacy spent as data: one DP event per run of DP-SGD at a fixed noise and sample rate.

An event is what the accountants compose (the Poisson-subsampled Gaussian mechanism of
Abadi et al. 2016, "Deep Learning with Differential Privacy", applied ``steps`` times), in
the style of Google's ``dp_accounting`` events: the maths lives in the accountant, the
bookkeeping in :mod:`privacy.dp.budget`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParametersError

__all__ = ["DPEvent"]


@dataclass(frozen=True)
class DPEvent:
    """``steps`` steps of DP-SGD with noise ``noise_multiplier`` at Poisson rate ``sample_rate``.

    ``noise_multiplier`` is the Gaussian noise standard deviation divided by the clipping
    norm (sigma in Abadi et al.); ``sample_rate`` is the probability q that a record is in a
    batch; ``steps`` counts noisy optimizer steps.
    """

    noise_multiplier: float
    sample_rate: float
    steps: int

    def __post_init__(self) -> None:
        sigma = self.noise_multiplier
        if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real):
            raise InvalidParametersError(f"noise_multiplier must be a number, got {sigma!r}")
        if not (math.isfinite(float(sigma)) and sigma > 0):
            raise InvalidParametersError(f"noise_multiplier must be finite and > 0, got {sigma}")
        q = self.sample_rate
        if isinstance(q, bool) or not isinstance(q, numbers.Real):
            raise InvalidParametersError(f"sample_rate must be a number, got {q!r}")
        if not (0.0 < float(q) <= 1.0):
            raise InvalidParametersError(f"sample_rate must be in (0, 1], got {q}")
        steps = self.steps
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
            raise InvalidParametersError(f"steps must be an int, got {steps!r}")
        if steps < 1:
            raise InvalidParametersError(f"steps must be >= 1, got {steps}")
        object.__setattr__(self, "noise_multiplier", float(sigma))
        object.__setattr__(self, "sample_rate", float(q))
        object.__setattr__(self, "steps", int(steps))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping of the three fields."""
        return {
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "steps": self.steps,
        }

    @classmethod
    def from_dict(cls, data: Any) -> DPEvent:
        """Rebuild an event from :meth:`to_dict` output; malformed input is a ValueError."""
        if not isinstance(data, dict):
            raise InvalidParametersError(f"a DP event must be a mapping, got {type(data).__name__}")
        missing = {"noise_multiplier", "sample_rate", "steps"} - data.keys()
        if missing:
            raise InvalidParametersError(f"DP event lacks {sorted(missing)}: {data!r}")
        return cls(
            noise_multiplier=data["noise_multiplier"],
            sample_rate=data["sample_rate"],
            steps=data["steps"],
        )
