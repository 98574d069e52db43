"""The Flower message vocabulary that the coordinator and the participants share.

Coordinator and participants never import each other (DESIGN.md): they talk through Flower
messages only, so the names of message types and record keys live here, below both, with the typed
accessors both sides use to read a received message.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from .errors import MessageError

#: Before round 1: each participant reports its schema, row counts and key fingerprint.
HANDSHAKE: Final = "query.handshake"
#: One round of local training.
TRAIN: Final = "train"
#: Ask the key holder to decrypt an aggregate (CKKS modes only).
DECRYPT: Final = "query.decrypt"
#: One step of a vertical federation's protocol (PSI, vertical LR); the config's "op" names it.
VERTICAL: Final = "query.vertical"

#: Plain model parameters (global model going out, or a plain update coming back).
ARRAYS: Final = "arrays"
#: Round configuration sent by the coordinator.
CONFIG: Final = "config"
#: Numbers a participant reports (row counts, epsilon, loss): counts and aggregates only.
METRICS: Final = "metrics"
#: A CKKS-encrypted update (chunks of ciphertext bytes + fingerprint + length).
ENCRYPTED: Final = "encrypted"
#: Descriptive answers (schema JSON, participant name, refusal reasons).
INFO: Final = "info"
#: Named byte strings and float vectors of a vertical protocol step (ciphertexts, logits).
PAYLOAD: Final = "payload"
#: The decrypted global model a participant returns when the round's config asks for it.
AGGREGATE: Final = "aggregate"

#: Metric key holding the number of training examples a reply stands for.
NUM_EXAMPLES: Final = "num-examples"
#: Config keys of a train message, echoed in the reply's info record: the round and the
#: training run it answers (a reply naming another is a stale update).
SERVER_ROUND: Final = "server-round"
RUN_ID: Final = "run-id"


# --- Typed accessors -----------------------------------------------------------------------
# A received message is untrusted input: each accessor checks the record or value it returns
# and refuses anything else with a MessageError (a ValueError) naming the key and what it got.

#: How much of a bad value an error message shows.
_SHOW_CHARS = 60

_Record = TypeVar("_Record", ArrayRecord, ConfigRecord, MetricRecord)
_T = TypeVar("_T")


def config_of(content: RecordDict, key: str = CONFIG) -> ConfigRecord:
    """The ``ConfigRecord`` under ``key`` (the round configuration by default)."""
    return _record(content, key, ConfigRecord)


def arrays_of(content: RecordDict, key: str = ARRAYS) -> ArrayRecord:
    """The ``ArrayRecord`` under ``key`` (the model parameters by default)."""
    return _record(content, key, ArrayRecord)


def metrics_of(content: RecordDict, key: str = METRICS) -> MetricRecord:
    """The ``MetricRecord`` under ``key`` (the participant's reported numbers by default)."""
    return _record(content, key, MetricRecord)


def config_int(record: ConfigRecord, key: str, *, default: int | None = None) -> int:
    """An integer config value (a bool is not an integer here)."""
    return _value(record, key, default, _as_int, "an integer")


def config_float(record: ConfigRecord, key: str, *, default: float | None = None) -> float:
    """A real config value; an integer is accepted and widened."""
    return _value(record, key, default, _as_float, "a number")


def config_str(record: ConfigRecord, key: str, *, default: str | None = None) -> str:
    """A string config value."""
    return _value(record, key, default, _as_str, "a string")


def config_bool(record: ConfigRecord, key: str, *, default: bool | None = None) -> bool:
    """A boolean config value (0 and 1 are not booleans here)."""
    return _value(record, key, default, _as_bool, "a boolean")


def config_ints(
    record: ConfigRecord, key: str, *, default: Sequence[int] | None = None
) -> list[int]:
    """A list of integers (an empty list included)."""
    fallback = None if default is None else list(default)
    return _value(record, key, fallback, _as_ints, "a list of integers")


def config_floats(
    record: ConfigRecord, key: str, *, default: Sequence[float] | None = None
) -> list[float]:
    """A list of finite numbers (an empty list included); integers are widened."""
    fallback = None if default is None else [float(v) for v in default]
    return _value(record, key, fallback, _as_floats, "a list of finite numbers")


def metric_int(record: MetricRecord, key: str, *, default: int | None = None) -> int:
    """An integer metric (a count)."""
    return _value(record, key, default, _as_int, "an integer")


def metric_float(record: MetricRecord, key: str, *, default: float | None = None) -> float:
    """A real metric; an integer is accepted and widened."""
    return _value(record, key, default, _as_float, "a number")


def _record(content: RecordDict, key: str, kind: type[_Record]) -> _Record:
    if key not in content:
        raise MessageError(f"message has no {key!r} record")
    record = content[key]
    if not isinstance(record, kind):
        raise MessageError(
            f"record {key!r} must be of type {kind.__name__}, got {type(record).__name__}"
        )
    return record


def _value(
    record: ConfigRecord | MetricRecord,
    key: str,
    default: _T | None,
    convert: Callable[[object], _T | None],
    expected: str,
) -> _T:
    if key not in record:
        if default is None:
            raise MessageError(f"{type(record).__name__} has no {key!r} value")
        return default
    value = record[key]
    converted = convert(value)
    if converted is None:
        raise MessageError(f"{key!r} must be {expected}, got {_show(value)}")
    return converted


def _as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _as_float(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _as_bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _as_ints(value: object) -> list[int] | None:
    if isinstance(value, list) and all(_as_int(v) is not None for v in value):
        return list(value)
    return None


def _as_floats(value: object) -> list[float] | None:
    if not isinstance(value, list):
        return None
    floats = [_as_float(v) for v in value]
    if any(f is None or not math.isfinite(f) for f in floats):
        return None
    return [float(f) for f in floats if f is not None]


def _show(value: object) -> str:
    """The bad value for an error message, kept short; bytes (ciphertexts) only by size."""
    if isinstance(value, bytes):
        return f"{len(value)} bytes"
    if isinstance(value, list) and any(isinstance(v, bytes) for v in value):
        return f"a list of {len(value)} bytes values"
    text = repr(value)
    if len(text) > _SHOW_CHARS:
        text = text[: _SHOW_CHARS - 1] + "…"
    return f"{text} ({type(value).__name__})"


# --- Vertical payloads -------------------------------------------------------------------


def payload_record(items: dict[str, bytes | np.ndarray]) -> ArrayRecord:
    """Byte strings (as uint8 arrays) and float vectors (as float64 arrays), by name."""
    arrays = {}
    for name, value in items.items():
        if isinstance(value, bytes | bytearray):
            arrays[name] = Array(np.frombuffer(bytes(value), dtype=np.uint8))
        else:
            arrays[name] = Array(np.ascontiguousarray(value, dtype=np.float64))
    return ArrayRecord(arrays)


def payload_bytes(content: RecordDict, name: str) -> bytes:
    """A byte string of a :func:`payload_record`; anything else is a MessageError."""
    array = _payload_item(content, name)
    if array.dtype != np.uint8 or array.ndim != 1:
        raise MessageError(
            f"payload {name!r} must be a byte string, got {array.dtype} {array.shape}"
        )
    return array.tobytes()


def payload_vector(content: RecordDict, name: str, *, size: int | None = None) -> np.ndarray:
    """A finite float vector of a :func:`payload_record` (of ``size`` values if given)."""
    array = _payload_item(content, name)
    if array.dtype != np.float64 or array.ndim != 1 or not np.all(np.isfinite(array)):
        raise MessageError(f"payload {name!r} must be a finite float vector")
    if size is not None and array.size != size:
        raise MessageError(f"payload {name!r} holds {array.size} values, expected {size}")
    return array


def _payload_item(content: RecordDict, name: str) -> np.ndarray:
    record = _record(content, PAYLOAD, ArrayRecord)
    if name not in record:
        raise MessageError(f"payload lacks {name!r}")
    return record[name].numpy()


# --- Model shapes ------------------------------------------------------------------------


def encode_shapes(shapes: Sequence[Sequence[int]]) -> list[int]:
    """Array shapes as one flat int list for a ConfigRecord: ndim, then dims, per array."""
    out: list[int] = []
    for shape in shapes:
        out += [len(shape), *(int(d) for d in shape)]
    return out


def decode_shapes(values: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """The inverse of :func:`encode_shapes`; a malformed list is a MessageError."""
    shapes, i = [], 0
    while i < len(values):
        ndim = values[i]
        dims = tuple(values[i + 1 : i + 1 + ndim])
        if ndim < 0 or len(dims) != ndim or any(d < 0 for d in dims):
            raise MessageError(f"malformed model shapes {list(values)[:12]}")
        shapes.append(dims)
        i += 1 + ndim
    if not shapes:
        raise MessageError("no model shapes")
    return tuple(shapes)


def unflatten(flat: np.ndarray, shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    """A flat vector cut into arrays of ``shapes`` (its length must match exactly)."""
    sizes = [int(np.prod(s)) for s in shapes]
    if flat.ndim != 1 or flat.size != sum(sizes):
        raise MessageError(f"expected {sum(sizes)} values for the model, got {flat.size}")
    arrays, offset = [], 0
    for shape, size in zip(shapes, sizes, strict=True):
        arrays.append(flat[offset : offset + size].reshape(shape))
        offset += size
    return arrays
