"""The coordinator's relay of a vertical split network (``[vertical] protocol = "split-nn"``).

Per batch the coordinator forwards two things and sees both (DESIGN.md, vertical mode): the
hosts' cut-layer activations and the guest's gradients for them, each clipped per row and
Gaussian-noised by the party that releases it under ``privacy = "dp"``. ε is accounted here
from the federation's settings alone: each release is a subsampled Gaussian mechanism
(Poisson rate ``batch_size / training rows``), composed over every batch of every epoch
(RDP, δ = 1e-5); ``<host>.features`` bounds the activations, ``<guest>.labels`` the
gradients. The holdout activations sent for evaluation are not noised and not counted (the
holdout rows never train).
"""

from __future__ import annotations

import math

import numpy as np
import onnx

from models import wire
from models.federation import FederationSpec
from models.vertical_parts import PartRef

from .relay import Relay, auc_and_loss

DELTA = 1e-5


Metrics = tuple[float | None, float | None]


def batches_per_epoch(spec: FederationSpec, n_train: int) -> int:
    return max(1, math.ceil(n_train / spec.batch_size))


def split_epoch(relay: Relay, spec: FederationSpec, epoch: int, *, n_train: int) -> Metrics:
    """One epoch of batches, then the hosts' holdout activations and the guest's metrics."""
    assert spec.vertical is not None
    guest, hosts = spec.vertical.guest, list(spec.vertical.hosts)
    pending: dict[str, np.ndarray] = {}
    for step in range(batches_per_epoch(spec, n_train)):
        forward = relay.ask(
            "sn-forward",
            hosts,
            config={"epoch": epoch, "step": step, "apply-step": 0 if pending else -1},
            payload={h: {"gradient": pending[h]} for h in pending},
        )
        stepped = relay.ask(
            "sn-step",
            [guest],
            config={"epoch": epoch, "step": step, "hosts": ",".join(hosts)},
            payload={
                guest: {
                    f"{h}.activations": wire.payload_vector(forward[h], "activations")
                    for h in hosts
                }
            },
        )[guest]
        pending = {h: wire.payload_vector(stepped, f"{h}.gradient") for h in hosts}
    scores = relay.ask(
        "sn-score",
        hosts,
        config={"epoch": epoch, "apply-step": 0},
        payload={h: {"gradient": pending[h]} for h in pending},
    )
    metrics = relay.ask(
        "sn-evaluate",
        [guest],
        config={"hosts": ",".join(hosts)},
        payload={
            guest: {
                f"{h}.activations": wire.payload_vector(scores[h], "activations") for h in hosts
            }
        },
    )[guest]
    return auc_and_loss(metrics)


def export_split(relay: Relay, spec: FederationSpec) -> tuple[list[PartRef], onnx.ModelProto]:
    """Every party files its bottom network; the guest hands over the top as the combiner."""
    assert spec.vertical is not None
    guest = spec.vertical.guest
    replies = relay.ask("sn-export", [guest, *spec.vertical.hosts])
    combiner = onnx.load_from_string(wire.payload_bytes(replies[guest], "combiner"))
    onnx.checker.check_model(combiner)
    return relay.part_refs(replies), combiner


def split_epsilon(spec: FederationSpec, *, epochs: int, n_train: int) -> dict[str, float]:
    """ε of every release so far (empty under ``privacy = "none"``)."""
    vertical = spec.vertical
    assert vertical is not None and vertical.split is not None
    if not vertical.split.noised:
        return {}
    from privacy.dp.accounting import epsilon_for
    from privacy.dp.events import DPEvent

    rate = min(1.0, spec.batch_size / n_train)
    steps = batches_per_epoch(spec, n_train) * max(1, epochs)
    s = vertical.split

    def eps(sigma: float) -> float:
        return round(epsilon_for([DPEvent(sigma, rate, steps)], delta=DELTA), 4)

    out = {f"{h}.features": eps(s.activation_noise_multiplier) for h in vertical.hosts}
    out[f"{vertical.guest}.labels"] = eps(s.gradient_noise_multiplier)
    return out


def split_privacy(spec: FederationSpec) -> dict[str, object]:
    """The split network's privacy parameters, for the report and the model card."""
    vertical = spec.vertical
    assert vertical is not None and vertical.split is not None
    s = vertical.split
    out: dict[str, object] = {
        "protocol": "split neural network: bottom networks at every party, top at the guest",
        "network": {"cut_width": s.cut_width, "bottom_hidden": list(s.bottom_hidden),
                    "top_hidden": list(s.top_hidden)},
    }  # fmt: skip
    if s.noised:
        out["cut_layer_dp"] = {
            "activations": {"clip_norm": s.activation_clip_norm,
                            "noise_multiplier": s.activation_noise_multiplier},
            "gradients": {"clip_norm": s.gradient_clip_norm,
                          "noise_multiplier": s.gradient_noise_multiplier},
            "sampling": "Poisson, rate batch_size / training rows",
            "accountant": "rdp", "delta": DELTA,
        }  # fmt: skip
    return out
