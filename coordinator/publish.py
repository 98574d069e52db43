"""Publication of a finished federation: model version in the registry, report on disk."""

from __future__ import annotations

import logging
from pathlib import Path

from models.federation import FederationSpec
from models.layout import registry_dir
from models.registry import ModelRegistry, RegisteredModel
from models.resolve import training_schema

from .rounds import FederationResult

logger = logging.getLogger(__name__)


def publish(
    spec: FederationSpec, result: FederationResult, *, report_path: Path | None
) -> RegisteredModel | None:
    """Register the final model with its card (when a round succeeded) and write the report.

    A federation whose every round failed publishes nothing: there is no trained model.
    """
    report = result.report
    registered = None
    if result.model is None:
        logger.warning(
            "%s: a vertical model stays in parts at its parties (their weights in each node's "
            "state folder); registry entries for vertical models come with their ONNX parts",
            spec.name,
        )
    elif report.final.get("rounds_ok", 0) > 0:
        registered = ModelRegistry(registry_dir(spec)).register(
            model=result.model,
            name=spec.name,
            spec_name=spec.model,
            schema=training_schema(spec),
            n_features=result.n_features,
            mode=spec.mode,
            participants={p.name: p.rows_used for p in report.participants if p.accepted},
            rounds=len(report.rounds),
            strategy=report.strategy,
            privacy_mode=spec.privacy,
            privacy_parameters=report.privacy,
            epsilon=report.epsilon_per_participant(),
            metrics={
                "auc": report.final.get("auc"),
                "log_loss": report.final.get("log_loss"),
                "rounds": [
                    {
                        "round": r.server_round,
                        "status": r.status,
                        "auc": r.auc,
                        "log_loss": r.log_loss,
                    }
                    for r in report.rounds
                ],
            },
            notes=f"federation file {spec.path.name}; participants refused: "
            + (", ".join(p.name for p in report.participants if not p.accepted) or "none"),
        )
        report.model_version = f"{registered.name}/{registered.version}"
    else:
        logger.error("no round succeeded: nothing published for %s", spec.name)
    if report_path is not None:
        report.write(report_path)
    return registered
