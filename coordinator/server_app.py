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
from models.layout import checkpoint_dir

from .checkpoints import finish_run
from .handshake import FederationAbortedError
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
    resume: bool = False,
) -> ServerApp:
    """A ServerApp that runs ``spec`` (or, with ``resume``, goes on with its last unfinished
    run) and publishes the result to the local registry."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        result = _run(grid, spec, on_round=on_round, resume=resume)
        _publish(spec, result, report_path=report_path)
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
    resume = context.run_config.get("resume") in (True, "true", "True", 1)
    result = _run(grid, spec, resume=resume)
    _publish(spec, result, report_path=Path(str(report)) if report else None)


def _publish(spec: FederationSpec, result: FederationResult, *, report_path: Path | None) -> None:
    """Publish, then mark the training run finished (a restart has nothing left to resume)."""
    registered = publish(spec, result, report_path=report_path)
    run_id = result.report.run_id
    if run_id is not None:
        version = None if registered is None else f"{registered.name}/{registered.version}"
        finish_run(checkpoint_dir(spec), run_id, outcome={"model_version": version})


def _run(
    grid: Grid,
    spec: FederationSpec,
    *,
    on_round: RoundListener | None = None,
    resume: bool = False,
) -> FederationResult:
    """A horizontal federation (rounds of FedAvg) or a vertical one (PSI, then vertical LR
    or a split network)."""
    if spec.mode == "vertical":
        if resume:
            raise FederationAbortedError(
                "resuming applies to horizontal federations; a vertical run starts over "
                "(its PSI and parts are redone)"
            )
        run = run_vertical(grid, spec, on_round=on_round)
        return FederationResult(
            report=run.report, model=None, n_features=0, parts=run.parts, combiner=run.combiner
        )
    return run_federation(grid, spec, on_round=on_round, resume=resume)
