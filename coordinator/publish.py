"""Publication of a finished federation: model version in the registry, report on disk."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consent.ledger.entries import training_round_entry
from consent.ledger.log import EvidenceLog
from models.federation import FederationSpec
from models.layout import ledger_dir, registry_dir
from models.registry import ModelRegistry, RegisteredModel
from models.resolve import training_schema

from .rounds import FederationResult

logger = logging.getLogger(__name__)


def publish(
    spec: FederationSpec, result: FederationResult, *, report_path: Path | None
) -> RegisteredModel | None:
    """Register the final model with its card (when a round succeeded) and write the report.

    A vertical model is registered as its combiner plus the parties' part references (the
    parts themselves stay on the parties' nodes). A federation whose every round failed
    publishes nothing: there is no trained model.
    """
    report = result.report
    registered = None
    if report.final.get("rounds_ok", 0) > 0 and (result.model is not None or result.parts):
        common: dict[str, Any] = {
            "name": spec.name,
            "spec_name": spec.model,
            # Rows each party trained on: a vertical party's aligned training rows (after
            # PSI and the holdout), not the rows it declared at handshake.
            "participants": (
                dict(report.rounds[-1].rows_used)
                if result.parts
                else {p.name: p.rows_used for p in report.participants if p.accepted}
            ),
            "rounds": len(report.rounds),
            "strategy": report.strategy,
            "privacy_mode": spec.privacy,
            "privacy_parameters": report.privacy,
            "epsilon": report.epsilon_per_participant(),
            "metrics": {
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
            "data_categories": {p.name: list(p.categories) for p in spec.participants},
            "notes": f"federation file {spec.path.name}; participants refused: "
            + (", ".join(p.name for p in report.participants if not p.accepted) or "none"),
        }
        registry = ModelRegistry(registry_dir(spec))
        if result.model is not None:
            registered = registry.register(
                model=result.model,
                schema=training_schema(spec),
                n_features=result.n_features,
                mode=spec.mode,
                **common,
            )
        else:
            assert result.combiner is not None
            registered = registry.register_vertical(
                combiner=result.combiner,
                kind="vertical-split-nn" if report.strategy == "split-nn" else "vertical-logistic",
                parts=result.parts,
                schemas={p.name: p.schema for p in spec.participants if p.schema is not None},
                **common,
            )
        report.model_version = f"{registered.name}/{registered.version}"
        report.final["evidence_id"] = _record_training(spec, result, registered)
    else:
        logger.error("no round succeeded: nothing published for %s", spec.name)
    if report_path is not None:
        report.write(report_path)
    return registered


def _record_training(
    spec: FederationSpec, result: FederationResult, registered: RegisteredModel
) -> str:
    """Put the published version's training record in the evidence ledger: the model's
    hash (and each vertical part's), who trained it, the ε each spent, and each party's
    commitment to the rows it trained on. Its evidence id goes into the report."""
    report = result.report
    accepted = [p for p in report.participants if p.accepted]
    body = training_round_entry(
        federation=spec.name,
        round_number=len(report.rounds),
        model_hash=registered.card.onnx_sha256,
        participants=[p.name for p in accepted],
        epsilon=report.epsilon_per_participant(),
        data_commitments={p.name: p.data_commitment for p in accepted if p.data_commitment},
        at=datetime.now(UTC),
        model_version=registered.version,
        part_hashes={ref.party: ref.sha256 for ref in result.parts},
    )
    body["run_id"] = report.run_id
    with EvidenceLog.in_folder(ledger_dir(spec)) as log:
        if report.run_id is not None:
            # A coordinator that crashed after this append and resumed must not add another.
            for index, earlier in log.indexed_bodies(["training_round"]):
                if earlier.get("run_id") == report.run_id:
                    found = log.entry(index)
                    logger.info("run %s is already in the ledger as %s", report.run_id,
                                found.evidence_id)  # fmt: skip
                    return found.evidence_id
        entry = log.append(body)
    logger.info("training record of %s %s is %s", spec.name, registered.version, entry.evidence_id)
    return entry.evidence_id
