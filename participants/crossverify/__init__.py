"""Cross-verification at the factory node: declared activity (ERP, MES) against physical
activity (energy). Only :class:`Flag` objects leave the node (DESIGN.md, "Monitoring")."""

from __future__ import annotations

from .activity import INVOICE_COLUMNS, FactoryActivity, load_activity
from .checks import RULES, CheckSettings, Flag, cross_verify
from .tables import CROSSVERIFY_KINDS, DEFAULT_TZ, activity_from_node, activity_from_tables

__all__ = [
    "CROSSVERIFY_KINDS",
    "DEFAULT_TZ",
    "INVOICE_COLUMNS",
    "RULES",
    "CheckSettings",
    "FactoryActivity",
    "Flag",
    "activity_from_node",
    "activity_from_tables",
    "cross_verify",
    "load_activity",
]
