"""Deciding a file of applications or a whole portfolio (``fedrisk decide run``).

One row per subject: its id (the model's id column), the application's figures
(``requested_amount`` for a new applicant; ``current_limit`` and ``previous_score`` for an
existing customer) and any figure the policy's rules name. Steps, in order:

1. the consent check, for every row at once, in the same store the scoring API asks
   (purpose ``credit_scoring``, the model's data categories, the deciding institution);
2. scores, only for consented rows: a horizontal model scores the rows' features here with
   its ONNX graph; a vertical model's features live at several parties, so its scores come
   from a portfolio scoring run (``--scores``, the batch API's ``subject_id,score`` output);
3. the policy (:func:`~.engine.decide`), then every decision into the evidence ledger (the
   policy first, once) and the output file, written atomically.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from consent.deps import SCORING_PURPOSE
from consent.registry import ConsentRegistry
from coordinator.serving.catalog import consent_categories
from models.onnx_export import OnnxModel
from models.registry import ModelRegistry, RegisteredModel
from models.schema import TabularSchema
from models.tabular import load_table

from .engine import Decision, DecisionInputs, decide, model_age_days, score_as_recorded
from .errors import ApplicationError
from .policy import DecisionPolicy
from .records import decision_entry, ensure_policy

__all__ = ["PortfolioSummary", "decide_file"]

logger = logging.getLogger(__name__)

#: Decisions per ledger transaction.
CHUNK: Final = 10_000
_HEADER_ROWS: Final = 1


@dataclass(frozen=True)
class PortfolioSummary:
    """Counts and timings of one run, never the subjects."""

    policy: str
    policy_version: str
    model: str
    model_version: str
    rows: int
    outcomes: dict[str, int]
    refused_consent: int
    total_limit: float
    output_path: Path
    seconds: dict[str, float]

    @property
    def rows_per_s(self) -> float:
        total = sum(self.seconds.values())
        return self.rows / total if total > 0 else float("inf")


def decide_file(
    *,
    policy: DecisionPolicy,
    registry: ModelRegistry,
    consent: ConsentRegistry,
    applications: Path,
    output: Path,
    institution: str,
    app: str,
    scores: Path | None = None,
    version: str | None = None,
    at: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PortfolioSummary:
    """Decide every row of ``applications`` (see the module docstring)."""
    at = at or datetime.now(UTC)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    registered = registry.resolve(policy.model, version)
    schema = TabularSchema.from_dict(registered.card.schema)
    frame = _read_applications(Path(applications), id_column=schema.id)
    ids = frame[schema.id].tolist()
    figures = {name: _figures(frame, name, Path(applications)) for name in policy.fields}
    timings["read"] = time.perf_counter() - started

    started = time.perf_counter()
    consented = consent.store.decide_many(
        ids,
        purpose=SCORING_PURPOSE,
        categories=consent_categories(registered.card),
        at=at,
        institution=institution,
    )
    timings["consent"] = time.perf_counter() - started

    started = time.perf_counter()
    allowed = np.array([consented[s].allowed for s in ids], dtype=bool)
    score = _scores(registered, schema, Path(applications), scores, ids=ids, allowed=allowed)
    timings["score"] = time.perf_counter() - started

    started = time.perf_counter()
    age = model_age_days(registered.card.created_at, at)
    bodies: list[dict[str, Any]] = []
    decisions: list[Decision] = []
    for k, subject in enumerate(ids):
        verdict = consented[subject]
        inputs = DecisionInputs(
            score=None if np.isnan(score[k]) else score_as_recorded(score[k]),
            consent_allowed=bool(verdict.allowed),
            consent_reason=None if verdict.allowed else (verdict.reason or "never_granted"),
            model_version=registered.version,
            model_age_days=age,
            figures={name: values[k] for name, values in figures.items()},
        )
        decision = decide(policy, inputs)
        decisions.append(decision)
        bodies.append(
            decision_entry(
                policy=policy,
                model=policy.model,
                inputs=inputs,
                decision=decision,
                subject_pseudonym=consent.pseudonym(subject),
                grant_id=verdict.grant_id if verdict.allowed else None,
                app=app,
                at=at,
            )
        )
    timings["decide"] = time.perf_counter() - started

    started = time.perf_counter()
    ledger = consent.ledger
    ensure_policy(ledger, policy, at=at)
    evidence: list[str] = []
    for start in range(0, len(bodies), CHUNK):
        entries = ledger.append_many(bodies[start : start + CHUNK])
        evidence.extend(e.evidence_id for e in entries)
        if progress is not None:
            progress(len(evidence), len(bodies))
    timings["ledger"] = time.perf_counter() - started

    started = time.perf_counter()
    _write(Path(output), id_column=schema.id, ids=ids, decisions=decisions, scores=score,
           policy=policy, model_version=registered.version, evidence=evidence)  # fmt: skip
    timings["write"] = time.perf_counter() - started
    outcomes = {name: 0 for name in ("approve", "refer", "decline", "increase", "keep")}
    for decision in decisions:
        outcomes[decision.outcome] += 1
    summary = PortfolioSummary(
        policy=policy.name,
        policy_version=policy.version,
        model=policy.model,
        model_version=registered.version,
        rows=len(ids),
        outcomes=outcomes,
        refused_consent=int((~allowed).sum()),
        total_limit=float(sum(d.limit for d in decisions)),
        output_path=Path(output),
        seconds=timings,
    )
    logger.info(
        "decided %d applications with %s %s in %.2f s: %s",
        summary.rows,
        policy.name,
        policy.version,
        sum(timings.values()),
        outcomes,
    )
    return summary


def _read_applications(path: Path, *, id_column: str) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype={id_column: str}, keep_default_na=True)
    except FileNotFoundError:
        raise ApplicationError(
            file=str(path), row=None, column=None, reason="no such file"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ApplicationError(
            file=str(path), row=None, column=None, reason=f"not a CSV: {exc}"
        ) from None
    if id_column not in frame.columns:
        raise ApplicationError(
            file=str(path), row=_HEADER_ROWS, column=None, reason=f"missing id column {id_column!r}"
        )
    if frame.empty:
        raise ApplicationError(file=str(path), row=None, column=None, reason="no applications")
    ids = frame[id_column]
    _refuse_first(path, ids.isna() | (ids.str.strip() == ""), id_column, lambda k: "empty id")
    _refuse_first(path, ids.duplicated(), id_column,
                  lambda k: f"subject {ids.iloc[k]!r} applies twice in one file")  # fmt: skip
    return frame


def _refuse_first(path: Path, bad: Any, column: str, reason: Callable[[int], str]) -> None:
    """:class:`ApplicationError` at the first row where ``bad`` holds (``reason`` gets the
    row's position), if any."""
    found = np.flatnonzero(np.asarray(bad))
    if found.size:
        k = int(found[0])
        raise ApplicationError(
            file=str(path), row=k + _HEADER_ROWS + 1, column=column, reason=reason(k)
        )


def _figures(frame: pd.DataFrame, name: str, path: Path) -> list[float | None]:
    """Column ``name`` as numbers, ``None`` where empty (and everywhere when absent)."""
    if name not in frame.columns:
        return [None] * len(frame)
    values = pd.to_numeric(frame[name], errors="coerce")
    bad = values.isna() & frame[name].notna()
    finite = np.isfinite(values.fillna(0.0).to_numpy(dtype=np.float64))
    bad |= ~finite
    _refuse_first(path, bad, name, lambda k: f"{frame[name].iloc[k]!r} is not a finite number")
    if name in ("requested_amount", "current_limit"):
        _refuse_first(path, values < 0, name, lambda k: "must not be negative")
    return [None if np.isnan(v) else float(v) for v in values.to_numpy(dtype=np.float64)]


def _scores(
    registered: RegisteredModel,
    schema: TabularSchema,
    applications: Path,
    scores: Path | None,
    *,
    ids: Sequence[str],
    allowed: np.ndarray,
) -> np.ndarray:
    """Each row's score, NaN where it may not be scored (no consent) or none is known."""
    result = np.full(len(ids), np.nan)
    if scores is not None:
        given = _read_scores(Path(scores), id_column=schema.id)
        for k, subject in enumerate(ids):
            if allowed[k] and subject in given:
                result[k] = given[subject]
        return result
    if registered.card.mode == "vertical":
        raise ApplicationError(
            file=str(applications),
            row=None,
            column=None,
            reason=f"{registered.card.name} is vertical: its features live at several parties; "
            "score the portfolio through the batch API and pass its output with --scores",
        )
    if not allowed.any():
        return result
    table = load_table(applications, schema, require_label=False)
    model = OnnxModel(registered.onnx_path)
    rows = np.flatnonzero(allowed)  # the model never sees a row without consent
    raw = model.predict(table.features[rows]).astype(np.float64)
    if model.output_kind == "logit":
        raw = 1.0 / (1.0 + np.exp(-raw))
    result[rows] = raw
    return result


def _read_scores(path: Path, *, id_column: str) -> dict[str, float]:
    try:
        frame = pd.read_csv(path, dtype=str)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ApplicationError(file=str(path), row=None, column=None, reason=str(exc)) from None
    column = id_column if id_column in frame.columns else "subject_id"
    for needed in (column, "score"):
        if needed not in frame.columns:
            raise ApplicationError(
                file=str(path), row=_HEADER_ROWS, column=None, reason=f"missing column {needed!r}"
            )
    values = pd.to_numeric(frame["score"], errors="coerce").to_numpy(dtype=np.float64)
    given = frame["score"]
    _refuse_first(path, ~((values >= 0) & (values <= 1)), "score",
                  lambda k: f"{given.iloc[k]!r} is not a probability in [0, 1]")  # fmt: skip
    return dict(zip(frame[column].tolist(), values.tolist(), strict=True))


def _write(
    path: Path,
    *,
    id_column: str,
    ids: Sequence[str],
    decisions: Sequence[Decision],
    scores: np.ndarray,
    policy: DecisionPolicy,
    model_version: str,
    evidence: Sequence[str],
) -> None:
    frame = pd.DataFrame(
        {
            id_column: ids,
            "outcome": [d.outcome for d in decisions],
            "limit": [d.limit for d in decisions],
            "previous_limit": [d.previous_limit for d in decisions],
            "score": [score_as_recorded(s) if not np.isnan(s) else None for s in scores],
            "band": [d.band for d in decisions],
            "reasons": [";".join(r.code for r in d.reasons) for d in decisions],
            "explanation": [" | ".join(r.text for r in d.reasons) for d in decisions],
            "policy_version": policy.version,
            "model_version": model_version,
            "evidence_id": list(evidence),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        frame.to_csv(partial, index=False)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
