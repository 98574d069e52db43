"""A participant's steps in a vertical federation: private set intersection, then vertical LR.

Every step arrives as one ``query.vertical`` message whose config names the ``op``; the
guest (label holder) and the hosts answer different ops. What a party must remember between
steps lives in its own state folder (:mod:`participants.vertical_state`). Rows enter the
intersection only if their subject has an active training grant (the consent filter of
:func:`~participants.local_data.load_eligible`), so a host never even blinds an id that
may not be used.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flwr.app import ConfigRecord, ConfigRecordValues, MetricRecord, MetricRecordValues, RecordDict

from models import wire
from models.federation import FederationSpec, ParticipantSpec
from models.tabular import TabularData, load_table
from privacy._files import atomic_write_bytes
from privacy.he.public import PublicContext
from privacy.psi import IdFormat, PSIAnswer, PSIGuest, PSIHost, PSIOffer, PSIReveal
from privacy.vertical import (
    CKKSHostCodec,
    PlainCodec,
    VerticalLRConfig,
    VerticalLRGuest,
    VerticalLRHost,
    batch_plan,
    holdout_split,
)

from .keys import load_secret
from .local_data import ParticipantError, declared_schema, load_eligible
from .vertical_state import (
    cached_table,
    part_dir,
    read_arrays,
    read_json,
    run_dir,
    write_arrays,
    write_json,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Step:
    spec: FederationSpec
    participant: ParticipantSpec
    config: ConfigRecord
    content: RecordDict
    folder: Path

    def number(self, key: str) -> int:
        return wire.config_int(self.config, key)

    def payload(self, name: str) -> bytes:
        return wire.payload_bytes(self.content, name)

    def vector(self, name: str, *, size: int | None = None) -> np.ndarray:
        return wire.payload_vector(self.content, name, size=size)


Info = dict[str, ConfigRecordValues]
Payload = dict[str, bytes | np.ndarray]
Reply = tuple[Info, Payload]


def handle_vertical(
    msg_content: RecordDict, spec: FederationSpec, participant: ParticipantSpec
) -> RecordDict:
    """Run the step the message names; the reply's content (config, payload, metrics)."""
    if spec.vertical is None:
        raise ParticipantError(f"federation {spec.name!r} is not vertical")
    config = wire.config_of(msg_content)
    op = wire.config_str(config, "op")
    role = "guest" if participant.name == spec.vertical.guest else "host"
    handler = _OPS.get((role, op))
    if handler is None:
        raise ParticipantError(f"{participant.name} is a {role}: it has no step {op!r}")
    folder = run_dir(spec.name, participant.name, wire.config_str(config, "run-id"))
    folder.mkdir(parents=True, exist_ok=True)
    info, payload = handler(_Step(spec, participant, config, msg_content, folder))
    content = RecordDict({wire.INFO: ConfigRecord({"participant": participant.name, **info})})
    if payload:
        content[wire.PAYLOAD] = wire.payload_record(payload)
    metrics: dict[str, MetricRecordValues] = {
        k: v for k, v in info.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    content[wire.METRICS] = MetricRecord(metrics)
    return content


# --- data -----------------------------------------------------------------------------


def _table(step: _Step) -> TabularData:
    """The participant's whole table (parsed once per process while the file is unchanged).

    Training steps index it by the aligned ids, which passed the consent filter when the
    intersection was computed at the start of the run.
    """
    schema = declared_schema(step.spec, step.participant)
    return cached_table(  # type: ignore[no-any-return]
        step.participant.file,
        lambda: load_table(step.participant.file, schema, require_label=schema.label is not None),
    )


def _aligned(step: _Step) -> tuple[np.ndarray, np.ndarray | None]:
    """Features (and labels at the guest) of the aligned rows, in sorted-id order."""
    table = _table(step)
    ids = read_json(step.folder / "aligned.json", what="intersection")["ids"]
    row_of = {str(i).strip(): n for n, i in enumerate(table.ids)}
    rows = np.array([row_of[i] for i in ids], dtype=np.int64)
    labels = None if table.labels is None else table.labels[rows].astype(np.float64)
    return table.features[rows].astype(np.float64), labels


def _split(step: _Step, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    assert step.spec.vertical is not None
    return holdout_split(n_rows, holdout=step.spec.vertical.holdout, seed=step.spec.seed)


def _lr_config(spec: FederationSpec) -> VerticalLRConfig:
    assert spec.vertical is not None
    return VerticalLRConfig(
        learning_rate=spec.learning_rate,
        l2=spec.vertical.l2,
        batch_rows=spec.batch_size,
        feature_clip_norm=spec.vertical.feature_clip_norm,
        label_noise_multiplier=spec.vertical.label_noise_multiplier,
    )


# --- private set intersection ---------------------------------------------------------


def _ids(step: _Step) -> list[str]:
    """Ids of the rows whose subject may be trained on now (consent filter at PSI time)."""
    return [str(i) for i in load_eligible(step.spec, step.participant).data.ids]


def _psi_offer(step: _Step) -> Reply:
    guest = PSIGuest(_ids(step), reveal_to_host=True, where=f"{step.participant.file} id column")
    offer = guest.offer()
    write_json(step.folder / "psi.json", guest.export_state(include_secret=True))
    info: Info = {"count": offer.count, "id-format": json.dumps(offer.id_format.to_dict())}
    return info, {"elements": offer.elements, "session": offer.session}


def _psi_answer(step: _Step) -> Reply:
    offer = PSIOffer(
        session=step.payload("session"),
        elements=step.payload("elements"),
        count=step.number("count"),
        id_format=IdFormat.from_dict(json.loads(wire.config_str(step.config, "id-format"))),
        reveal_to_host=True,
    )
    host = PSIHost(_ids(step), where=f"{step.participant.file} id column")
    answer = host.answer(offer)
    write_json(step.folder / "psi.json", host.export_state())
    info: Info = {
        "host-count": answer.host_count,
        "id-format": json.dumps(answer.id_format.to_dict()),
    }
    return info, {"double": answer.double_blinded, "elements": answer.host_elements}


def _psi_finish(step: _Step) -> Reply:
    state_file = step.folder / "psi.json"
    guest = PSIGuest.restore(read_json(state_file, what="PSI offer"))
    hosts = wire.config_str(step.config, "hosts").split(",")
    session = guest.session
    answers = [
        PSIAnswer(
            session=session,
            double_blinded=step.payload(f"{h}.double"),
            host_elements=step.payload(f"{h}.elements"),
            host_count=step.number(f"{h}.host-count"),
            id_format=IdFormat.from_dict(
                json.loads(wire.config_str(step.config, f"{h}.id-format"))
            ),
        )
        for h in hosts
    ]
    result, reveals = guest.finish_many(answers)
    write_json(step.folder / "aligned.json", {"ids": sorted(result.ids)})
    state_file.unlink()  # the secret scalar is no longer needed
    logger.info("PSI: %d of %d rows shared with every host", result.size, result.own_count)
    payload: Payload = {
        f"{h}.positions": np.array(r.positions, dtype=np.float64)
        for h, r in zip(hosts, reveals, strict=True)
    }
    return {"aligned": result.size}, payload


def _psi_learn(step: _Step) -> Reply:
    state_file = step.folder / "psi.json"
    state = read_json(state_file, what="PSI answer")
    host = PSIHost.restore(state)
    positions = tuple(int(p) for p in step.vector("positions"))
    result = host.learn(
        PSIReveal(session=bytes.fromhex(str(state["session"])), positions=positions)
    )
    write_json(step.folder / "aligned.json", {"ids": sorted(result.ids)})
    state_file.unlink()
    return {"aligned": result.size}, {}


# --- vertical logistic regression -----------------------------------------------------


def _uses_ckks(spec: FederationSpec) -> bool:
    return spec.privacy.uses_he


def _guest(step: _Step) -> VerticalLRGuest:
    features, labels = _aligned(step)
    assert labels is not None
    train, _ = _split(step, features.shape[0])
    codec = PlainCodec()
    if _uses_ckks(step.spec):
        from privacy.vertical.ckks_guest import CKKSGuestCodec

        codec = CKKSGuestCodec(secret=load_secret(step.folder / "vertical.ckks"))  # type: ignore[assignment]
    party = VerticalLRGuest(
        features[train], labels[train], codec=codec, config=_lr_config(step.spec)
    )
    model = step.folder / "model.npz"
    if model.exists():
        state = read_arrays(model, what="guest model")
        party.weights, party.bias = state["weights"], float(state["bias"][0])
    return party


def _host(step: _Step) -> VerticalLRHost:
    features, _ = _aligned(step)
    train, _ = _split(step, features.shape[0])
    codec = PlainCodec()
    if _uses_ckks(step.spec):
        material = (step.folder / "guest-public.ckks").read_bytes()
        codec = CKKSHostCodec(material)  # type: ignore[assignment]
    party = VerticalLRHost(features[train], codec=codec, config=_lr_config(step.spec))
    model = step.folder / "model.npz"
    if model.exists():
        party.weights = read_arrays(model, what="host model")["weights"]
    return party


def _rows(step: _Step, n_train: int) -> np.ndarray:
    plan = batch_plan(
        n_train, batch_rows=step.spec.batch_size, epoch=step.number("epoch"), seed=step.spec.seed
    )
    index = step.number("step")
    if not 0 <= index < len(plan.batches):
        raise ParticipantError(
            f"epoch {plan.epoch} has {len(plan.batches)} steps, asked for {index}"
        )
    return plan.batches[index]


def _lr_setup(step: _Step) -> Reply:
    if not _uses_ckks(step.spec):
        return {"ckks": False}, {"public": b"-"}
    from privacy.he.secret import SecretContext
    from privacy.vertical.codecs import VERTICAL_CKKS

    secret = SecretContext.generate(VERTICAL_CKKS)
    secret.save(step.folder / "vertical.ckks", include_secret_key=True)
    return {"ckks": True}, {"public": secret.public().serialize()}


def _lr_keys(step: _Step) -> Reply:
    material = step.payload("public")
    if _uses_ckks(step.spec):
        PublicContext.from_bytes(material)  # refuses anything holding a secret key
        (step.folder / "guest-public.ckks").write_bytes(material)
    return {}, {}


def _apply_pending(step: _Step, host: VerticalLRHost) -> None:
    if wire.config_int(step.config, "apply-step", default=-1) < 0:
        return
    pending = read_arrays(step.folder / "pending.npz", what="pending masks")
    host.apply_masked(
        pending["rows"], step.vector("sums", size=host.weights.size), pending["totals"]
    )
    (step.folder / "pending.npz").unlink()
    write_arrays(step.folder / "model.npz", weights=host.weights)


def _lr_logits(step: _Step) -> Reply:
    host = _host(step)
    _apply_pending(step, host)
    rows = _rows(step, host.rows)
    return {}, {"logits": host.partial_logits(rows)}


def _lr_residuals(step: _Step) -> Reply:
    guest = _guest(step)
    rows = _rows(step, guest.rows)
    hosts = wire.config_str(step.config, "hosts").split(",")
    logits = [step.vector(f"{h}.logits", size=rows.size) for h in hosts]
    residuals = guest.residuals(rows, logits)
    write_arrays(step.folder / "model.npz", weights=guest.weights, bias=np.array([guest.bias]))
    return {}, {"residuals": residuals}


def _lr_products(step: _Step) -> Reply:
    host = _host(step)
    rows = _rows(step, host.rows)
    answer = host.answer(rows, step.payload("residuals"))
    write_arrays(step.folder / "pending.npz", rows=rows, totals=answer.mask_totals)
    return {}, {"products": answer.payload}


def _lr_open(step: _Step) -> Reply:
    guest = _guest(step)
    rows = _rows(step, guest.rows)
    payload: dict[str, bytes | np.ndarray] = {}
    for host in wire.config_str(step.config, "hosts").split(","):
        columns = step.number(f"{host}.columns")
        payload[f"{host}.sums"] = guest.open_sums(
            rows, step.payload(f"{host}.products"), columns=columns
        )
    return {}, payload


def _lr_score(step: _Step) -> Reply:
    host = _host(step)
    _apply_pending(step, host)
    features, _ = _aligned(step)
    _, holdout = _split(step, features.shape[0])
    return {}, {"logits": host.score_part(features[holdout])}


def _lr_evaluate(step: _Step) -> Reply:
    from sklearn.metrics import log_loss, roc_auc_score

    guest = _guest(step)
    features, labels = _aligned(step)
    assert labels is not None
    _, holdout = _split(step, features.shape[0])
    hosts = wire.config_str(step.config, "hosts").split(",")
    parts = [step.vector(f"{h}.logits", size=holdout.size) for h in hosts]
    logits = guest.logits(features[holdout], parts)
    y = labels[holdout]
    p = np.clip(1 / (1 + np.exp(-logits)), 1e-7, 1 - 1e-7)
    auc = float(roc_auc_score(y, logits)) if np.unique(y).size == 2 else float("nan")
    return {
        "auc": auc,
        "log-loss": float(log_loss(y, p, labels=[0.0, 1.0])),
        "rows": int(holdout.size),
    }, {}


def _export(step: _Step, party: VerticalLRGuest | VerticalLRHost, bias: float) -> Reply:
    """File this party's ONNX part of the trained model on its own node; answer its hash."""
    from models.vertical_parts import lr_part_graph

    part = lr_part_graph(
        party=step.participant.name,
        mean=party.mean,
        scale=party.scale,
        weights=party.weights,
        clip_norm=party.config.feature_clip_norm,
        bias=bias,
    )
    body = part.SerializeToString()
    schema = declared_schema(step.spec, step.participant)
    folder = part_dir(step.spec.name, step.participant.name, wire.config_str(step.config, "run-id"))
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "part.onnx", body, mode=0o600)
    digest = hashlib.sha256(body).hexdigest()
    write_json(folder / "part.json", {"sha256": digest, "schema": schema.to_dict(),
                                      "schema_hash": schema.hash()})  # fmt: skip
    logger.info("filed the %s part (%s…) in %s", step.participant.name, digest[:12], folder)
    return {"sha256": digest, "features": ",".join(schema.feature_names)}, {}


def _guest_export(step: _Step) -> Reply:
    guest = _guest(step)
    return _export(step, guest, guest.bias)


def _host_export(step: _Step) -> Reply:
    return _export(step, _host(step), 0.0)


_OPS: dict[tuple[str, str], Callable[[_Step], Reply]] = {
    ("guest", "psi-offer"): _psi_offer,
    ("host", "psi-answer"): _psi_answer,
    ("guest", "psi-finish"): _psi_finish,
    ("host", "psi-learn"): _psi_learn,
    ("guest", "lr-setup"): _lr_setup,
    ("host", "lr-keys"): _lr_keys,
    ("host", "lr-logits"): _lr_logits,
    ("guest", "lr-residuals"): _lr_residuals,
    ("host", "lr-products"): _lr_products,
    ("guest", "lr-open"): _lr_open,
    ("host", "lr-score"): _lr_score,
    ("guest", "lr-evaluate"): _lr_evaluate,
    ("guest", "lr-export"): _guest_export,
    ("host", "lr-export"): _host_export,
}
