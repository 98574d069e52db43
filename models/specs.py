"""Model specs: what each product model reads, how it is built and how it explains itself.

A :class:`ModelSpec` ties a model name to its network architecture, its feature schema, the
consent data categories it uses (a scoring call needs a grant covering all of them) and a
short loan-officer phrase per feature for reason codes (DESIGN.md: decisions must be
explainable to loan officers and to the subject). A categorical read one-hot encoded is one
reason, not one per category: its columns form an occlusion group (:mod:`models.occlusion`),
phrased with the subject's own category ("main crop: fruit").

The product models' features are declared once each, in the ``_IOT``, ``_FARMER`` and
``_SME`` tables below: name, type, range, data category, holding party and reason phrase.
Everything else (schemas, per-party schemas, categories, reason codes) is derived from
those tables, so a feature is renamed or re-ranged in exactly one line.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

from .card import ModelCard
from .errors import ModelNotFoundError, ModelsError, SchemaError, did_you_mean
from .nets import NETWORK_KINDS
from .occlusion import OcclusionGroup, cover, groups_from_card, one_hot_name
from .schema import FeatureSpec, FeatureType, TabularSchema

__all__ = [
    "CROPS",
    "ID_COLUMN",
    "INDUSTRIES",
    "LABEL_COLUMN",
    "MODEL_SPECS",
    "TAX_GRADES",
    "ModelSpec",
    "card_occlusion_groups",
    "get_spec",
    "one_hot_name",
    "spec_names",
]

logger = logging.getLogger(__name__)

FederationMode = Literal["horizontal", "vertical"]

#: Subject id column of every built-in schema.
ID_COLUMN: Final = "subject_id"
#: Outcome column: 1 if the subject defaulted or was overdue within 12 months.
LABEL_COLUMN: Final = "default_12m"
#: The party that holds the labels in vertical models (DESIGN.md, domain table).
LABEL_PARTY: Final = "bank"


@dataclass(frozen=True)
class ModelSpec:
    """The definition of one model: architecture, features, data categories, reasons.

    ``schema`` is ``None`` for bring-your-own models whose schema comes from the
    federation file. Vertical models also list ``party_features``: which party holds
    which features (the bank holds the labels); ``schema`` is then their union, bank
    features first, as used by the centralized baseline.
    """

    name: str
    description: str
    architecture: str
    hidden: tuple[int, ...] = ()
    schema: TabularSchema | None = None
    mode: FederationMode = "horizontal"
    data_categories: tuple[str, ...] = ()
    reason_codes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    feature_categories: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    party_features: Mapping[str, tuple[FeatureSpec, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    #: The categoricals read one-hot encoded: each one reason, phrased with its level.
    categoricals: tuple[OcclusionGroup, ...] = ()

    def __post_init__(self) -> None:
        if self.architecture not in NETWORK_KINDS:
            raise ValueError(
                f"spec {self.name!r}: architecture must be one of {', '.join(NETWORK_KINDS)}, "
                f"got {self.architecture!r}"
            )
        for attribute in ("reason_codes", "feature_categories", "party_features"):
            object.__setattr__(self, attribute, MappingProxyType(dict(getattr(self, attribute))))
        if self.schema is not None:
            names = set(self.schema.feature_names)
            for attribute in ("reason_codes", "feature_categories"):
                unknown = sorted(set(getattr(self, attribute)) - names)
                if unknown:
                    raise SchemaError(
                        f"spec {self.name!r}: {attribute} names unknown features {unknown}"
                    )
            columns = [c for g in self.categoricals for c in g.columns]
            unknown = sorted(set(columns) - names)
            if (
                unknown
                or len(set(columns)) != len(columns)
                or not all(g.categorical for g in self.categoricals)
            ):
                raise SchemaError(
                    f"spec {self.name!r}: categoricals must be one-hot groups of distinct "
                    f"schema features, got unknown {unknown} in {list(self.categoricals)}"
                )
        if self.mode == "vertical" and LABEL_PARTY not in self.party_features:
            raise SchemaError(
                f"spec {self.name!r}: a vertical model needs {LABEL_PARTY!r} features"
            )

    @property
    def parties(self) -> tuple[str, ...]:
        """Parties holding features of a vertical model (empty for horizontal ones)."""
        return tuple(self.party_features)

    def reason_phrase(self, feature: str) -> str:
        """The loan-officer phrase for a feature that pushed a score up."""
        return self.reason_codes.get(feature, f"unusual value of {feature.replace('_', ' ')}")

    def group_phrase(self, group: str, level: str | None) -> str:
        """The phrase of an occlusion group that pushed a score up: a categorical's names
        the subject's own ``level`` ("main crop: fruit"), and none when it is unknown."""
        if level is not None:
            default = f"{group.replace('_', ' ')}: {level}"
            return self.reason_codes.get(one_hot_name(group, level), default)
        return self.reason_phrase(group)

    def occlusion_groups(self, features: Sequence[str] | None = None) -> tuple[OcclusionGroup, ...]:
        """The groups reason codes occlude over ``features`` (a party's; default: the
        schema's), in feature order: each categorical's columns together, others alone."""
        if features is None:
            features = self.schema.feature_names if self.schema is not None else ()
        return cover(features, self.categoricals)

    def party_schema(self, party: str) -> TabularSchema:
        """The table one party of a vertical model holds (labels only at the bank)."""
        if party not in self.party_features:
            known = ", ".join(self.party_features) or "none (not a vertical model)"
            raise ModelNotFoundError(
                f"model {self.name!r} has no party {party!r}{did_you_mean(party, self.parties)};"
                f" parties: {known}"
            )
        label = LABEL_COLUMN if party == LABEL_PARTY else None
        return TabularSchema(id=ID_COLUMN, label=label, features=self.party_features[party])


