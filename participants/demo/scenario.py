"""The embedded demo scenario: one bank, one government platform, several factory parks.

Deterministic for a seed: every random draw comes from a generator derived from
``(seed, stream, index)`` and every time from the fixed calendar in
:mod:`participants.demo.timeline`, so the same seed writes byte-identical CSV files.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from participants.demo.errors import ScenarioError
from participants.demo.factory_node import FactoryNodeData, simulate_factory_node
from participants.demo.farmers import simulate_farmers
from participants.demo.manifest import MANIFEST_FILE, NodeManifest, ScenarioManifest
from participants.demo.node_files import (
    write_bank_node,
    write_eval_file,
    write_factory_node,
    write_gov_node,
)
from participants.demo.profiles import factory_profile
from participants.demo.smes import simulate_smes
from participants.demo.timeline import CONSENT_AS_OF, observation_window

__all__ = ["ProgressCallback", "factory_node_name", "generate_scenario"]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str, float], None]
"""Called as ``progress(step, fraction_done)`` after each step of the generation."""

# Independent random streams: (seed, stream, index) -> generator.
_FARMERS: Final = 1
_SMES: Final = 2
_FACTORY: Final = 3
_EVAL: Final = 4
_CONSENT: Final = 5
_OWNED: Final = ("bank", "gov", "coordinator", MANIFEST_FILE)


def _rng(seed: int, stream: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, index]))


def factory_node_name(index: int) -> str:
    """Folder and node name of the ``index``-th (0-based) factory: ``factory-01``, ..."""
    return f"factory-{index + 1:02d}"


def _prepare(out_dir: Path, *, overwrite: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise ScenarioError(f"{out_dir} is not empty; pass overwrite=True to replace it")
        for entry in out_dir.iterdir():
            if entry.name in _OWNED or entry.name.startswith("factory-"):
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def generate_scenario(
    out_dir: Path,
    *,
    seed: int = 7,
    n_farmers: int = 1500,
    n_smes: int = 2000,
    n_factories: int = 6,
    months: int = 12,
    firms_per_factory: int | None = None,
    n_eval_firms: int = 360,
    progress: ProgressCallback | None = None,
    overwrite: bool = False,
) -> ScenarioManifest:
    """Generate the demo scenario into ``out_dir`` and return (and write) its manifest.

    ``firms_per_factory`` overrides the parks' own sizes (40 to 120 firms); the steward's
    evaluation sample has ``n_eval_firms`` firms spread evenly over the parks.
    """
    _check_positive(n_farmers=n_farmers, n_smes=n_smes, n_eval_firms=n_eval_firms)
    if n_factories < 1:
        raise ValueError(f"n_factories must be >= 1, got {n_factories}")
    if firms_per_factory is not None:
        _check_positive(firms_per_factory=firms_per_factory)
    out_dir = Path(out_dir)
    _prepare(out_dir, overwrite=overwrite)
    window = observation_window(months=months)
    started = time.perf_counter()
    steps = n_factories + 3
    done = 0

    def report(step: str) -> None:
        nonlocal done
        done += 1
        logger.info("%s done after %.1f s", step, time.perf_counter() - started)
        if progress is not None:
            progress(step, done / steps)

    nodes: list[NodeManifest] = []
    total_bytes = 0
    farmers = simulate_farmers(_rng(seed, _FARMERS), n_farmers=n_farmers)
    smes = simulate_smes(_rng(seed, _SMES), n_smes=n_smes)
    for writer, index in ((write_bank_node, 0), (write_gov_node, 1)):
        node, size = writer(
            out_dir, farmers, smes, as_of=CONSENT_AS_OF, rng=_rng(seed, _CONSENT, index)
        )
        nodes.append(node)
        total_bytes += size
        report(node.name)

    firm_ids: set[str] = set(smes.gov["firm_id"]) | set(smes.bank["firm_id"])
    for i in range(n_factories):
        profile = factory_profile(i, n_firms=firms_per_factory)
        data = simulate_factory_node(
            profile, window, _rng(seed, _FACTORY, i), n_firms=profile.n_firms
        )
        _claim_ids(firm_ids, data)
        node, size = write_factory_node(
            out_dir,
            factory_node_name(i),
            data,
            as_of=CONSENT_AS_OF,
            rng=_rng(seed, _CONSENT, 2 + i),
        )
        nodes.append(node)
        total_bytes += size
        report(node.name)

    eval_frames = []
    for i in range(n_factories):
        share = n_eval_firms // n_factories + (1 if i < n_eval_firms % n_factories else 0)
        if share == 0:
            continue
        data = simulate_factory_node(
            factory_profile(i), window, _rng(seed, _EVAL, i), n_firms=share
        )
        _claim_ids(firm_ids, data)
        eval_frames.append(data.indicators)
    eval_frame = pd.concat(eval_frames, ignore_index=True).sort_values("row_id", kind="stable")
    eval_node, size = write_eval_file(out_dir, eval_frame.reset_index(drop=True))
    nodes.append(eval_node)
    total_bytes += size
    report("coordinator")

    manifest = ScenarioManifest(
        root=out_dir,
        seed=seed,
        months=months,
        window_start=window.start.isoformat(),
        window_end=window.end.isoformat(),
        as_of=CONSENT_AS_OF,
        nodes=tuple(nodes),
        eval_file=eval_node.datasets[0].file,
        eval_rows=eval_node.datasets[0].rows,
        bytes_written=total_bytes,
    )
    manifest.write()
    logger.info(
        "scenario seed=%d: %d nodes, %.1f MB in %.1f s",
        seed,
        len(nodes),
        total_bytes / 1e6,
        time.perf_counter() - started,
    )
    return manifest


def _claim_ids(taken: set[str], data: FactoryNodeData) -> None:
    """Refuse a firm id drawn twice anywhere in the scenario (never seen in practice)."""
    ids = set(data.population.firm_ids)
    clash = taken & ids
    if clash:
        raise ScenarioError(f"{len(clash)} firm ids drawn twice; choose another seed")
    taken |= ids
