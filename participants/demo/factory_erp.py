"""ERP documents of a park's firms: sales orders (placed → produced → shipped → paid) and
purchase orders, consistent with the simulated production.

The ERP extract is taken at the end of the observation window: dates after it are unknown
(open orders, unpaid invoices). It reaches ``PRE_MONTHS`` further back than the sensors, as
ERP history does, so that receivables and order trends are complete from the first month.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from participants.demo.factory_firms import PRE_MONTHS, FirmPopulation
from participants.demo.timeline import ObservationWindow

__all__ = ["extended_output", "simulate_erp"]

_DAY_NS = 86_400 * 10**9
_MATERIAL_SHARE = 0.55


def extended_output(pop: FirmPopulation, true_good_units: np.ndarray) -> np.ndarray:
    """Good units per firm over the extended months: simulated inside the window,
    extrapolated with the firm's load before and after it."""
    F, M = true_good_units.shape
    load = pop.load
    out = np.zeros((F, PRE_MONTHS + M + 1))
    out[:, PRE_MONTHS : PRE_MONTHS + M] = true_good_units
    first = true_good_units[:, :3].mean(axis=1) / load[:, PRE_MONTHS : PRE_MONTHS + 3].mean(axis=1)
    out[:, :PRE_MONTHS] = first[:, None] * load[:, :PRE_MONTHS]
    last = true_good_units[:, -1] / load[:, PRE_MONTHS + M - 1]
    out[:, -1] = last * load[:, -1]
    return out


