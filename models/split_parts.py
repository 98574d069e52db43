"""ONNX parts of a vertical split network: one bottom network per party, the top as combiner.

A party's part standardises its own features with its training mean and scale (in float64,
as in training) and runs its bottom network (float32, as PyTorch trained it); its output is
the party's cut-layer activations, shape (batch, cut width), the only thing that leaves the
party at scoring time. The combiner concatenates the parties' activations in the order of
its inputs (guest first) and runs the guest's top network, then the sigmoid. Combined
scores match the jointly trained network to float32 rounding (tested to 1e-5).

Unlike vertical logistic regression, the combiner holds model parameters: the guest's top
network, handed to the coordinator when the model is exported (README, split network).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from .errors import ExportError
from .onnx_export import INPUT_NAME, OUTPUT_NAME
from .vertical_parts import PART_OUTPUT, model_proto

__all__ = ["split_combiner_graph", "split_part_graph"]


def _mlp_nodes(
    network: nn.Sequential, *, prefix: str, source: str, output: str
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Gemm (+ Relu) nodes of a Linear/ReLU stack, float32, from ``source`` to ``output``."""
    nodes, inits = [], []
    linears = [m for m in network if isinstance(m, nn.Linear)]
    if not linears or any(not isinstance(m, nn.Linear | nn.ReLU) for m in network):
        raise ExportError(f"{prefix}: only Linear and ReLU layers can be exported")
    current = source
    for index, module in enumerate(network):
        name = f"{prefix}_{index}"
        target = output if index == len(network) - 1 else name
        if isinstance(module, nn.Linear):
            weight = module.weight.detach().numpy().astype(np.float32)
            bias = module.bias.detach().numpy().astype(np.float32)
            if not (np.all(np.isfinite(weight)) and np.all(np.isfinite(bias))):
                raise ExportError(f"{prefix}: layer {index} has non-finite weights")
            inits += [
                numpy_helper.from_array(weight, f"{name}_w"),
                numpy_helper.from_array(bias, f"{name}_b"),
            ]
            nodes.append(
                helper.make_node("Gemm", [current, f"{name}_w", f"{name}_b"], [target], transB=1)
            )
        else:
            nodes.append(helper.make_node("Relu", [current], [target]))
        current = target
    return nodes, inits


def split_part_graph(
    *,
    party: str,
    mean: np.ndarray,
    scale: np.ndarray,
    bottom: nn.Sequential,
    clip_norm: float | None = None,
) -> onnx.ModelProto:
    """One party's part: standardise, then its bottom network; output (batch, cut width).

    A host's part also clips each row to ``clip_norm``, as its released activations were
    clipped in training (the noise is not added at scoring time)."""
    mean = np.asarray(mean, dtype=np.float64).reshape(1, -1)
    scale = np.asarray(scale, dtype=np.float64).reshape(1, -1)
    first = next(m for m in bottom if isinstance(m, nn.Linear))
    last = [m for m in bottom if isinstance(m, nn.Linear)][-1]
    d = mean.shape[1]
    if scale.shape[1] != d or first.in_features != d or not np.all(scale > 0):
        raise ExportError(
            f"part {party!r}: {d} means, {scale.shape[1]} scales and a bottom network of "
            f"{first.in_features} inputs (scales must be > 0)"
        )
    if clip_norm is not None and not (np.isfinite(clip_norm) and clip_norm > 0):
        raise ExportError(f"part {party!r}: clip norm must be > 0, got {clip_norm}")
    raw = PART_OUTPUT if clip_norm is None else "activations"
    nodes, inits = _mlp_nodes(bottom, prefix="bottom", source="standard32", output=raw)
    if clip_norm is not None:
        inits += [
            numpy_helper.from_array(np.array([clip_norm], dtype=np.float32), "clip"),
            numpy_helper.from_array(np.array([1e-12], dtype=np.float32), "tiny"),
            numpy_helper.from_array(np.array([1.0], dtype=np.float32), "one"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        ]
        nodes += [
            helper.make_node("ReduceL2", [raw, "axis1"], ["norm"], keepdims=1),
            helper.make_node("Max", ["norm", "tiny"], ["safe_norm"]),
            helper.make_node("Div", ["clip", "safe_norm"], ["ratio"]),
            helper.make_node("Min", ["ratio", "one"], ["factor"]),
            helper.make_node("Mul", [raw, "factor"], [PART_OUTPUT]),
        ]
    nodes = [
        helper.make_node("Cast", [INPUT_NAME], ["x64"], to=TensorProto.DOUBLE),
        helper.make_node("Sub", ["x64", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "scale"], ["standard"]),
        helper.make_node("Cast", ["standard"], ["standard32"], to=TensorProto.FLOAT),
        *nodes,
    ]
    inits += [numpy_helper.from_array(mean, "mean"), numpy_helper.from_array(scale, "scale")]
    graph = helper.make_graph(
        nodes,
        f"fedrisk-split-nn-part-{party}",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", d])],
        [
            helper.make_tensor_value_info(
                PART_OUTPUT, TensorProto.FLOAT, ["batch", last.out_features]
            )
        ],
        inits,
    )
    return model_proto(graph, {"fedrisk.party": party, "fedrisk.features": str(d)})


def split_combiner_graph(
    *, parties: Sequence[str], cut_width: int, top: nn.Sequential
) -> onnx.ModelProto:
    """The combiner: concatenate the parties' activations (in ``parties`` order), run the
    top network, apply the sigmoid; output (batch, 1) probabilities in float64."""
    if not parties or len(set(parties)) != len(parties):
        raise ExportError(f"a combiner needs distinct party names, got {list(parties)}")
    first = next(m for m in top if isinstance(m, nn.Linear))
    if first.in_features != cut_width * len(parties):
        raise ExportError(
            f"top network reads {first.in_features} activations, not {len(parties)} x {cut_width}"
        )
    body, inits = _mlp_nodes(top, prefix="top", source="joined", output="logit32")
    nodes = [
        helper.make_node("Concat", list(parties), ["joined"], axis=1),
        *body,
        helper.make_node("Cast", ["logit32"], ["logit"], to=TensorProto.DOUBLE),
        helper.make_node("Sigmoid", ["logit"], [OUTPUT_NAME]),
    ]
    graph = helper.make_graph(
        nodes,
        "fedrisk-split-nn-combiner",
        [
            helper.make_tensor_value_info(p, TensorProto.FLOAT, ["batch", cut_width])
            for p in parties
        ],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.DOUBLE, ["batch", 1])],
        inits,
    )
    return model_proto(graph, {"fedrisk.parties": ",".join(parties)})
