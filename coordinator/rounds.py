"""Round orchestration: handshake, rounds with robust aggregation, evaluation, checkpoints.

This is the body of the coordinator's ServerApp. It runs unchanged in Flower's simulation
runtime and on a SuperLink: it only speaks to participants through the ``Grid``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import onnx
import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from models import wire
from models.federation import DEFAULT_ROUND_TIMEOUT_S, FederationSpec
from models.layout import checkpoint_dir, public_key_path
from models.nets import build_network
from models.parameters import from_arrays, to_arrays
from models.resolve import Architecture, architecture, training_schema
from models.standardization import Standardization, standardization_from
from models.tabular import TabularData, load_table
from models.training import evaluate
from models.vertical_parts import PartRef
from privacy.he.public import PublicContext
from privacy.he.records import update_to_record

from .checkpoints import save_checkpoint, start_run
from .early_stopping import PlateauStop
from .exchange import Exchange
from .handshake import FederationAbortedError, run_handshake, wait_for_nodes
from .report import FederationReport, RoundRecord
from .resume import restore_run, run_state
from .sampling import round_participants
from .strategies.base import Aggregate, RoundContext, Strategy
from .strategies.encrypted_aggregation import EncryptedAggregation
from .strategies.fedavg import FedAvg, FedProx
from .strategies.server_optimizer import ServerOptimizer
from .update_checks import log_rejections

logger = logging.getLogger(__name__)

RoundListener = Callable[[RoundRecord], None]


@dataclass(frozen=True)
class FederationResult:
    """The report and the final global model of a finished federation."""

    report: FederationReport
    #: None for a vertical federation: its model lives in parts, one per party.
    model: torch.nn.Module | None
    n_features: int
    #: A vertical federation's parts, each filed on its party's node, and its combiner.
    parts: tuple[PartRef, ...] = ()
    combiner: onnx.ModelProto | None = None


def build_strategy(spec: FederationSpec, *, public: PublicContext | None) -> Strategy:
    """FedAvg or FedProx, wrapped in encrypted aggregation for the CKKS privacy modes, and
    for FedAdam / FedYogi in an adaptive server optimiser over that averaging."""
    inner: Strategy = FedAvg()
    if spec.strategy == "fedprox":
        if spec.proximal_mu is None:
            raise FederationAbortedError("strategy 'fedprox' needs proximal_mu, got None")
        inner = FedProx(proximal_mu=spec.proximal_mu)
    if spec.privacy.uses_he:
        if public is None:
            raise FederationAbortedError("privacy mode needs CKKS but no public context was given")
        inner = EncryptedAggregation(inner, public=public)
    if spec.strategy in ("fedadam", "fedyogi"):
        opt = spec.server_optimizer
        if opt is None:
            raise FederationAbortedError(f"strategy {spec.strategy!r} needs [server_optimizer]")
        return ServerOptimizer(
            inner, optimizer=spec.strategy, learning_rate=opt.learning_rate,
            beta_1=opt.beta_1, beta_2=opt.beta_2, tau=opt.tau,
        )  # fmt: skip
    return inner


def run_federation(
    grid: Grid,
    spec: FederationSpec,
    *,
    on_round: RoundListener | None = None,
    connect_timeout_s: float = 120.0,
    round_timeout_s: float | None = None,
    resume: bool = False,
) -> FederationResult:
    """Run every round of a horizontal federation and return the report and final model.

    Every round is committed as a checkpoint. With ``resume``, the run the coordinator was
    last training goes on from its newest checkpoint: same run id, same model, the report
    and the ε so far; participants keep their own journal of what they spent in the run.
    """
    round_timeout_s = round_timeout_s or spec.round_timeout_s or DEFAULT_ROUND_TIMEOUT_S
    schema = training_schema(spec)
    arch = architecture(spec)
    evaluation = load_table(spec.evaluation_file, schema) if spec.evaluation_file else None
    public = PublicContext.load(public_key_path(spec)) if spec.privacy.uses_he else None
    strategy = build_strategy(spec, public=public)
    report = _new_report(spec, schema_hash=schema.hash(), strategy=strategy.name)
    checkpoints = checkpoint_dir(spec)
    restored = restore_run(checkpoints, spec, report) if resume else None

    nodes = wait_for_nodes(grid, expected=len(spec.participants), timeout_s=connect_timeout_s)
    roster = run_handshake(
        grid,
        nodes,
        schema=schema,
        fingerprint=public.fingerprint if public is not None else None,
        federation=spec.name,
        timeout_s=round_timeout_s,
        order=[p.name for p in spec.participants],
    )
    report.participants.extend(roster.records)
    if len(roster.nodes) < spec.min_participants:
        refused = "; ".join(f"{r.name}: {r.reason}" for r in roster.records if not r.accepted)
        raise FederationAbortedError(
            f"only {len(roster.nodes)} participant(s) accepted, min_participants is "
            f"{spec.min_participants}. {refused}"
        )

    norm = standardization_from(evaluation)
    model = build_network(
        arch.kind,
        n_features=len(schema.features),
        hidden=arch.hidden,
        seed=spec.seed,
        feature_shift=norm.shift,
        feature_scale=norm.scale,
    )
    arrays = [a.astype(np.float32) for a in to_arrays(model)]
    shapes = tuple(tuple(a.shape) for a in arrays)
    run_id = restored.run_id if restored is not None else uuid.uuid4().hex[:12]
    report.run_id = run_id
    start_run(checkpoints, run_id)
    first_round = 1
    if restored is not None and restored.arrays is not None:
        if [tuple(a.shape) for a in restored.arrays] != list(shapes):
            raise FederationAbortedError(
                f"checkpoint {restored.path} does not fit the model: shapes "
                f"{[a.shape for a in restored.arrays]}, expected {list(shapes)}"
            )
        arrays = [a.astype(np.float32) for a in restored.arrays]
        first_round = restored.server_round + 1
    example_scale = 1.0 / max(1, sum(r.rows_used for r in roster.records if r.accepted))
    epsilon: dict[str, float] = report.epsilon_per_participant()
    # Under CKKS a round's model is known one round later (participants decrypt it from the
    # next train message and the first of them returns it), so its record waits here.
    pending: _Pending | None = None
    plateau = None if spec.early_stopping is None else PlateauStop.from_spec(spec.early_stopping)
    for done_record in report.rounds:  # a resumed run's rounds so far
        if plateau is not None:
            plateau.observe(done_record.server_round, done_record.auc)

    def publish_round(record: RoundRecord) -> None:
        report.rounds.append(record)
        if plateau is not None and plateau.observe(record.server_round, record.auc):
            logger.info("AUC plateau (best %.4f in round %s): stopping after this round",
                        plateau.best_auc or 0.0, plateau.best_round)  # fmt: skip
        # The round's commit: its model and everything needed to go on from it, in one file.
        save_checkpoint(checkpoints, server_round=record.server_round, arrays=arrays,
                        run_id=run_id, state=run_state(report, spec))  # fmt: skip
        if on_round is not None:
            on_round(record)

    def settle(done: _Pending, opened: list[np.ndarray] | str, *, until: float) -> None:
        nonlocal arrays
        aggregate = done.aggregate
        if isinstance(opened, str):
            logger.error(
                "round %d failed: %s; keeping the last good model", done.server_round, opened
            )
            aggregate = replace(aggregate, encrypted=None, failure=opened)
        else:
            arrays = [a.astype(np.float32) for a in opened]
            aggregate = replace(aggregate, arrays=arrays)
        metrics = _evaluate(model, arrays, evaluation)
        publish_round(
            _round_record(done.server_round, aggregate, done.replies, roster.nodes,
                          done.epsilon, done.started, metrics=metrics, ended=until)
        )  # fmt: skip

    for server_round in range(first_round, spec.rounds + 1):
        if plateau is not None and plateau.stopped_at is not None:
            break  # under CKKS the plateau shows a round late: the pending round settles below
        started = time.monotonic()
        ctx = RoundContext(
            server_round,
            shapes,
            round_participants(grid, roster.nodes, spec=spec, server_round=server_round),
            spec.min_participants,
            round_timeout_s,
            example_scale=example_scale,
            global_arrays=tuple(arrays),
            run_id=run_id,
        )
        incoming = _train_round(
            grid, spec, strategy, arrays, ctx=ctx, run_id=run_id, arch=arch, norm=norm,
            pending=None if pending is None else pending.aggregate,
        )  # fmt: skip
        # The strategy checks (and, under CKKS, adds) each update as it arrives.
        aggregate = strategy.aggregate_train(incoming, ctx=ctx, grid=grid)
        replies = _collect(incoming, ctx)
        log_rejections(server_round, aggregate.rejections)
        if pending is not None:
            settle(pending, _returned_model(replies, ctx) or _open(strategy, pending, grid, ctx),
                   until=started)  # fmt: skip
            pending = None
        epsilon.update(_epsilons(replies, roster.nodes))
        _record_dp_used(report, replies, roster.nodes)
        if aggregate.encrypted is not None:
            pending = _Pending(server_round, started, aggregate, replies, dict(epsilon))
            continue
        if aggregate.arrays is not None:
            arrays = [a.astype(np.float32) for a in aggregate.arrays]
        else:
            logger.error(
                "round %d failed: %s; keeping the last good model", server_round, aggregate.failure
            )
        publish_round(
            _round_record(server_round, aggregate, replies, roster.nodes, dict(epsilon),
                          started, metrics=_evaluate(model, arrays, evaluation))
        )  # fmt: skip
    if pending is not None:
        # Only the last round's aggregate can still be pending here: ``ctx`` is its context.
        settle(pending, _open(strategy, pending, grid, ctx), until=time.monotonic())

    from_arrays(model, arrays)
    final = report.rounds[-1] if report.rounds else None
    report.final = {
        "auc": final.auc if final else None,
        "log_loss": final.log_loss if final else None,
        "epsilon": report.epsilon_per_participant(),
        "rounds_ok": sum(1 for r in report.rounds if r.status == "ok"),
        "rounds_failed": sum(1 for r in report.rounds if r.status == "failed"),
        "stopped": (
            plateau.record(rounds_run=len(report.rounds), rounds_planned=spec.rounds)
            if plateau is not None
            else {"reason": "rounds_completed", "round": len(report.rounds), "planned": spec.rounds}
        ),
    }
    return FederationResult(report=report, model=model, n_features=len(schema.features))


@dataclass(frozen=True)
class _Pending:
    """A round whose aggregate is still encrypted: its record waits for the model."""

    server_round: int
    started: float
    aggregate: Aggregate
    replies: list[Message]
    epsilon: dict[str, float]


def _returned_model(replies: list[Message], ctx: RoundContext) -> list[np.ndarray] | None:
    """The previous round's model as the first participant decrypted and returned it."""
    first = next(iter(ctx.participants), None)
    for msg in replies:
        if (
            msg.metadata.src_node_id != first
            or msg.has_error()
            or wire.AGGREGATE not in msg.content
        ):
            continue
        try:
            returned = wire.arrays_of(msg.content, wire.AGGREGATE).to_numpy_ndarrays()
        except (ValueError, TypeError) as exc:
            logger.warning("round %d: returned model unreadable (%s)", ctx.server_round, exc)
            return None
        if [tuple(a.shape) for a in returned] != [tuple(s) for s in ctx.shapes] or not all(
            np.all(np.isfinite(a)) for a in returned
        ):
            logger.warning("round %d: returned model has wrong shapes or non-finite values",
                           ctx.server_round)  # fmt: skip
            return None
        return returned
    return None


