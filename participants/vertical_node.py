"""A participant's steps in a vertical federation: private set intersection, then vertical LR.

Every step arrives as one ``query.vertical`` message whose config names the ``op``; the
guest (label holder) and the hosts answer different ops. What a party must remember between
steps lives in its own state folder (:mod:`participants.vertical_state`). Rows enter the
intersection only if their subject has an active training grant (the consent filter of
:func:`~participants.local_data.load_eligible`), so a host never even blinds an id that
may not be used.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import numpy as np
from flwr.app import ConfigRecord, MetricRecord, MetricRecordValues, RecordDict

from models import wire
from models.federation import FederationSpec, ParticipantSpec
from privacy.he.public import PublicContext
from privacy.psi import IdFormat, PSIAnswer, PSIGuest, PSIHost, PSIOffer, PSIReveal
from privacy.vertical import (
    CKKSHostCodec,
    PlainCodec,
    VerticalLRConfig,
    VerticalLRGuest,
    VerticalLRHost,
    batch_plan,
)

from .keys import load_secret
from .local_data import ParticipantError, load_eligible
from .vertical_split import SPLIT_OPS
from .vertical_state import (
    read_arrays,
    read_json,
    run_dir,
    write_arrays,
    write_json,
)
from .vertical_step import (
    Info,
    Payload,
    Reply,
    Step,
    file_part,
    holdout_metrics,
    rows_of,
)

logger = logging.getLogger(__name__)


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
    other = [p for name, p in _PROTOCOL_PREFIX.items() if name != spec.vertical.protocol]
    if any(op.startswith(prefix) for prefix in other):
        raise ParticipantError(
            f"step {op!r} belongs to another protocol than this federation's "
            f"{spec.vertical.protocol!r}"
        )
    if handler is None:
        raise ParticipantError(f"{participant.name} is a {role}: it has no step {op!r}")
    folder = run_dir(spec.name, participant.name, wire.config_str(config, "run-id"))
    folder.mkdir(parents=True, exist_ok=True)
    info, payload = handler(Step(spec, participant, config, msg_content, folder))
    content = RecordDict({wire.INFO: ConfigRecord({"participant": participant.name, **info})})
    if payload:
        content[wire.PAYLOAD] = wire.payload_record(payload)
    metrics: dict[str, MetricRecordValues] = {
        k: v for k, v in info.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    content[wire.METRICS] = MetricRecord(metrics)
    return content


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


def _ids(step: Step) -> list[str]:
    """Ids of the rows whose subject may be trained on now (consent filter at PSI time)."""
    return [str(i) for i in load_eligible(step.spec, step.participant).data.ids]


def _psi_offer(step: Step) -> Reply:
    guest = PSIGuest(_ids(step), reveal_to_host=True, where=f"{step.participant.file} id column")
    offer = guest.offer()
    write_json(step.folder / "psi.json", guest.export_state(include_secret=True))
    info: Info = {"count": offer.count, "id-format": json.dumps(offer.id_format.to_dict())}
    return info, {"elements": offer.elements, "session": offer.session}


def _psi_answer(step: Step) -> Reply:
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


def _psi_finish(step: Step) -> Reply:
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


def _psi_learn(step: Step) -> Reply:
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


def _guest(step: Step) -> VerticalLRGuest:
    features, labels = rows_of(step, "train")
    assert labels is not None
    codec = PlainCodec()
    if _uses_ckks(step.spec):
        from privacy.vertical.ckks_guest import CKKSGuestCodec

        codec = CKKSGuestCodec(secret=load_secret(step.folder / "vertical.ckks"))  # type: ignore[assignment]
    party = VerticalLRGuest(features, labels, codec=codec, config=_lr_config(step.spec))
    model = step.folder / "model.npz"
    if model.exists():
        state = read_arrays(model, what="guest model")
        party.weights, party.bias = state["weights"], float(state["bias"][0])
    return party


def _host(step: Step) -> VerticalLRHost:
    features, _ = rows_of(step, "train")
    codec = PlainCodec()
    if _uses_ckks(step.spec):
        material = (step.folder / "guest-public.ckks").read_bytes()
        codec = CKKSHostCodec(material)  # type: ignore[assignment]
    party = VerticalLRHost(features, codec=codec, config=_lr_config(step.spec))
    model = step.folder / "model.npz"
    if model.exists():
        party.weights = read_arrays(model, what="host model")["weights"]
    return party


def _rows(step: Step, n_train: int) -> np.ndarray:
    plan = batch_plan(
        n_train, batch_rows=step.spec.batch_size, epoch=step.number("epoch"), seed=step.spec.seed
    )
    index = step.number("step")
    if not 0 <= index < len(plan.batches):
        raise ParticipantError(
            f"epoch {plan.epoch} has {len(plan.batches)} steps, asked for {index}"
        )
    return plan.batches[index]


def _lr_setup(step: Step) -> Reply:
    if not _uses_ckks(step.spec):
        return {"ckks": False}, {"public": b"-"}
    from privacy.he.secret import SecretContext
    from privacy.vertical.codecs import VERTICAL_CKKS

    secret = SecretContext.generate(VERTICAL_CKKS)
    secret.save(step.folder / "vertical.ckks", include_secret_key=True)
    return {"ckks": True}, {"public": secret.public().serialize()}


def _lr_keys(step: Step) -> Reply:
    material = step.payload("public")
    if _uses_ckks(step.spec):
        PublicContext.from_bytes(material)  # refuses anything holding a secret key
        (step.folder / "guest-public.ckks").write_bytes(material)
    return {}, {}


def _apply_pending(step: Step, host: VerticalLRHost) -> None:
    if wire.config_int(step.config, "apply-step", default=-1) < 0:
        return
    pending = read_arrays(step.folder / "pending.npz", what="pending masks")
    host.apply_masked(
        pending["rows"], step.vector("sums", size=host.weights.size), pending["totals"]
    )
    (step.folder / "pending.npz").unlink()
    write_arrays(step.folder / "model.npz", weights=host.weights)


def _lr_logits(step: Step) -> Reply:
    host = _host(step)
    _apply_pending(step, host)
    rows = _rows(step, host.rows)
    return {}, {"logits": host.partial_logits(rows)}


def _lr_residuals(step: Step) -> Reply:
    guest = _guest(step)
    rows = _rows(step, guest.rows)
    hosts = wire.config_str(step.config, "hosts").split(",")
    logits = [step.vector(f"{h}.logits", size=rows.size) for h in hosts]
    residuals = guest.residuals(rows, logits)
    write_arrays(step.folder / "model.npz", weights=guest.weights, bias=np.array([guest.bias]))
    return {}, {"residuals": residuals}


def _lr_products(step: Step) -> Reply:
    host = _host(step)
    rows = _rows(step, host.rows)
    answer = host.answer(rows, step.payload("residuals"))
    write_arrays(step.folder / "pending.npz", rows=rows, totals=answer.mask_totals)
    return {}, {"products": answer.payload}


def _lr_open(step: Step) -> Reply:
    guest = _guest(step)
    rows = _rows(step, guest.rows)
    payload: dict[str, bytes | np.ndarray] = {}
    for host in wire.config_str(step.config, "hosts").split(","):
        columns = step.number(f"{host}.columns")
        payload[f"{host}.sums"] = guest.open_sums(
            rows, step.payload(f"{host}.products"), columns=columns
        )
    return {}, payload


def _lr_score(step: Step) -> Reply:
    host = _host(step)
    _apply_pending(step, host)
    features, _ = rows_of(step, "holdout")
    return {}, {"logits": host.score_part(features)}


def _lr_evaluate(step: Step) -> Reply:
    guest = _guest(step)
    features, labels = rows_of(step, "holdout")
    assert labels is not None
    hosts = wire.config_str(step.config, "hosts").split(",")
    parts = [step.vector(f"{h}.logits", size=labels.size) for h in hosts]
    return holdout_metrics(labels, guest.logits(features, parts)), {}


def _export(step: Step, party: VerticalLRGuest | VerticalLRHost, bias: float) -> Reply:
    from models.vertical_parts import lr_part_graph

    part = lr_part_graph(
        party=step.participant.name,
        mean=party.mean,
        scale=party.scale,
        weights=party.weights,
        clip_norm=party.config.feature_clip_norm,
        bias=bias,
    )
    return file_part(step, part, kind="vertical-lr")


def _guest_export(step: Step) -> Reply:
    guest = _guest(step)
    return _export(step, guest, guest.bias)


def _host_export(step: Step) -> Reply:
    return _export(step, _host(step), 0.0)


_OPS: dict[tuple[str, str], Callable[[Step], Reply]] = {
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
    **SPLIT_OPS,
}

#: Training ops of each protocol (PSI is shared): refused under the other protocol.
_PROTOCOL_PREFIX = {"logistic-regression": "lr-", "split-nn": "sn-"}
