"""Writing each node's folder: only that node's own data goes into it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Final, Literal

import numpy as np
import pandas as pd

from models.specs import get_spec
from participants.demo.columns import (
    FARMER_BANK_COLUMNS,
    FARMER_GOV_COLUMNS,
    IOT_INDICATOR_SPECS,
    SME_BANK_COLUMNS,
    SME_GOV_COLUMNS,
    ColumnSpec,
)
from participants.demo.consent_records import write_consent_db
from participants.demo.errors import ScenarioError
from participants.demo.factory_node import FactoryNodeData
from participants.demo.manifest import DatasetManifest, NodeManifest
from participants.demo.model_views import model_view, view_columns
from participants.demo.raw_tables import write_raw_tables
from participants.demo.vertical import VerticalSplit

__all__ = [
    "BANK_CATEGORIES",
    "FACTORY_CATEGORIES",
    "GOV_CATEGORIES",
    "write_bank_node",
    "write_csv",
    "write_eval_file",
    "write_factory_node",
    "write_gov_node",
]

logger = logging.getLogger(__name__)

BANK_CATEGORIES: Final = ("bank.loans", "bank.transactions")
GOV_CATEGORIES: Final = ("gov.agri", "gov.judicial", "gov.registry", "gov.tax")
FACTORY_CATEGORIES: Final = ("iot.energy", "iot.erp", "iot.mes")
_BANK_CHANNELS: Final = ("branch_counter", "mobile_banking", "wechat_mini_program")
_GOV_CHANNELS: Final = ("gov_service_app", "gov_service_hall", "mobile_banking")
_FACTORY_CHANNELS: Final = ("mobile_banking", "park_service_portal")


def write_csv(frame: pd.DataFrame, path: Path, *, float_format: str | None = None) -> int:
    """Write ``frame`` as UTF-8 CSV with ``\\n`` line ends (byte-stable); return its size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format=float_format, lineterminator="\n")
    return path.stat().st_size


def _dataset(
    node_dir: Path,
    root: Path,
    frame: pd.DataFrame,
    *,
    name: str,
    id_column: str,
    label: bool,
    columns: Sequence[ColumnSpec],
    description: str,
    float_format: str | None = None,
) -> tuple[DatasetManifest, int]:
    expected = [id_column, *(c.name for c in columns), *(["label"] if label else [])]
    extra = [c for c in frame.columns if c not in expected and c not in ("row_id", "month")]
    if extra or any(c not in frame.columns for c in expected):
        raise ScenarioError(f"{name}: columns {list(frame.columns)} != catalogue {expected}")
    path = node_dir / f"{name}.csv"
    size = write_csv(frame, path, float_format=float_format)
    manifest = DatasetManifest(
        name=name,
        file=path.relative_to(root).as_posix(),
        rows=len(frame),
        id_column="row_id" if "row_id" in frame.columns else id_column,
        subject_column=id_column,
        label_column="label" if label else None,
        columns=tuple(columns),
        description=description,
    )
    return manifest, size


def write_bank_node(
    root: Path,
    farmers: VerticalSplit,
    smes: VerticalSplit,
    *,
    as_of: datetime,
    rng: np.random.Generator,
) -> tuple[NodeManifest, int]:
    """The bank: farmers' and SMEs' financial features with labels, and its consent log."""
    return _write_party_node(
        root,
        "bank",
        (
            farmers.bank,
            FARMER_BANK_COLUMNS,
            "farmer customers: accounts, loans, repayment; label = default within 12 months",
        ),
        (
            smes.bank,
            SME_BANK_COLUMNS,
            "SME clients: settlement flows, credit, overdue; label = default within 12 months",
        ),
        label=True,
        categories=BANK_CATEGORIES,
        channels=_BANK_CHANNELS,
        as_of=as_of,
        rng=rng,
    )


def write_gov_node(
    root: Path,
    farmers: VerticalSplit,
    smes: VerticalSplit,
    *,
    as_of: datetime,
    rng: np.random.Generator,
) -> tuple[NodeManifest, int]:
    """The government data platform: agricultural, registry, tax and judicial features."""
    return _write_party_node(
        root,
        "gov",
        (
            farmers.gov,
            FARMER_GOV_COLUMNS,
            "farmers on the agricultural platform: land, crops, livestock, subsidies",
        ),
        (
            smes.gov,
            SME_GOV_COLUMNS,
            "firms in the registries: registration, tax, invoices, social insurance, courts",
        ),
        label=False,
        categories=GOV_CATEGORIES,
        channels=_GOV_CHANNELS,
        as_of=as_of,
        rng=rng,
    )


