"""What every vertical step handler gets: the message, the participant, its state folder,
and the party's aligned rows (shared by the logistic-regression and split-network ops)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from flwr.app import ConfigRecord, ConfigRecordValues, RecordDict

from models import wire
from models.federation import FederationSpec, ParticipantSpec
from models.tabular import TabularData, load_table
from privacy._files import atomic_write_bytes
from privacy.vertical import holdout_split

from .local_data import declared_schema
from .vertical_state import cached_table, part_dir, read_json, write_json

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
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


def table(step: Step) -> TabularData:
    """The participant's whole table (parsed once per process while the file is unchanged).

    Training steps index it by the aligned ids, which passed the consent filter when the
    intersection was computed at the start of the run.
    """
    schema = declared_schema(step.spec, step.participant)
    return cached_table(  # type: ignore[no-any-return]
        step.participant.file,
        lambda: load_table(step.participant.file, schema, require_label=schema.label is not None),
    )


def aligned(step: Step) -> tuple[np.ndarray, np.ndarray | None]:
    """Features (and labels at the guest) of the aligned rows, in sorted-id order.

    Every training step needs them: they are built once per process per run (keyed, like
    the table, by the intersection file's identity). Callers index them, never write them.
    """
    path = step.folder / "aligned.json"
    if not path.exists():
        read_json(path, what="intersection")  # the protocol-order error
    return cached_table(path, lambda: _align(step, path))  # type: ignore[no-any-return]


def _align(step: Step, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    data = table(step)
    ids = read_json(path, what="intersection")["ids"]
    row_of = {str(i).strip(): n for n, i in enumerate(data.ids)}
    rows = np.array([row_of[i] for i in ids], dtype=np.int64)
    labels = None if data.labels is None else data.labels[rows].astype(np.float64)
    return data.features[rows].astype(np.float64), labels


def rows_of(step: Step, which: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Features (and labels at the guest) of the aligned ``"train"`` or ``"holdout"`` rows,
    split the same way on every side."""
    assert step.spec.vertical is not None
    features, labels = aligned(step)
    train, holdout = holdout_split(
        features.shape[0], holdout=step.spec.vertical.holdout, seed=step.spec.seed
    )
    rows = train if which == "train" else holdout
    return features[rows], None if labels is None else labels[rows]


def holdout_metrics(labels: np.ndarray, logits: np.ndarray) -> Info:
    """AUC and log-loss of the joint logits on the holdout rows (the guest computes them)."""
    from sklearn.metrics import log_loss, roc_auc_score

    p = np.clip(1 / (1 + np.exp(-logits)), 1e-7, 1 - 1e-7)
    auc = float(roc_auc_score(labels, logits)) if np.unique(labels).size == 2 else float("nan")
    return {
        "auc": auc,
        "log-loss": float(log_loss(labels, p, labels=[0.0, 1.0])),
        "rows": int(labels.size),
    }


def file_part(step: Step, part: onnx.ModelProto, *, kind: str) -> Reply:
    """File this party's ONNX part of the trained model on its own node; answer its hash
    and the features it reads (the part itself never leaves the node)."""
    body = part.SerializeToString()
    schema = declared_schema(step.spec, step.participant)
    folder = part_dir(step.spec.name, step.participant.name, wire.config_str(step.config, "run-id"))
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "part.onnx", body, mode=0o600)
    digest = hashlib.sha256(body).hexdigest()
    write_json(folder / "part.json", {"sha256": digest, "kind": kind, "schema": schema.to_dict(),
                                      "schema_hash": schema.hash()})  # fmt: skip
    logger.info("filed the %s %s part (%s…) in %s", step.participant.name, kind, digest[:12],
                folder)  # fmt: skip
    return {"sha256": digest, "features": ",".join(schema.feature_names)}, {}
