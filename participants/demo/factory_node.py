"""One factory edge node of the scenario: its firms' raw tables and their indicator table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from participants.demo.factory_erp import simulate_erp
from participants.demo.factory_firms import FirmPopulation, sample_firms
from participants.demo.factory_raw import simulate_operations
from participants.demo.indicators import feature_frame, label_rows
from participants.demo.iot_truth import iot_risk_score, monthly_hazard
from participants.demo.profiles import FactoryProfile
from participants.demo.raw_tables import RawTables
from participants.demo.timeline import (
    LABEL_HORIZON_MONTHS,
    OUTCOMES_OBSERVED_UNTIL,
    ObservationWindow,
)

__all__ = ["FactoryNodeData", "simulate_factory_node"]

_DAY_S = 86_400


@dataclass(frozen=True)
class FactoryNodeData:
    """A node's raw tables (kept at home) and its labelled indicator table."""

    population: FirmPopulation
    raw: RawTables
    indicators: pd.DataFrame


def _window_metadata(window: ObservationWindow) -> dict[str, object]:
    return {
        "window_start": window.start.isoformat(),
        "window_end": window.end.isoformat(),
        "months": window.months,
        "timezone": str(window.start.tz),
        "label_horizon_months": LABEL_HORIZON_MONTHS,
        "outcomes_observed_until": OUTCOMES_OBSERVED_UNTIL.isoformat(),
    }


def _sample_outcomes(
    firm_ids: list[str],
    window: ObservationWindow,
    score: np.ndarray,
    rng: np.random.Generator,
) -> pa.Table:
    """First default / 90+ DPD event per firm (rows of ``score`` follow ``firm_ids``), from
    a hazard driven by the previous month's score.

    Inside the window month ``t`` uses the score of month ``t - 1``; after the window the
    firm's last three months' mean score persists until the outcome cut-off.
    """
    F, M = score.shape
    horizon = M + LABEL_HORIZON_MONTHS
    lagged = np.empty((F, horizon))
    lagged[:, 0] = score[:, 0]
    lagged[:, 1:M] = score[:, : M - 1]
    lagged[:, M:] = score[:, -3:].mean(axis=1, keepdims=True)
    fired = rng.random((F, horizon)) < monthly_hazard(lagged)
    has_event = fired.any(axis=1)
    month = np.argmax(fired, axis=1)
    firms = np.flatnonzero(has_event)
    start_days = np.array(
        [
            window.month_start(m).tz_localize(None).value // (_DAY_S * 10**9)
            for m in range(horizon + 1)
        ]
    )
    m = month[firms]
    day = start_days[m] + (rng.random(len(firms)) * (start_days[m + 1] - start_days[m])).astype(
        np.int64
    )
    kind = np.where(rng.random(len(firms)) < 0.6, "dpd90", "default")
    return pa.table(
        {
            "firm_id": pa.array([firm_ids[i] for i in firms], pa.string()),
            "event_on": pa.array(day.astype(np.int32), pa.int32()).cast(pa.date32()),
            "event": pa.array(kind.tolist(), pa.string()),
        }
    )


def simulate_factory_node(
    profile: FactoryProfile,
    window: ObservationWindow,
    rng: np.random.Generator,
    *,
    n_firms: int,
    exclude_ids: frozenset[str] = frozenset(),
) -> FactoryNodeData:
    """Simulate a park of ``n_firms`` firms: raw tables, outcomes and indicator rows."""
    pop = sample_firms(profile, window, rng, n_firms=n_firms, exclude_ids=exclude_ids)
    ops = simulate_operations(pop, window, rng)
    tables = dict(ops.tables)
    tables.update(simulate_erp(pop, window, ops.true_good_units, rng))
    tables["credit_outcomes"] = pa.table(
        {
            "firm_id": pa.array([], pa.string()),
            "event_on": pa.array([], pa.date32()),
            "event": pa.array([], pa.string()),
        }
    )
    metadata = _window_metadata(window)
    frame = feature_frame(RawTables(tables=tables, metadata=metadata))
    score = iot_risk_score(frame.values)
    tables["credit_outcomes"] = _sample_outcomes(frame.firm_ids, window, score, rng)
    raw = RawTables(tables=tables, metadata=metadata)
    return FactoryNodeData(population=pop, raw=raw, indicators=label_rows(frame, raw))