@dataclass(frozen=True)
class _Feature:
    """One row of a feature table: the single place a built-in feature is defined."""

    name: str
    type: FeatureType
    min: float | None
    max: float | None
    category: str
    reason: str
    #: For a one-hot indicator: the categorical it encodes, and its level.
    one_hot_of: tuple[str, str] | None = None

    def spec(self) -> FeatureSpec:
        return FeatureSpec(name=self.name, type=self.type, min=self.min, max=self.max)


_F = _Feature

#: Levels of the categorical columns the vertical models read one-hot encoded.
CROPS: Final = ("corn", "fruit", "none", "rice", "tea", "vegetables", "wheat")
INDUSTRIES: Final = ("A", "C", "F", "G", "H", "I", "L")
TAX_GRADES: Final = ("A", "B", "C", "D", "M")


def _one_hot(column: str, levels: Sequence[str], category: str, what: str) -> tuple[_Feature, ...]:
    return tuple(
        _F(
            one_hot_name(column, level),
            "bool",
            None,
            None,
            category,
            f"{what}: {level}",
            one_hot_of=(column, level),
        )
        for level in levels
    )


def _categoricals(features: Sequence[_Feature]) -> tuple[OcclusionGroup, ...]:
    levels: dict[str, list[str]] = {}
    for feature in features:
        if feature.one_hot_of is not None:
            column, level = feature.one_hot_of
            levels.setdefault(column, []).append(level)
    return tuple(OcclusionGroup.one_hot(column, lvs) for column, lvs in levels.items())


# Feature tables: name, type, min, max, consent data category, reason phrase (the phrase
# says why the feature pushed a score up). Money is in CNY, areas in mu.
# fmt: off

# IoT (factory) risk: indicators computed at each factory's edge node.
_IOT: Final[tuple[_Feature, ...]] = (
    _F("energy_per_unit", "float", 0, 10_000, "iot.energy", "high energy use per unit produced"),
    _F("utilisation", "float", 0, 1, "iot.machines", "low machine utilisation"),
    _F("energy_trend", "float", -1, 10, "iot.energy", "energy use moving against orders"),
    _F("output_order_ratio", "float", 0, 10, "iot.production", "output out of line with orders"),
    _F("shipment_order_ratio", "float", 0, 10, "iot.erp", "shipments lagging behind orders"),
    _F("receivable_overdue_ratio", "float", 0, 1, "iot.erp", "many receivables overdue"),
    _F("customer_concentration", "float", 0, 1, "iot.erp", "sales concentrated on few customers"),
    _F("supplier_concentration", "float", 0, 1, "iot.erp", "dependence on few suppliers"),
    _F("defect_rate", "float", 0, 1, "iot.production", "high defect rate"),
    _F("night_share", "float", 0, 1, "iot.energy", "unusual share of night-time activity"),
    _F("payment_delay_days", "float", 0, 3_650, "iot.erp", "late payments"),
    _F("order_growth", "float", -1, 10, "iot.erp", "shrinking order book"),
    _F("downtime_share", "float", 0, 1, "iot.machines", "frequent machine downtime"),
    _F("temperature_excursions", "float", 0, 100_000, "iot.environment",
       "frequent temperature excursions on the line"),
)

