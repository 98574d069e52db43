"""Moving a network's trainable parameters in and out as NumPy arrays.

Federated rounds ship parameters as a list of arrays (one per tensor, Flower's
``ArrayRecord`` form) or as one flat float64 vector (what CKKS encryption and DP noise
work on). Both directions check shapes first, so a malformed or tampered update is
refused before it touches the model. The order is the network's parameter registration
order, which a wrapper such as Opacus' ``GradSampleModule`` does not change; names are
reported without the wrapper's ``_module.`` prefix.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .errors import ParameterShapeError
from .nets import unwrap_module

__all__ = [
    "arrays_sha256",
    "count_parameters",
    "from_arrays",
    "get_flat",
    "parameter_names",
    "parameter_shapes",
    "plain_state_dict",
    "set_flat",
    "to_arrays",
]

logger = logging.getLogger(__name__)

_WRAPPER_PREFIX = "_module."


def _named(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(_strip(name), param) for name, param in model.named_parameters()]


def _strip(name: str) -> str:
    while name.startswith(_WRAPPER_PREFIX):
        name = name[len(_WRAPPER_PREFIX) :]
    return name


def parameter_names(model: nn.Module) -> list[str]:
    """Parameter names in transfer order, without wrapper prefixes."""
    return [name for name, _ in _named(model)]


def parameter_shapes(model: nn.Module) -> list[tuple[int, ...]]:
    """Parameter shapes in transfer order."""
    return [tuple(param.shape) for _, param in _named(model)]


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters (the length of :func:`get_flat`)."""
    return sum(param.numel() for _, param in _named(model))


def to_arrays(model: nn.Module) -> list[np.ndarray]:
    """Copies of the parameters as float32 arrays, one per tensor, in transfer order."""
    return [
        param.detach().cpu().numpy().astype(np.float32, copy=True) for _, param in _named(model)
    ]


def from_arrays(model: nn.Module, arrays: Sequence[np.ndarray]) -> None:
    """Load parameters from arrays made by :func:`to_arrays` (on this or another node).

    Raises :class:`ParameterShapeError` (a ``ValueError``) if the number of arrays or any
    shape differs from the model's, or if a value is not finite; the model is left
    unchanged in that case.
    """
    named = _named(model)
    if len(arrays) != len(named):
        raise ParameterShapeError(f"expected {len(named)} parameter arrays, got {len(arrays)}")
    checked: list[np.ndarray] = []
    for index, ((name, param), array) in enumerate(zip(named, arrays, strict=True)):
        value = np.asarray(array)
        if tuple(value.shape) != tuple(param.shape):
            raise ParameterShapeError(
                f"parameter {index} ({name!r}): expected shape {tuple(param.shape)}, "
                f"got {tuple(value.shape)}"
            )
        if not np.issubdtype(value.dtype, np.number):
            raise ParameterShapeError(
                f"parameter {index} ({name!r}): expected a numeric array, got dtype {value.dtype}"
            )
        if not np.all(np.isfinite(value)):
            raise ParameterShapeError(f"parameter {index} ({name!r}) holds non-finite values")
        checked.append(value)
    with torch.no_grad():
        for (_, param), value in zip(named, checked, strict=True):
            param.copy_(torch.from_numpy(np.ascontiguousarray(value)).to(param.dtype))


def get_flat(model: nn.Module) -> np.ndarray:
    """All parameters concatenated into one float64 vector, in transfer order."""
    named = _named(model)
    if not named:
        return np.zeros(0, dtype=np.float64)
    return np.concatenate([param.detach().cpu().reshape(-1).double().numpy() for _, param in named])


def set_flat(model: nn.Module, vector: np.ndarray) -> None:
    """Load parameters from a flat vector made by :func:`get_flat`.

    Raises :class:`ParameterShapeError` (a ``ValueError``) naming the expected and actual
    length if the vector does not fit, or if it holds non-finite values.
    """
    flat = np.asarray(vector)
    expected = count_parameters(model)
    if flat.ndim != 1 or flat.shape[0] != expected:
        raise ParameterShapeError(
            f"flat parameter vector: expected length {expected}, got shape {flat.shape}"
        )
    if not np.all(np.isfinite(flat)):
        raise ParameterShapeError("flat parameter vector holds non-finite values")
    offset = 0
    with torch.no_grad():
        for _, param in _named(model):
            size = param.numel()
            piece = flat[offset : offset + size].reshape(tuple(param.shape))
            param.copy_(torch.from_numpy(np.ascontiguousarray(piece)).to(param.dtype))
            offset += size


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of the plain network inside any wrapper, as detached CPU copies."""
    return {
        name: tensor.detach().cpu().clone()
        for name, tensor in unwrap_module(model).state_dict().items()
    }


def arrays_sha256(arrays: Sequence[np.ndarray]) -> str:
    """SHA-256 over the arrays' dtypes, shapes and bytes, in order: a model's identity
    (the same parameters give the same hash on every machine)."""
    digest = hashlib.sha256()
    for array in arrays:
        contiguous = np.ascontiguousarray(array)
        digest.update(f"{contiguous.dtype.str}{contiguous.shape};".encode())
        digest.update(contiguous.tobytes())
    return digest.hexdigest()