#: A table a vertical party writes: frame, column specs, description.
_Table = tuple[pd.DataFrame, tuple[ColumnSpec, ...], str]


def _write_party_node(
    root: Path,
    kind: Literal["bank", "gov"],
    farmers: _Table,
    smes: _Table,
    *,
    label: bool,
    categories: tuple[str, ...],
    channels: Sequence[str],
    as_of: datetime,
    rng: np.random.Generator,
) -> tuple[NodeManifest, int]:
    """One vertical party's node: its farmer and SME tables and its consent log."""
    node_dir = root / kind
    manifests, size = [], 0
    for (frame, columns, description), name, id_column, model in (
        (farmers, "farmers", "farmer_id", "farmer_credit"),
        (smes, "smes", "firm_id", "sme_risk"),
    ):
        manifest, written = _dataset(
            node_dir,
            root,
            frame,
            name=name,
            id_column=id_column,
            label=label,
            columns=columns,
            description=description,
        )
        manifests.append(manifest)
        size += written
        # The node derives the model's inputs from its own table (categories one-hot).
        view = view_columns(model, kind)
        features = get_spec(model).party_schema(kind).features
        manifest, written = _dataset(
            node_dir,
            root,
            model_view(frame, columns, features, id_column=id_column),
            name=model,
            id_column=id_column,
            label=label,
            columns=view,
            description=f"inputs of the {model} model, derived here from {name}.csv",
        )
        manifests.append(manifest)
        size += written
    subjects = [*farmers[0]["farmer_id"], *smes[0]["firm_id"]]
    summary = write_consent_db(
        node_dir / "consent.db",
        institution=kind,
        subject_ids=subjects,
        categories=categories,
        channels=channels,
        as_of=as_of,
        rng=rng,
    )
    node = NodeManifest(
        name=kind,
        kind=kind,
        institution=kind,
        directory=kind,
        categories=categories,
        consent_db=f"{kind}/consent.db",
        datasets=tuple(manifests),
        consent=asdict(summary),
    )
    return node, size + (node_dir / "consent.db").stat().st_size


def write_factory_node(
    root: Path,
    name: str,
    data: FactoryNodeData,
    *,
    as_of: datetime,
    rng: np.random.Generator,
) -> tuple[NodeManifest, int]:
    """A factory edge node: raw series under ``raw/``, indicators, consent log."""
    node_dir = root / name
    raw_sizes = write_raw_tables(data.raw, node_dir / "raw")
    manifest, size = _dataset(
        node_dir,
        root,
        data.indicators,
        name="indicators",
        id_column="firm_id",
        label=True,
        columns=IOT_INDICATOR_SPECS,
        description="monthly indicators computed at the node from raw/; "
        "label = default or 90+ days past due within 12 months",
        float_format="%.6g",
    )
    summary = write_consent_db(
        node_dir / "consent.db",
        institution=name,
        subject_ids=data.population.firm_ids,
        categories=FACTORY_CATEGORIES,
        channels=_FACTORY_CHANNELS,
        as_of=as_of,
        rng=rng,
    )
    node = NodeManifest(
        name=name,
        kind="factory",
        institution=name,
        directory=name,
        categories=FACTORY_CATEGORIES,
        consent_db=f"{name}/consent.db",
        datasets=(manifest,),
        profile=data.population.profile.key,
        consent=asdict(summary),
    )
    total = sum(raw_sizes.values()) + size + (node_dir / "consent.db").stat().st_size
    logger.info(
        "wrote %s: %d firms, %d rows, %.1f MB",
        name,
        summary.subjects,
        len(data.indicators),
        total / 1e6,
    )
    return node, total


def write_eval_file(root: Path, frame: pd.DataFrame) -> tuple[NodeManifest, int]:
    """The model steward's own labelled sample of firms for evaluating the IoT model."""
    manifest, size = _dataset(
        root / "coordinator",
        root,
        frame,
        name="iot_eval",
        id_column="firm_id",
        label=True,
        columns=IOT_INDICATOR_SPECS,
        description="the model steward's own labelled evaluation sample: firms from every "
        "park's population, disjoint from the participants' firms; indicators only",
        float_format="%.6g",
    )
    node = NodeManifest(
        name="coordinator",
        kind="coordinator",
        institution="coordinator",
        directory="coordinator",
        categories=(),
        consent_db=None,
        datasets=(manifest,),
    )
    return node, size
