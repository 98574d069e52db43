"""Post-loan monitoring at the factory node: the plant's readings become daily indicators,
streaming change detectors watch them, and a confirmed change becomes a
:class:`ChangeEvent` (what changed, since when, by how much), the only thing that leaves
the node (DESIGN.md, "Monitoring"). The coordinator turns events into lenders' alerts."""

from __future__ import annotations

from .events import ChangeEvent
from .monitor import FactoryMonitor, Reading
from .node_readings import readings_from_node
from .watches import DEFAULT_WATCHES, DETECTORS, INDICATORS, Watch, load_watches

__all__ = [
    "DEFAULT_WATCHES",
    "DETECTORS",
    "INDICATORS",
    "ChangeEvent",
    "FactoryMonitor",
    "Reading",
    "Watch",
    "load_watches",
    "readings_from_node",
]
