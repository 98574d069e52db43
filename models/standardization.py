"""The fixed input standardisation a federation bakes into its network.

Features on wildly different scales (energy per unit in the thousands, ratios near one)
break SGD and, worse, DP-SGD, whose per-sample clipping then sees only the largest feature.
A federation therefore fixes ``(x - shift) / scale`` before round 1 and sends it to every
participant with the round config; it is part of the network and of its ONNX graph.

The statistics come from the model steward's own labelled evaluation sample (which the
coordinator holds anyway), never from a participant's rows, so they cost no privacy budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tabular import TabularData

#: Below this standard deviation a feature is treated as constant (scale 1).
MIN_SCALE = 1e-6


@dataclass(frozen=True)
class Standardization:
    """Per-feature shift and scale; empty tuples mean the identity."""

    shift: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()


def standardization_from(data: TabularData | None) -> Standardization:
    """Mean and standard deviation of each feature of ``data`` (identity without data)."""
    if data is None or len(data.ids) < 2:
        return Standardization()
    features = np.asarray(data.features, dtype=np.float64)
    mean = features.mean(axis=0)
    std = features.std(axis=0)
    std = np.where(std < MIN_SCALE, 1.0, std)
    return Standardization(shift=tuple(float(v) for v in mean), scale=tuple(float(v) for v in std))
