"""ONNX Runtime sessions on the CPU, shaped for how each caller runs them."""

from __future__ import annotations

import onnxruntime as ort

__all__ = ["cpu_session"]


def cpu_session(model: bytes | str, *, threads: int | None = None) -> ort.InferenceSession:
    """A CPU session over ``model`` (serialised bytes or a path).

    ``threads=None`` keeps ONNX Runtime's defaults (a pool as wide as the machine, good for
    scoring a large file); a server answering many small requests passes ``threads=1``:
    its requests are its parallelism, and a single thread that does not spin after each run
    costs about half the CPU per call of the default pool (BENCHMARKS.md, serving).
    """
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