def _open(
    strategy: Strategy, pending: _Pending, grid: Grid, ctx: RoundContext
) -> list[np.ndarray] | str:
    """Decrypt a pending aggregate with a round trip to one of its contributors."""
    if not isinstance(strategy, EncryptedAggregation):
        return "the strategy cannot open encrypted aggregates"
    logger.info("round %d: asking a key holder to decrypt the aggregate", pending.server_round)
    return strategy.open(pending.aggregate, grid=grid, ctx=ctx)


def _new_report(spec: FederationSpec, *, schema_hash: str, strategy: str) -> FederationReport:
    privacy: dict[str, object] = {"mode": spec.privacy}
    if spec.privacy.uses_dp and spec.dp is not None:
        privacy["dp"] = {
            "target_epsilon": spec.dp.target_epsilon,
            "delta": spec.dp.delta,
            "max_grad_norm": spec.dp.max_grad_norm,
            "accountant": spec.dp.accountant,
            "mechanism": "DP-SGD (Opacus), Poisson sampling, record-level",
        }
    if spec.privacy.uses_he:
        privacy["he"] = {
            "scheme": "CKKS (TenSEAL)",
            "poly_modulus_degree": spec.he.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(spec.he.coeff_mod_bit_sizes),
            "global_scale_bits": spec.he.global_scale_bits,
        }
    return FederationReport(
        federation=spec.name,
        model=spec.model,
        mode=spec.mode,
        privacy_mode=spec.privacy,
        privacy=privacy,
        strategy=strategy,
        rounds_planned=spec.rounds,
        schema_hash=schema_hash,
        warnings=list(spec.warnings),
    )