# Farmer credit, bank side (holds the labels).
_FARMER_BANK: Final[tuple[_Feature, ...]] = (
    _F("deposit_balance_cny", "float", 0, 1e9, "bank.transactions", "low deposit balance"),
    _F("avg_balance_6m_cny", "float", 0, 1e9, "bank.transactions",
       "low average balance over 6 months"),
    _F("txn_count_monthly", "int", 0, 10_000, "bank.transactions", "few account transactions"),
    _F("account_age_months", "int", 0, 1_200, "bank.transactions", "short banking relationship"),
    _F("existing_loans", "int", 0, 50, "bank.loans", "several loans outstanding"),
    _F("existing_loan_balance_cny", "float", 0, 1e9, "bank.loans", "high existing loans"),
    _F("late_repayments_24m", "int", 0, 100, "bank.loans", "past late repayments"),
    _F("max_days_late_24m", "int", 0, 3_650, "bank.loans", "long past repayment delays"),
    _F("credit_inquiries_6m", "int", 0, 100, "bank.loans", "many recent credit inquiries"),
)

# Farmer credit, government agricultural platform side (the main crop one-hot encoded).
_FARMER_GOV: Final[tuple[_Feature, ...]] = (
    _F("planted_area_mu", "float", 0, 1e5, "gov.agri", "small planted area"),
    *_one_hot("main_crop", CROPS, "gov.agri", "main crop"),
    _F("livestock_head", "int", 0, 1e6, "gov.agri", "small livestock holding"),
    _F("land_transfer_contracts", "int", 0, 100, "gov.registry", "few land-transfer contracts"),
    _F("land_transfer_area_mu", "float", 0, 1e5, "gov.registry", "little contracted land"),
    _F("rural_housing_m2", "float", 0, 1e4, "gov.registry", "small registered housing"),
    _F("housing_certificate", "bool", None, None, "gov.registry",
       "no rural housing certificate"),
    _F("subsidies_12m_cny", "float", 0, 1e8, "gov.agri", "few subsidies received"),
    _F("cooperative_member", "bool", None, None, "gov.agri", "not a cooperative member"),
)

# SME risk, bank side (holds the labels).
_SME_BANK: Final[tuple[_Feature, ...]] = (
    _F("monthly_inflow_cny", "float", 0, 1e11, "bank.transactions", "low settlement inflows"),
    _F("monthly_outflow_cny", "float", 0, 1e11, "bank.transactions",
       "outflows high vs inflows"),
    _F("counterparties_12m", "int", 0, 1e6, "bank.transactions", "few trading counterparties"),
    _F("balance_volatility", "float", 0, 100, "bank.transactions", "volatile account balance"),
    _F("avg_balance_cny", "float", 0, 1e11, "bank.transactions", "low average balance"),
    _F("existing_credit_cny", "float", 0, 1e11, "bank.loans", "high existing credit"),
    _F("overdue_count_24m", "int", 0, 100, "bank.loans", "past overdue repayments"),
    _F("max_overdue_days_24m", "int", 0, 3_650, "bank.loans", "long past overdue periods"),
)

# SME risk, government data platform side (registry, tax, social insurance, courts; the
# industry section and the tax credit grade one-hot encoded).
_SME_GOV: Final[tuple[_Feature, ...]] = (
    _F("registration_age_years", "float", 0, 100, "gov.registry", "recently registered firm"),
    _F("registered_capital_cny", "float", 0, 1e12, "gov.registry", "low registered capital"),
    *_one_hot("industry", INDUSTRIES, "gov.registry", "industry section"),
    _F("key_enterprise", "bool", None, None, "gov.registry",
       "not on the city's key-enterprise list"),
    *_one_hot("tax_credit_grade", TAX_GRADES, "gov.tax", "tax credit grade"),
    _F("vat_invoices_12m_cny", "float", 0, 1e12, "gov.tax", "low invoiced sales"),
    _F("declared_revenue_12m_cny", "float", 0, 1e12, "gov.tax", "low declared revenue"),
    _F("social_insurance_headcount", "int", 0, 1e6, "gov.registry", "few insured employees"),
    _F("court_cases_3y", "int", 0, 1_000, "gov.judicial", "recent court cases"),
    _F("admin_penalties_3y", "int", 0, 1_000, "gov.judicial",
       "recent administrative penalties"),
)

