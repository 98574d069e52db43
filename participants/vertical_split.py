"""A party's steps of a vertical split network (``[vertical] protocol = "split-nn"``).

Per batch, two relayed exchanges (:mod:`coordinator.vertical_split`):

1. ``sn-forward`` at every host: apply the gradient of the previous batch (if any) to its
   bottom network, then release the clipped, noised cut-layer activations of this batch;
2. ``sn-step`` at the guest: run its own bottom and the top network on the batch, take an
   optimiser step, and release the clipped, noised gradient for each host's activations.

Batches are the Poisson batches of :func:`~privacy.vertical.split_nn.epoch_batches`, which
every party derives from the shared seed alone. Between messages a party keeps, in its node
state folder, its networks, optimiser state and noise generator (``split.pt``) and, at a
host, the rows of the batch whose gradient it still expects (``pending.npz``); a host
rebuilds that batch's forward pass before applying the gradient (its weights have not
changed since it released the activations, so the pass is the same).

Evaluation: hosts release their clipped, *unnoised* activations of the holdout rows (``sn-score``)
and the guest computes the metrics (``sn-evaluate``), as scoring does later; the holdout rows
are never trained on. Export (``sn-export``): every party files its bottom network as its
ONNX part (a host's clips, as in training); the guest also returns the top network as the
combiner.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

import numpy as np
import torch

from models import wire
from models.split_parts import split_combiner_graph, split_part_graph
from privacy._files import atomic_write_bytes
from privacy.vertical.split_nn import (
    CutLayerDP,
    SplitNNConfig,
    SplitNNGuest,
    SplitNNHost,
    epoch_batches,
)

from .local_data import ParticipantError
from .vertical_state import read_arrays, write_arrays
from .vertical_step import Reply, Step, file_part, holdout_metrics, rows_of

logger = logging.getLogger(__name__)

_STATE = "split.pt"
_PENDING = "pending.npz"


def split_config(step: Step) -> SplitNNConfig:
    """The network shapes, optimiser and cut-layer DP of this federation."""
    vertical = step.spec.vertical
    assert vertical is not None and vertical.split is not None
    s = vertical.split
    return SplitNNConfig(
        cut_width=s.cut_width,
        bottom_hidden=s.bottom_hidden,
        top_hidden=s.top_hidden,
        learning_rate=step.spec.learning_rate,
        batch_rows=step.spec.batch_size,
        activation_dp=CutLayerDP(s.activation_clip_norm, s.activation_noise_multiplier)
        if s.noised
        else None,
        gradient_dp=CutLayerDP(s.gradient_clip_norm, s.gradient_noise_multiplier)
        if s.noised
        else None,
        seed=step.spec.seed,
    )


def _restore(step: Step, party: SplitNNGuest | SplitNNHost) -> None:
    path = step.folder / _STATE
    if path.exists():
        party.restore(torch.load(io.BytesIO(path.read_bytes()), weights_only=True))


def _save(step: Step, party: SplitNNGuest | SplitNNHost) -> None:
    buffer = io.BytesIO()
    torch.save(party.state(), buffer)
    atomic_write_bytes(step.folder / _STATE, buffer.getvalue(), mode=0o600)


def _guest(step: Step) -> SplitNNGuest:
    assert step.spec.vertical is not None
    features, labels = rows_of(step, "train")
    assert labels is not None
    party = SplitNNGuest(
        features, labels, config=split_config(step), hosts=len(step.spec.vertical.hosts)
    )
    _restore(step, party)
    return party


def _host(step: Step) -> SplitNNHost:
    assert step.spec.vertical is not None
    features, _ = rows_of(step, "train")
    index = 1 + step.spec.vertical.hosts.index(step.participant.name)
    party = SplitNNHost(features, config=split_config(step), index=index)
    _restore(step, party)
    return party


def _rows(step: Step, n_train: int, config: SplitNNConfig) -> np.ndarray:
    batches = epoch_batches(n_train, config, epoch=step.number("epoch"))
    index = step.number("step")
    if not 0 <= index < len(batches):
        raise ParticipantError(
            f"epoch {step.number('epoch')} has {len(batches)} batches, asked for {index}"
        )
    return batches[index]


def _apply_pending(step: Step, host: SplitNNHost) -> None:
    """Apply the gradient this message carries to the batch released last."""
    if wire.config_int(step.config, "apply-step", default=-1) < 0:
        return
    rows = read_arrays(step.folder / _PENDING, what="pending batch")["rows"]
    width = host.config.cut_width
    gradient = step.vector("gradient", size=rows.size * width).reshape(rows.size, width)
    host.recompute(rows)
    host.backward(gradient)
    (step.folder / _PENDING).unlink()


def _sn_forward(step: Step) -> Reply:
    host = _host(step)
    _apply_pending(step, host)
    rows = _rows(step, host.rows, host.config)
    activations = host.forward(rows)
    _save(step, host)  # the noise generator moved on
    write_arrays(step.folder / _PENDING, rows=rows)
    return {"rows": int(rows.size)}, {"activations": activations.reshape(-1)}


def _host_activations(step: Step, hosts: list[str], rows: int, width: int) -> list[np.ndarray]:
    return [step.vector(f"{h}.activations", size=rows * width).reshape(rows, width) for h in hosts]


def _sn_step(step: Step) -> Reply:
    guest = _guest(step)
    rows = _rows(step, guest.rows, guest.config)
    hosts = wire.config_str(step.config, "hosts").split(",")
    width = guest.config.cut_width
    gradients = guest.step(rows, _host_activations(step, hosts, rows.size, width))
    _save(step, guest)
    return {"steps": guest.steps}, {
        f"{h}.gradient": g.reshape(-1) for h, g in zip(hosts, gradients, strict=True)
    }


def _sn_score(step: Step) -> Reply:
    host = _host(step)
    _apply_pending(step, host)
    _save(step, host)
    features, _ = rows_of(step, "holdout")
    return {"rows": features.shape[0]}, {"activations": host.cut(features).reshape(-1)}


def _sn_evaluate(step: Step) -> Reply:
    guest = _guest(step)
    features, labels = rows_of(step, "holdout")
    assert labels is not None
    hosts = wire.config_str(step.config, "hosts").split(",")
    parts = _host_activations(step, hosts, labels.size, guest.config.cut_width)
    logits = guest.logits(features, parts)
    return {**holdout_metrics(labels, logits), "steps": guest.steps}, {}


def _file_part(step: Step, party: SplitNNGuest | SplitNNHost) -> Reply:
    part = split_part_graph(
        party=step.participant.name,
        mean=party.mean,
        scale=party.scale,
        bottom=party.bottom,
        clip_norm=party.clip_norm if isinstance(party, SplitNNHost) else None,
    )
    return file_part(step, part, kind="split-nn")


def _guest_export(step: Step) -> Reply:
    assert step.spec.vertical is not None
    guest = _guest(step)
    info, _ = _file_part(step, guest)
    combiner = split_combiner_graph(
        parties=[step.participant.name, *step.spec.vertical.hosts],
        cut_width=guest.config.cut_width,
        top=guest.top,
    )
    return info, {"combiner": combiner.SerializeToString()}


def _host_export(step: Step) -> Reply:
    return _file_part(step, _host(step))


SPLIT_OPS: dict[tuple[str, str], Callable[[Step], Reply]] = {
    ("host", "sn-forward"): _sn_forward,
    ("guest", "sn-step"): _sn_step,
    ("host", "sn-score"): _sn_score,
    ("guest", "sn-evaluate"): _sn_evaluate,
    ("guest", "sn-export"): _guest_export,
    ("host", "sn-export"): _host_export,
}