def _train_round(
    grid: Grid,
    spec: FederationSpec,
    strategy: Strategy,
    arrays: list[np.ndarray],
    *,
    ctx: RoundContext,
    run_id: str,
    arch: Architecture,
    norm: Standardization,
    pending: Aggregate | None = None,
) -> Exchange:
    """Push the round's train messages: the global model in plain, or (under CKKS, from
    round 2) the previous round's encrypted aggregate, which participants decrypt."""
    config = ConfigRecord(
        {
            "server-round": ctx.server_round,
            "total-rounds": spec.rounds,
            "model-kind": arch.kind,
            "hidden": list(arch.hidden),
            "local-epochs": spec.local_epochs,
            "batch-size": spec.batch_size,
            "learning-rate": spec.learning_rate,
            "use-dp": spec.privacy.uses_dp,
            "use-he": False,
            "seed": spec.seed,
            "run-id": run_id,
            "example-scale": ctx.example_scale,
            "feature-shift": list(norm.shift),
            "feature-scale": list(norm.scale),
        }
    )
    if spec.privacy.uses_dp and spec.dp is not None:
        config["target-epsilon"] = spec.dp.target_epsilon
        config["delta"] = spec.dp.delta
        config["max-grad-norm"] = spec.dp.max_grad_norm
        config["accountant"] = spec.dp.accountant
    config = strategy.configure_train(config)
    messages = []
    # One record of the aggregate for every message (the ciphertext is megabytes).
    shared = (
        None
        if pending is None or pending.encrypted is None
        else update_to_record(pending.encrypted)
    )
    for index, node in enumerate(ctx.participants):
        if shared is not None and pending is not None:
            own = ConfigRecord(dict(config))
            own["aggregate-contributors"] = len(pending.holders)
            own["aggregate-divisor"] = pending.divisor
            own["model-shapes"] = wire.encode_shapes(ctx.shapes)
            own["return-model"] = index == 0
            content = RecordDict({wire.ENCRYPTED: shared, wire.CONFIG: own})
        else:
            content = RecordDict({wire.ARRAYS: ArrayRecord(arrays), wire.CONFIG: config})
        messages.append(Message(content, dst_node_id=node, message_type=wire.TRAIN))
    return Exchange(grid, messages, timeout_s=ctx.timeout_s)