# fmt: on


def _schema(features: Sequence[_Feature]) -> TabularSchema:
    return TabularSchema(
        id=ID_COLUMN, label=LABEL_COLUMN, features=tuple(f.spec() for f in features)
    )


def _product_spec(
    *,
    name: str,
    description: str,
    architecture: str,
    hidden: tuple[int, ...],
    parties: Mapping[str, Sequence[_Feature]],
    mode: FederationMode,
) -> ModelSpec:
    features = [feature for table in parties.values() for feature in table]
    return ModelSpec(
        name=name,
        description=description,
        architecture=architecture,
        hidden=hidden,
        schema=_schema(features),
        mode=mode,
        data_categories=tuple(sorted({f.category for f in features})),
        reason_codes={f.name: f.reason for f in features},
        feature_categories={f.name: f.category for f in features},
        party_features=(
            {party: tuple(f.spec() for f in table) for party, table in parties.items()}
            if mode == "vertical"
            else {}
        ),
        categoricals=_categoricals(features),
    )


def _build_specs() -> dict[str, ModelSpec]:
    specs = (
        _product_spec(
            name="iot_risk",
            description="Factory (IoT) risk from edge indicators: energy, machines, production "
            "and ERP order-to-cash, cross-checked; horizontal across factory edge nodes.",
            architecture="mlp",
            hidden=(32, 16),
            parties={"edge": _IOT},
            mode="horizontal",
        ),
        _product_spec(
            name="farmer_credit",
            description="Farmer credit from bank accounts and credit history joined with the "
            "government agricultural platform; vertical (bank holds labels).",
            architecture="logistic",
            hidden=(),
            parties={LABEL_PARTY: _FARMER_BANK, "gov": _FARMER_GOV},
            mode="vertical",
        ),
        _product_spec(
            name="sme_risk",
            description="SME risk from bank settlement flows and credit joined with government "
            "registry, tax, social-insurance and judicial data; vertical (bank holds labels).",
            architecture="logistic",
            hidden=(),
            parties={LABEL_PARTY: _SME_BANK, "gov": _SME_GOV},
            mode="vertical",
        ),
        ModelSpec(
            name="logistic",
            description="Bring-your-own logistic regression; schema from the federation file.",
            architecture="logistic",
        ),
        ModelSpec(
            name="mlp",
            description="Bring-your-own multilayer perceptron; schema from the federation file.",
            architecture="mlp",
            hidden=(32, 16),
        ),
    )
    return {spec.name: spec for spec in specs}


#: Every registered model spec by name.
MODEL_SPECS: Final[Mapping[str, ModelSpec]] = MappingProxyType(_build_specs())


def spec_names() -> tuple[str, ...]:
    """Names of the registered model specs, sorted."""
    return tuple(sorted(MODEL_SPECS))


def card_occlusion_groups(
    card: ModelCard, *, party: str | None = None
) -> tuple[OcclusionGroup, ...]:
    """The occlusion groups a published model uses over its features (``party``'s part of a
    vertical one): the categoricals its card records, else (a card published before cards
    recorded them) its model spec's. The serving node and the coordinator both read them
    here, so they agree on what is occluded together."""
    if card.mode == "vertical":
        entry = next((p for p in card.architecture.get("parts", []) if p["party"] == party), None)
        if entry is None:
            raise ModelsError(f"{card.name} {card.version} has no part at {party!r}")
        features: Sequence[str] = tuple(entry["features"])
    else:
        entry = card.architecture
        features = [str(f["name"]) for f in card.schema.get("features", [])]
    recorded = groups_from_card(entry)
    if recorded is None:
        spec = MODEL_SPECS.get(card.spec_name)
        recorded = spec.categoricals if spec is not None else ()
    return cover(features, recorded)


def get_spec(name: str) -> ModelSpec:
    """The spec registered under ``name``; :class:`ModelNotFoundError` lists the known ones."""
    try:
        return MODEL_SPECS[name]
    except KeyError:
        raise ModelNotFoundError(
            f"unknown model {name!r}{did_you_mean(name, MODEL_SPECS)}; "
            f"known models: {', '.join(spec_names())}"
        ) from None
