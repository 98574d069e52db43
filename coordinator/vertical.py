"""A vertical federation, run from the coordinator: handshake, PSI, vertical LR, evaluation.

The coordinator only relays: every party-to-party value (blinded ids, partial logits,
CKKS-encrypted residuals, masked products, masked sums) travels as a Flower message to the
coordinator and on to the other party (DESIGN.md, vertical mode). It holds no key — the
guest makes its CKKS key set and hands out only the public part — and what it relays is
blinded, encrypted or masked, except the hosts' partial logits (linear scores, which the
guest needs) and the evaluation metrics.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np
import onnx
from flwr.app import ConfigRecordValues
from flwr.serverapp import Grid

from models import wire
from models.federation import FederationSpec
from models.vertical_parts import PartRef, combiner_graph
from privacy.vertical import batch_plan, holdout_split

from .handshake import FederationAbortedError, run_handshake, wait_for_nodes
from .relay import Relay, auc_and_loss
from .report import FederationReport, RoundRecord
from .vertical_split import export_split, split_epoch, split_epsilon, split_privacy

logger = logging.getLogger(__name__)

RoundListener = Callable[[RoundRecord], None]


def run_vertical(
    grid: Grid,
    spec: FederationSpec,
    *,
    on_round: RoundListener | None = None,
    connect_timeout_s: float = 120.0,
    step_timeout_s: float | None = 3600.0,
) -> VerticalRun:
    """Align ids by PSI, train vertical LR or a split network for ``spec.rounds`` epochs,
    evaluate each epoch, then have every party file its ONNX part of the final model on its
    own node."""
    vertical = spec.vertical
    if vertical is None:
        raise FederationAbortedError(f"federation {spec.name!r} is not vertical")
    schemas = {p.name: p.schema for p in spec.participants if p.schema is not None}
    report = FederationReport(
        federation=spec.name,
        model=spec.model,
        mode=spec.mode,
        privacy_mode=spec.privacy,
        privacy=_privacy(spec),
        strategy="split-nn" if vertical.protocol == "split-nn" else "vertical-lr",
        rounds_planned=spec.rounds,
        schema_hash=",".join(f"{n}:{s.hash()[:16]}" for n, s in schemas.items()),
        warnings=list(spec.warnings),
    )
    nodes = wait_for_nodes(grid, expected=len(spec.participants), timeout_s=connect_timeout_s)
    roster = run_handshake(
        grid,
        nodes,
        schema=schemas,
        fingerprint=None,
        federation=spec.name,
        timeout_s=step_timeout_s,
        order=[p.name for p in spec.participants],
    )
    report.participants.extend(roster.records)
    refused = [r for r in roster.records if not r.accepted]
    if refused or len(roster.nodes) < len(spec.participants):
        reasons = "; ".join(f"{r.name}: {r.reason}" for r in refused) or "a participant is missing"
        raise FederationAbortedError(f"a vertical federation needs every participant: {reasons}")
    relay = Relay(
        grid,
        {name: node for node, name in roster.nodes.items()},
        run_id=uuid.uuid4().hex[:12],
        timeout_s=step_timeout_s,
    )
    guest, hosts = vertical.guest, list(vertical.hosts)
    aligned = _intersect(relay, guest, hosts)
    train, holdout = holdout_split(aligned, holdout=vertical.holdout, seed=spec.seed)
    if holdout.size == 0 or train.size == 0:
        raise FederationAbortedError(
            f"{aligned} aligned rows leave no training or no holdout rows at holdout="
            f"{vertical.holdout}"
        )
    logger.info("vertical: %d aligned rows, %d for training", aligned, train.size)
    split_nn = vertical.protocol == "split-nn"
    n_train = int(train.size)
    if split_nn:
        epoch_fn: Callable[[int], tuple[float | None, float | None]] = partial(
            split_epoch, relay, spec, n_train=n_train
        )
    else:
        _setup_keys(relay, guest, hosts)
        columns = {h: len(schemas[h].features) for h in hosts}
        epoch_fn = partial(_lr_epoch, relay, spec, n_train=n_train, columns=columns)
    for epoch in range(spec.rounds):
        started = time.monotonic()
        auc, loss = epoch_fn(epoch)
        record = RoundRecord(
            server_round=epoch + 1,
            status="ok",
            auc=auc,
            log_loss=loss,
            contributors=[guest, *hosts],
            rejected={},
            rows_used={name: n_train for name in (guest, *hosts)},
            epsilon=_epsilon(spec, epochs=epoch + 1, n_train=n_train),
            duration_s=round(time.monotonic() - started, 3),
        )
        report.rounds.append(record)
        if on_round is not None:
            on_round(record)
    if split_nn:
        parts, combiner = export_split(relay, spec)
    else:
        replies = relay.ask("lr-export", [guest, *hosts])
        parts = relay.part_refs(replies)
        combiner = combiner_graph(parties=[guest, *hosts], bias=0.0)
    final = report.rounds[-1] if report.rounds else None
    report.final = {
        "auc": final.auc if final else None,
        "log_loss": final.log_loss if final else None,
        "epsilon": _epsilon(spec, epochs=spec.rounds, n_train=n_train),
        "rounds_ok": len(report.rounds),
        "rounds_failed": 0,
        "aligned_rows": aligned,
        "holdout_rows": int(holdout.size),
        "parts": [ref.to_dict() for ref in parts],
    }
    return VerticalRun(report=report, parts=tuple(parts), combiner=combiner)


@dataclass(frozen=True)
class VerticalRun:
    """A finished vertical federation: its report and where each party filed its part."""

    report: FederationReport
    parts: tuple[PartRef, ...]
    #: The coordinator's part: sums partial logits (vertical LR, no parameters) or runs the
    #: guest's top network (split network).
    combiner: onnx.ModelProto


def _lr_epoch(
    relay: Relay, spec: FederationSpec, epoch: int, *, n_train: int, columns: Mapping[str, int]
) -> tuple[float | None, float | None]:
    """One epoch of vertical LR batches, then the holdout metrics."""
    assert spec.vertical is not None
    guest, hosts = spec.vertical.guest, list(spec.vertical.hosts)
    plan = batch_plan(n_train, batch_rows=spec.batch_size, epoch=epoch, seed=spec.seed)
    pending: dict[str, np.ndarray] = {}
    for step in range(len(plan.batches)):
        pending = _step(relay, guest, hosts, epoch, step, pending, columns)
    return _evaluate(relay, guest, hosts, epoch, pending)


_PSI = "Diffie-Hellman PSI over ristretto255; intersection revealed to every party"


def _epsilon(spec: FederationSpec, *, epochs: int, n_train: int) -> dict[str, float]:
    assert spec.vertical is not None
    if spec.vertical.protocol == "split-nn":
        return split_epsilon(spec, epochs=epochs, n_train=n_train)
    return _label_epsilon(spec, epochs=epochs)


def _privacy(spec: FederationSpec) -> dict[str, object]:
    assert spec.vertical is not None
    if spec.vertical.protocol == "split-nn":
        return {"mode": spec.privacy, "psi": _PSI, **split_privacy(spec)}
    out: dict[str, object] = {
        "mode": spec.privacy,
        "psi": _PSI,
        "protocol": "vertical logistic regression (Taylor loss), per-party weights",
    }
    if spec.privacy.uses_he:
        out["he"] = {"scheme": "CKKS (TenSEAL)", "poly_modulus_degree": 8192,
                     "coeff_mod_bit_sizes": [60, 40, 40, 60], "global_scale_bits": 40,
                     "key_holder": spec.vertical.guest}  # fmt: skip
    if spec.vertical.label_noise_multiplier is not None:
        out["label_dp"] = {"noise_multiplier": spec.vertical.label_noise_multiplier,
                           "clip_norm": spec.vertical.feature_clip_norm}  # fmt: skip
    return out


def _intersect(relay: Relay, guest: str, hosts: list[str]) -> int:
    offer = relay.ask("psi-offer", [guest])[guest]
    info = wire.config_of(offer, wire.INFO)
    offer_payload = {"elements": wire.payload_bytes(offer, "elements"),
                     "session": wire.payload_bytes(offer, "session")}  # fmt: skip
    answers = relay.ask(
        "psi-answer",
        hosts,
        config={"count": wire.config_int(info, "count"),
                "id-format": wire.config_str(info, "id-format")},
        payload={h: offer_payload for h in hosts},
    )  # fmt: skip
    config: dict[str, ConfigRecordValues] = {"hosts": ",".join(hosts)}
    payload: dict[str, bytes | np.ndarray] = {}
    for host, answer in answers.items():
        answer_info = wire.config_of(answer, wire.INFO)
        config[f"{host}.host-count"] = wire.config_int(answer_info, "host-count")
        config[f"{host}.id-format"] = wire.config_str(answer_info, "id-format")
        payload[f"{host}.double"] = wire.payload_bytes(answer, "double")
        payload[f"{host}.elements"] = wire.payload_bytes(answer, "elements")
    finished = relay.ask("psi-finish", [guest], config=config, payload={guest: payload})[guest]
    aligned = wire.config_int(wire.config_of(finished, wire.INFO), "aligned")
    learned = relay.ask(
        "psi-learn",
        hosts,
        payload={h: {"positions": wire.payload_vector(finished, f"{h}.positions")} for h in hosts},
    )
    for host, reply in learned.items():
        if wire.config_int(wire.config_of(reply, wire.INFO), "aligned") != aligned:
            raise FederationAbortedError(f"psi: {host} aligned a different number of rows")
    return aligned


def _setup_keys(relay: Relay, guest: str, hosts: list[str]) -> None:
    public = wire.payload_bytes(relay.ask("lr-setup", [guest])[guest], "public")
    relay.ask("lr-keys", hosts, payload={h: {"public": public} for h in hosts})


def _step(
    relay: Relay,
    guest: str,
    hosts: list[str],
    epoch: int,
    step: int,
    pending: dict[str, np.ndarray],
    columns: Mapping[str, int],
) -> dict[str, np.ndarray]:
    """One batch: host logits (applying the previous step), residuals, products, sums."""
    where: dict[str, ConfigRecordValues] = {"epoch": epoch, "step": step}
    logits = relay.ask(
        "lr-logits",
        hosts,
        config={**where, "apply-step": 0 if pending else -1},
        payload={h: {"sums": pending[h]} for h in pending},
    )
    residuals = relay.ask(
        "lr-residuals",
        [guest],
        config={**where, "hosts": ",".join(hosts)},
        payload={guest: {f"{h}.logits": wire.payload_vector(logits[h], "logits") for h in hosts}},
    )[guest]
    encrypted = wire.payload_bytes(residuals, "residuals")
    products = relay.ask(
        "lr-products", hosts, config=where, payload={h: {"residuals": encrypted} for h in hosts}
    )
    opened = relay.ask(
        "lr-open",
        [guest],
        config={**where, "hosts": ",".join(hosts), **{f"{h}.columns": columns[h] for h in hosts}},
        payload={
            guest: {f"{h}.products": wire.payload_bytes(products[h], "products") for h in hosts}
        },
    )[guest]
    return {h: wire.payload_vector(opened, f"{h}.sums") for h in hosts}


def _evaluate(
    relay: Relay, guest: str, hosts: list[str], epoch: int, pending: dict[str, np.ndarray]
) -> tuple[float | None, float | None]:
    """Hosts apply the epoch's last step and score the holdout; the guest computes metrics."""
    scores = relay.ask(
        "lr-score",
        hosts,
        config={"epoch": epoch, "apply-step": 0 if pending else -1},
        payload={h: {"sums": pending[h]} for h in pending},
    )
    metrics = relay.ask(
        "lr-evaluate",
        [guest],
        config={"hosts": ",".join(hosts)},
        payload={guest: {f"{h}.logits": wire.payload_vector(scores[h], "logits") for h in hosts}},
    )[guest]
    return auc_and_loss(metrics)


def _label_epsilon(spec: FederationSpec, *, epochs: int) -> dict[str, float]:
    """ε of the guest's labels against the hosts (RDP, δ = 1e-5), when label noise is on.

    Each epoch's batches are disjoint, so a label enters one Gaussian release per host per
    epoch: ``epochs`` compositions at sample rate 1 (privacy.vertical.lr.label_dp_event).
    """
    assert spec.vertical is not None
    sigma = spec.vertical.label_noise_multiplier
    if sigma is None:
        return {}
    from privacy.dp.accounting import epsilon_for
    from privacy.dp.events import DPEvent

    event = DPEvent(noise_multiplier=sigma, sample_rate=1.0, steps=max(1, epochs))
    return {f"{spec.vertical.guest}.labels": round(epsilon_for([event], delta=1e-5), 4)}