def _collect(incoming: Exchange, ctx: RoundContext) -> list[Message]:
    """Every reply of the round (the strategy may have stopped reading early)."""
    replies = incoming.wait()
    for node in sorted(incoming.unanswered):
        name = ctx.participants.get(node, f"node-{node}")
        logger.warning("round %d: no answer from %s within the timeout", ctx.server_round, name)
    return replies


def _epsilons(replies: list[Message], names: dict[int, str]) -> dict[str, float]:
    out = {}
    for msg in replies:
        if msg.has_error() or wire.METRICS not in msg.content:
            continue
        value = msg.content[wire.METRICS].get("epsilon")
        if isinstance(value, float | int):
            out[names.get(msg.metadata.src_node_id, str(msg.metadata.src_node_id))] = float(value)
    return out


def _record_dp_used(
    report: FederationReport, replies: list[Message], names: dict[int, str]
) -> None:
    """Keep, per participant, the DP-SGD parameters it reports having used (model card)."""
    dp = report.privacy.get("dp")
    if not isinstance(dp, dict):
        return
    used = dp.setdefault("used", {})
    for msg in replies:
        if msg.has_error() or wire.METRICS not in msg.content:
            continue
        metrics = msg.content[wire.METRICS]
        sigma, rate = metrics.get("noise-multiplier"), metrics.get("sample-rate")
        if isinstance(sigma, float | int) and isinstance(rate, float | int):
            used[names.get(msg.metadata.src_node_id, "?")] = {
                "noise_multiplier": round(float(sigma), 6),
                "sample_rate": round(float(rate), 6),
                "steps_per_round": metrics.get("steps"),
            }


def _evaluate(
    model: torch.nn.Module, arrays: list[np.ndarray], evaluation: TabularData | None
) -> tuple[float | None, float | None]:
    if evaluation is None or evaluation.labels is None:
        return None, None
    from_arrays(model, arrays)
    metrics = evaluate(model, evaluation.features, evaluation.labels)
    return metrics.auc, metrics.log_loss


def _round_record(
    server_round: int,
    aggregate: Aggregate,
    replies: list[Message],
    names: dict[int, str],
    epsilon: dict[str, float],
    started: float,
    *,
    metrics: tuple[float | None, float | None],
    ended: float | None = None,
) -> RoundRecord:
    rows = {}
    for msg in replies:
        if not msg.has_error() and wire.METRICS in msg.content:
            n = msg.content[wire.METRICS].get(wire.NUM_EXAMPLES)
            if isinstance(n, int):
                rows[names.get(msg.metadata.src_node_id, "?")] = n
    return RoundRecord(
        server_round=server_round,
        status="ok" if aggregate.arrays is not None else "failed",
        auc=metrics[0],
        log_loss=metrics[1],
        contributors=list(aggregate.contributors),
        rejected={r.participant: r.reason for r in aggregate.rejections},
        rows_used=rows,
        epsilon=epsilon,
        duration_s=round((ended if ended is not None else time.monotonic()) - started, 3),
        failure=aggregate.failure,
    )
