"""The coordinator's Flower ServerApp.

``make_server_app`` builds one for an in-process run (simulation); the module-level ``app``
is what a SuperLink loads (``coordinator.server_app:app``), reading the federation file and
report path from the run config (``flwr run . --run-config 'federation="..."'``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from models.federation import FederationSpec, load_federation

from .publish import publish
from .rounds import FederationResult, RoundListener, run_federation
from .vertical import run_vertical

logger = logging.getLogger(__name__)


def make_server_app(
    spec: FederationSpec,
    *,
    report_path: Path | None = None,
    on_round: RoundListener | None = None,
    on_done: Callable[[FederationResult], None] | None = None,
) -> ServerApp:
    """A ServerApp that runs ``spec`` and publishes the result to the local registry."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        result = _run(grid, spec, on_round=on_round)
        publish(spec, result, report_path=report_path)
        if on_done is not None:
            on_done(result)

    return app


app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Deployment entry point: the federation file comes from the run config."""
    federation = context.run_config.get("federation")
    if not federation:
        raise SystemExit('run config needs federation="/path/to/federation.toml"')
    spec = load_federation(Path(str(federation)))
    report = context.run_config.get("report")
    result = _run(grid, spec)
    publish(spec, result, report_path=Path(str(report)) if report else None)


def _run(
    grid: Grid, spec: FederationSpec, *, on_round: RoundListener | None = None
) -> FederationResult:
    """A horizontal federation (rounds of FedAvg) or a vertical one (PSI, then vertical LR
    or a split network)."""
    if spec.mode == "vertical":
        run = run_vertical(grid, spec, on_round=on_round)
        return FederationResult(
            report=run.report, model=None, n_features=0, parts=run.parts, combiner=run.combiner
        )
    return run_federation(grid, spec, on_round=on_round)
