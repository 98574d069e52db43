"""The embedded demo scenario: a bank, a government data platform and factory edge nodes.

:func:`generate_scenario` writes one folder per node, each holding only that node's own
data, plus consent databases with realistic gaps and the model steward's evaluation file;
:func:`compute_monthly_indicators` is the factory nodes' edge reduction from raw series to
monthly indicators; :func:`write_iot_federation` turns the manifest into a federation file.
"""

from __future__ import annotations

from participants.demo.applications import write_iot_applications
from participants.demo.errors import InvalidUSCCError, ScenarioError
from participants.demo.federation import write_iot_federation
from participants.demo.indicators import INDICATOR_COLUMNS, compute_monthly_indicators
from participants.demo.manifest import (
    DatasetManifest,
    NodeManifest,
    ScenarioManifest,
    read_manifest,
)
from participants.demo.scenario import generate_scenario
from participants.demo.uscc import (
    USCC_ALPHABET,
    is_valid_uscc,
    make_uscc,
    random_usccs,
    uscc_check_character,
    validate_uscc,
)
from participants.demo.vertical_federation import VERTICAL_DEMO_MODELS, write_vertical_federation

__all__ = [
    "INDICATOR_COLUMNS",
    "USCC_ALPHABET",
    "VERTICAL_DEMO_MODELS",
    "DatasetManifest",
    "InvalidUSCCError",
    "NodeManifest",
    "ScenarioError",
    "ScenarioManifest",
    "compute_monthly_indicators",
    "generate_scenario",
    "is_valid_uscc",
    "make_uscc",
    "random_usccs",
    "read_manifest",
    "uscc_check_character",
    "validate_uscc",
    "write_iot_applications",
    "write_iot_federation",
    "write_vertical_federation",
]
