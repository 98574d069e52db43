"""Column catalogue of every table the scenario writes: type, allowed range, unit.

The manifest copies these so that the lead can build a federation schema without reading the
data; ``min``/``max`` are the values a node will accept (domain), not the observed extremes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from models.specs import CROPS, INDUSTRIES, TAX_GRADES

__all__ = [
    "CROPS",
    "FARMER_BANK_COLUMNS",
    "FARMER_GOV_COLUMNS",
    "INDUSTRIES",
    "IOT_INDICATOR_SPECS",
    "SME_BANK_COLUMNS",
    "SME_GOV_COLUMNS",
    "TAX_GRADES",
    "ColumnSpec",
    "ColumnType",
]

ColumnType = Literal["float", "int", "bool", "category"]


@dataclass(frozen=True)
class ColumnSpec:
    """One feature column: its type, accepted range or levels, and what it measures."""

    name: str
    type: ColumnType
    description: str
    min: float | None = None
    max: float | None = None
    levels: tuple[str, ...] = ()


def _f(name: str, description: str, lo: float | None = 0.0, hi: float | None = None) -> ColumnSpec:
    return ColumnSpec(name=name, type="float", description=description, min=lo, max=hi)


def _i(name: str, description: str, lo: float | None = 0, hi: float | None = None) -> ColumnSpec:
    return ColumnSpec(name=name, type="int", description=description, min=lo, max=hi)


def _b(name: str, description: str) -> ColumnSpec:
    return ColumnSpec(name=name, type="bool", description=description, min=0, max=1)


def _c(name: str, description: str, levels: tuple[str, ...]) -> ColumnSpec:
    return ColumnSpec(name=name, type="category", description=description, levels=levels)


FARMER_BANK_COLUMNS: Final[tuple[ColumnSpec, ...]] = (
    _f("deposit_balance_cny", "deposit balance at month end, CNY", 0, 1e9),
    _f("avg_balance_6m_cny", "average daily balance over 6 months, CNY", 0, 1e9),
    _i("txn_count_monthly", "average monthly transaction count", 0, 10_000),
    _i("account_age_months", "months since the first account was opened", 0, 1_200),
    _i("existing_loans", "number of loans outstanding", 0, 50),
    _f("existing_loan_balance_cny", "outstanding loan principal, CNY", 0, 1e9),
    _i("late_repayments_24m", "instalments repaid late in 24 months", 0, 100),
    _i("max_days_late_24m", "longest delay of an instalment in 24 months, days", 0, 3_650),
    _i("credit_inquiries_6m", "credit-report inquiries in 6 months", 0, 100),
)
FARMER_GOV_COLUMNS: Final[tuple[ColumnSpec, ...]] = (
    _f("planted_area_mu", "planted area registered on the agricultural platform, mu", 0, 1e5),
    _c("main_crop", "main crop by area", CROPS),
    _i("livestock_head", "livestock head count (pig equivalents)", 0, 1e6),
    _i("land_transfer_contracts", "registered land-transfer (rent-in) contracts", 0, 100),
    _f("land_transfer_area_mu", "area rented in under those contracts, mu", 0, 1e5),
    _f("rural_housing_m2", "registered rural housing floor area, m²", 0, 1e4),
    _b("housing_certificate", "holds a rural housing property certificate"),
    _f("subsidies_12m_cny", "agricultural subsidies received in 12 months, CNY", 0, 1e8),
    _b("cooperative_member", "member of a farmers' professional cooperative"),
)
SME_BANK_COLUMNS: Final[tuple[ColumnSpec, ...]] = (
    _f("monthly_inflow_cny", "average monthly settlement inflow, CNY", 0, 1e11),
    _f("monthly_outflow_cny", "average monthly settlement outflow, CNY", 0, 1e11),
    _i("counterparties_12m", "distinct settlement counterparties in 12 months", 0, 1e6),
    _f("balance_volatility", "coefficient of variation of daily balances", 0, 100),
    _f("avg_balance_cny", "average daily balance, CNY", 0, 1e11),
    _f("existing_credit_cny", "credit outstanding at this bank, CNY", 0, 1e11),
    _i("overdue_count_24m", "overdue events in 24 months", 0, 100),
    _i("max_overdue_days_24m", "longest overdue in 24 months, days", 0, 3_650),
)
SME_GOV_COLUMNS: Final[tuple[ColumnSpec, ...]] = (
    _f("registration_age_years", "years since business registration", 0, 100),
    _f("registered_capital_cny", "registered capital, CNY", 0, 1e12),
    _c("industry", "GB/T 4754 industry section", INDUSTRIES),
    _b("key_enterprise", "on the city's key-enterprise list"),
    _c("tax_credit_grade", "tax credit grade (A best, D worst, M new firm)", TAX_GRADES),
    _f("vat_invoices_12m_cny", "VAT invoices issued in 12 months, CNY", 0, 1e12),
    _f("declared_revenue_12m_cny", "revenue declared to the tax bureau in 12 months, CNY", 0, 1e12),
    _i("social_insurance_headcount", "employees with social insurance paid", 0, 1e6),
    _i("court_cases_3y", "court cases as defendant in 3 years", 0, 1_000),
    _i("admin_penalties_3y", "administrative penalties in 3 years", 0, 1_000),
)
IOT_INDICATOR_SPECS: Final[tuple[ColumnSpec, ...]] = (
    _f("energy_per_unit", "kWh-equivalent (gas at 10 kWh/m³) per good unit", 0, 1e6),
    _f("energy_per_unit_drift", "energy per unit vs the firm's 6-month median, relative", -1, 5),
    _f("energy_trend", "energy vs the previous 3 months' mean, relative", -1, 5),
    _f("utilisation", "machine run hours / machine-hours in the month", 0, 1),
    _f("run_hours_trend", "run hours vs the previous 3 months' mean, relative", -1, 5),
    _f("night_shift_share", "share of electricity used 22:00-06:00", 0, 1),
    _f("humid_hours_share", "share of workshop hours at >= 85 % humidity", 0, 1),
    _f("mould_opens_per_unit", "machine cycles (mould opens) per MES unit produced", 0, 1e4),
    _f("mes_erp_mismatch", "|MES good output / ERP production - 1| (cross-check)", 0, 10),
    _f("ship_to_order_ratio", "ERP quantity shipped / ordered, trailing 3 months", 0, 5),
    _f("order_growth", "order value, last 3 months vs the 3 before, relative", -1, 5),
    _f("defect_rate", "MES defective / produced", 0, 1),
    _f("receivable_overdue_ratio", "overdue / outstanding receivables at month end", 0, 1),
    _f("receivable_overdue_days", "amount-weighted days past due of overdue receivables", 0, 3650),
    _f("top_customer_share", "largest customer's share of shipments, trailing 3 months", 0, 1),
    _f("top_supplier_share", "largest supplier's share of purchases, trailing 3 months", 0, 1),
)
