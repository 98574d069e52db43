"""Cross-verification at the factory node: declared activity (ERP, MES) against physical
activity (energy). Only :class:`Flag` objects leave the node (DESIGN.md, "Monitoring")."""

from __future__ import annotations

from .activity import INVOICE_COLUMNS, FactoryActivity, load_activity
from .checks import RULES, CheckSettings, Flag, cross_verify

__all__ = [
    "INVOICE_COLUMNS",
    "RULES",
    "CheckSettings",
    "FactoryActivity",
    "Flag",
    "cross_verify",
    "load_activity",
]
