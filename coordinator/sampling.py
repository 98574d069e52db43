"""Which participants a round asks: those still online, sampled when the federation says
``sample_fraction``."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np
from flwr.serverapp import Grid

from models.federation import FederationSpec

__all__ = ["round_participants"]

logger = logging.getLogger(__name__)


def round_participants(
    grid: Grid, nodes: Mapping[int, str], *, spec: FederationSpec, server_round: int
) -> dict[int, str]:
    """The accepted participants to ask in ``server_round``, in roster order.

    A node the runtime no longer lists (its SuperNode stopped or lost its connection) is
    left out with a warning. Under ``sample_fraction`` f, ``max(min_participants, ceil(f *
    n))`` of the n online participants are drawn without replacement; the draw depends on
    the federation's seed and the round only, so a resumed run asks the same ones again.
    """
    online = set(grid.get_node_ids())
    gone = [name for node, name in nodes.items() if node not in online]
    if gone:
        logger.warning("round %d: %s offline, left out of the round",
                       server_round, ", ".join(gone))  # fmt: skip
    present = {node: name for node, name in nodes.items() if node in online}
    if spec.sample_fraction is None:
        return present
    wanted = max(spec.min_participants, math.ceil(spec.sample_fraction * len(nodes)))
    if wanted >= len(present):
        return present
    by_name = sorted(present, key=lambda node: present[node])
    rng = np.random.default_rng([spec.seed, server_round])
    chosen = {by_name[i] for i in rng.choice(len(by_name), size=wanted, replace=False)}
    return {node: name for node, name in present.items() if node in chosen}