def _pick(cum: np.ndarray, firm: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Partner number (0-based) drawn with each firm's cumulative weights."""
    return np.asarray((cum[firm] < u[:, None]).sum(axis=1))


def _rank_within(sorted_groups: np.ndarray) -> np.ndarray:
    """0-based position of each element within its run of equal (sorted) group values."""
    n = len(sorted_groups)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.concatenate([[0], np.flatnonzero(np.diff(sorted_groups)) + 1])
    return np.asarray(np.arange(n) - np.repeat(first, np.diff(np.append(first, n))))


def _dates(day_ns: np.ndarray, end_ns: int) -> pa.Array:
    """Local dates from epoch-nanosecond days; unknown (NaT or after the extract) as null."""
    known = ~np.isnan(day_ns) & (day_ns < end_ns)
    days = np.where(known, day_ns, 0) // _DAY_NS
    return pa.array(days.astype(np.int32), pa.int32(), mask=~known).cast(pa.date32())


def _firm_column(pop: FirmPopulation, firm: np.ndarray) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(
        pa.array(firm.astype(np.int32)), pa.array(pop.firm_ids, pa.string())
    )


@dataclass(frozen=True)
class _Calendar:
    """Extended-month starts (naive local epoch ns), their lengths, and the extract time."""

    month_ns: np.ndarray
    month_days: np.ndarray
    end_ns: int

    @classmethod
    def of(cls, window: ObservationWindow) -> _Calendar:
        months = PRE_MONTHS + window.months + 1
        month_ns = np.array(
            [window.month_start(e - PRE_MONTHS).tz_localize(None).value for e in range(months + 1)],
            dtype=np.int64,
        )
        return cls(
            month_ns=month_ns,
            month_days=np.diff(month_ns) // _DAY_NS,
            end_ns=int(window.end.tz_localize(None).value),
        )

    def random_day(self, month: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random day (epoch ns) in each of the given extended months."""
        return np.asarray(self.month_ns[month] + rng.integers(0, self.month_days[month]) * _DAY_NS)


def _split(
    totals: np.ndarray, counts: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split each firm-month total into ``counts`` documents: (firm, month, share) each."""
    F, E = totals.shape
    firm = np.repeat(np.repeat(np.arange(F), E), counts.ravel())
    month = np.repeat(np.tile(np.arange(E), F), counts.ravel())
    weight = rng.gamma(2.0, size=len(firm))
    group = firm * E + month
    share = weight / np.bincount(group, weights=weight, minlength=F * E)[group]
    return firm, month, share


def _sales_orders(
    pop: FirmPopulation, cal: _Calendar, erp_qty: np.ndarray, rng: np.random.Generator
) -> pa.Table:
    """Orders placed, produced, shipped (unless fictitious or cancelled), due and paid."""
    counts = 1 + rng.poisson(pop.orders_per_month[:, None] * np.ones((1, erp_qty.shape[1])))
    firm, month, share = _split(erp_qty, counts, rng)
    N = len(firm)
    quantity = np.maximum(np.rint(share * erp_qty[firm, month]), 1).astype(np.int64)
    infl = pop.erp_inflation[firm, month]
    fictitious = rng.random(N) < infl / (1 + infl)
    produced = cal.random_day(month, rng)
    lead_days = 1 + np.rint(rng.gamma(2.0, 6.0, size=N))
    placed = produced - lead_days.astype(np.int64) * _DAY_NS
    shipped = (produced + rng.integers(0, 5, size=N) * _DAY_NS).astype(np.float64)
    cancelled = rng.random(N) < pop.cancel_share[firm]
    shipped[fictitious | cancelled] = np.nan
    due = shipped + pop.terms_days[firm] * _DAY_NS
    late = rng.random(N) < pop.late_share[firm, month]
    delay = np.where(late, 1 + rng.exponential(pop.late_days[firm]), -rng.integers(0, 6, size=N))
    paid = due + np.rint(delay) * _DAY_NS
    paid[late & (rng.random(N) < 0.08)] = np.nan  # bad debt, never collected
    price = pop.unit_price[firm] * rng.normal(1.0, 0.03, size=N)
    customer = _pick(pop.customer_cum, firm, rng.random(N))

    sel = np.flatnonzero(placed < cal.end_ns)
    sel = sel[np.lexsort((placed[sel], firm[sel]))]
    end = cal.end_ns
    return pa.table(
        {
            "firm_id": _firm_column(pop, firm[sel]),
            "order_id": pa.array([f"SO{n:06d}" for n in _rank_within(firm[sel]) + 1]),
            "customer_no": pa.array((customer[sel] + 1).astype(np.int32)),
            "placed_on": _dates(placed[sel].astype(np.float64), end),
            "quantity": pa.array(quantity[sel]),
            "unit_price_cny": pa.array(np.round(price[sel], 2)),
            "amount_cny": pa.array(np.round(price[sel] * quantity[sel], 2)),
            "produced_on": _dates(produced[sel].astype(np.float64), end),
            "shipped_on": _dates(shipped[sel], end),
            "due_on": _dates(np.where(shipped[sel] < end, due[sel], np.nan), end),
            "paid_on": _dates(paid[sel], end),
        }
    )


def _purchase_orders(
    pop: FirmPopulation, cal: _Calendar, output: np.ndarray, rng: np.random.Generator
) -> pa.Table:
    """Material purchases (a fixed share of sales value), spread over suppliers."""
    budget = output * pop.unit_price[:, None] * _MATERIAL_SHARE
    firm, month, share = _split(budget, 1 + rng.poisson(5.0, size=budget.shape), rng)
    amount = np.round(share * budget[firm, month], 2)
    ordered = cal.random_day(month, rng)
    supplier = _pick(pop.supplier_cum, firm, rng.random(len(firm)))
    sel = np.flatnonzero(ordered < cal.end_ns)
    sel = sel[np.lexsort((ordered[sel], firm[sel]))]
    return pa.table(
        {
            "firm_id": _firm_column(pop, firm[sel]),
            "po_id": pa.array([f"PO{n:06d}" for n in _rank_within(firm[sel]) + 1]),
            "supplier_no": pa.array((supplier[sel] + 1).astype(np.int32)),
            "ordered_on": _dates(ordered[sel].astype(np.float64), cal.end_ns),
            "amount_cny": pa.array(amount[sel]),
        }
    )


def simulate_erp(
    pop: FirmPopulation,
    window: ObservationWindow,
    true_good_units: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, pa.Table]:
    """Sales and purchase orders for every firm, as ``erp_orders`` and ``erp_purchases``."""
    output = extended_output(pop, true_good_units)
    erp_qty = output * (1 + pop.erp_inflation) * rng.normal(1.0, 0.015, size=output.shape)
    cal = _Calendar.of(window)
    return {
        "erp_orders": _sales_orders(pop, cal, erp_qty, rng),
        "erp_purchases": _purchase_orders(pop, cal, output, rng),
    }
