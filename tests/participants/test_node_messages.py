"""What a factory node sends during federated training: model-shaped updates and aggregate
numbers, never its raw series or its indicator rows (DESIGN.md, "IoT risk").

A tiny demo scenario's IoT federation runs in process (the coordinator's rounds and the
participants' ClientApp for real, over tests/support/local_grid.py). A client mod outside
every other mod records each reply the node sends, and an audit checks every record of
every reply: arrays have the model's parameter shapes (or are ciphertext bytes), metrics
are scalars from a known list, configs are identities and hashes, and none of the node's
distinctive raw readings or indicator values appears in any value or in the serialized
bytes of the message.
"""

from __future__ import annotations

import atexit
import json
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord
from flwr.common.serde import message_to_proto

from coordinator.rounds import FederationResult, run_federation
from models import wire
from models.federation import FederationSpec, load_federation
from models.parameters import to_arrays
from participants.cli import ensure_keys
from participants.client_app import make_client_app
from participants.demo import ScenarioManifest, write_iot_federation
from tests.participants.test_demo_support import tiny_scenario
from tests.support.local_grid import LocalGrid

RAW_SERIES = (
    ("electricity_15min", "kwh"),
    ("utilities_hourly", "water_m3"),
    ("climate_hourly", "temperature_c"),
    ("mes_daily", "units_produced"),
    ("erp_orders", "amount_cny"),
)
METRICS = {
    "num-examples",
    "train-loss",
    "steps",
    "rows-total",
    "rows-used",
    "epsilon",
    "noise-multiplier",
    "sample-rate",
}
CONFIGS = {
    "participant",
    "schema",
    "schema-hash",
    "fingerprint",
    "data-commitment",
    "server-round",
    "run-id",
}
HEX = re.compile(r"[0-9a-f]*")
ENCRYPTED_META = {"length", "fingerprint", "check_value", "chunks", "layout"}


class _Quiet:
    def print(self, *args: object, **kwargs: object) -> None:
        pass


@dataclass(frozen=True)
class Sent:
    """One reply a node sent: to which request, from which participant."""

    request: str
    participant: str
    reply: Message


@dataclass(frozen=True)
class NodeSecrets:
    """A factory node's distinctive raw readings and indicator values."""

    numbers: np.ndarray  # float64
    texts: tuple[str, ...]
    rows: int


@dataclass
class Federation:
    spec: FederationSpec
    result: FederationResult
    sent: list[Sent] = field(default_factory=list)


@cache
def _scenario() -> ScenarioManifest:
    root = Path(tempfile.mkdtemp(prefix="fedrisk-messages-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return tiny_scenario(root / "scenario", seed=11)


def _distinctive(values: np.ndarray) -> dict[float, str]:
    """Values of six or more printed characters that cannot be mistaken for a setting or a
    count (no trailing zero, at least 10), each with the text a file shows for it."""
    out = {}
    for value in np.unique(values[np.isfinite(values)]):
        text = str(int(value)) if value == int(value) else f"{value:.2f}"
        if abs(value) >= 10 and len(text) >= 6 and not text.endswith("0"):
            out[float(value)] = text
    return out


@cache
def _secrets(node_dir: Path) -> NodeSecrets:
    numbers: list[float] = []
    texts: list[str] = []
    for table, column in RAW_SERIES:
        raw = pq.read_table(node_dir / "raw" / f"{table}.parquet").column(column)
        found = list(_distinctive(raw.to_numpy().astype(np.float64)).items())
        found = found[:: max(1, len(found) // 300)]  # spread over the whole range
        numbers += [value for value, _ in found]
        texts += [text for _, text in found[:: max(1, len(found) // 60)]]
    indicators = pd.read_csv(node_dir / "indicators.csv", dtype=str)
    features = indicators.drop(columns=["row_id", "firm_id", "month", "label"])
    cells = [c for c in features.to_numpy().ravel() if len(c.lstrip("-").replace(".", "")) >= 6]
    texts += cells[:200]
    numbers += [float(c) for c in cells if abs(float(c)) >= 10]
    assert len(numbers) > 100 and len(texts) > 100, "too few distinctive values to search for"
    return NodeSecrets(np.array(numbers), tuple(sorted(set(texts))), len(indicators))


def _recorder(spec: FederationSpec, sent: list[Sent]) -> Callable[..., Message]:
    def record(msg: Message, context: Context, call_next: Callable[..., Message]) -> Message:
        reply = call_next(msg, context)
        who = spec.participants[int(context.node_config["partition-id"])].name
        sent.append(Sent(msg.metadata.message_type, who, reply))
        return reply

    return record


def _federate(root: Path, privacy: str, *extra: Callable[..., Message]) -> Federation:
    path = write_iot_federation(
        _scenario(), root / "iot.toml", privacy=privacy, rounds=2, min_participants=2
    )
    spec = load_federation(path)
    ensure_keys(spec, console=_Quiet())  # type: ignore[arg-type]
    sent: list[Sent] = []
    app = make_client_app(spec.path, extra_mods=[_recorder(spec, sent), *extra])
    result = run_federation(
        LocalGrid(app, n_nodes=len(spec.participants)), spec, connect_timeout_s=5
    )
    return Federation(spec=spec, result=result, sent=sent)


# --- the audit --------------------------------------------------------------------------


def _arrays_findings(name: str, record: ArrayRecord, shapes: list[tuple[int, ...]]) -> list[str]:
    arrays = {key: record[key].numpy() for key in record}
    if name == wire.ENCRYPTED:
        meta = json.loads(arrays.pop("meta").tobytes().decode())
        bad = [k for k, a in arrays.items() if a.dtype != np.uint8 or a.ndim != 1]
        out = [f"{name}: ciphertext {k} is not bytes" for k in bad]
        if set(meta) != ENCRYPTED_META or meta["length"] != sum(int(np.prod(s)) for s in shapes):
            out.append(f"{name}: metadata {meta} is not an update's")
        if sorted(arrays) != [f"chunk-{i:04d}" for i in range(meta["chunks"])]:
            out.append(f"{name}: holds {sorted(arrays)}")
        return out
    got = [a.shape for a in arrays.values()]
    flat = [(sum(int(np.prod(s)) for s in shapes),)]
    if got not in (shapes, flat):
        return [f"{name}: shapes {got} are not the model's {shapes}"]
    return []


def _scalar_findings(reply: Message, secrets: NodeSecrets) -> list[str]:
    out = []
    for name, record in reply.content.items():
        if isinstance(record, MetricRecord):
            for key, value in record.items():
                if key not in METRICS and not key.startswith("excluded."):
                    out.append(f"{name}: unexpected metric {key!r}")
                if not isinstance(value, int | float):
                    out.append(f"{name}: metric {key!r} is not a scalar: {type(value).__name__}")
                elif (key.startswith("rows") or key == "num-examples") and not (
                    0 <= value <= secrets.rows
                ):
                    out.append(f"{name}: count {key}={value} exceeds the node's rows")
        elif isinstance(record, ConfigRecord):
            for key, setting in record.items():
                if key not in CONFIGS:
                    out.append(f"{name}: unexpected config {key!r}")
                elif key.endswith(("hash", "commitment", "fingerprint")) and not (
                    isinstance(setting, str) and HEX.fullmatch(setting)
                ):
                    out.append(f"{name}: {key} is not a hash: {setting!r}")
                elif key == "schema" and not _is_a_schema(str(setting)):
                    out.append(f"{name}: schema is not a declared schema: {str(setting)[:80]!r}")
    return out


def _is_a_schema(text: str) -> bool:
    """Whether ``text`` is a declared schema and nothing else: names, types and ranges."""
    schema = json.loads(text)
    features = schema.get("features", [])
    return set(schema) <= {"id", "label", "features"} and all(
        set(f) <= {"name", "type", "min", "max", "levels"} for f in features
    )


def _leak_findings(reply: Message, secrets: NodeSecrets) -> list[str]:
    """Raw or indicator values in any plain number, array or the message's bytes."""
    out = []
    plain: list[np.ndarray] = []
    for name, record in reply.content.items():
        if isinstance(record, ArrayRecord) and name != wire.ENCRYPTED:
            plain += [record[key].numpy().astype(np.float64).ravel() for key in record]
        elif isinstance(record, MetricRecord):
            plain += [np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in record.values()]
    numbers = np.concatenate(plain) if plain else np.zeros(0)
    as_float32 = secrets.numbers.astype(np.float32)
    for found in (
        np.isin(numbers, secrets.numbers),
        np.isin(numbers.astype(np.float32), as_float32),
    ):
        if found.any():
            out.append(f"value {numbers[found][0]!r} of the node's data is in the message")
    data = message_to_proto(reply).SerializeToString()
    for text in secrets.texts:
        if text.encode() in data:
            out.append(f"text {text!r} of the node's data is in the message's bytes")
    for value in secrets.numbers[:: max(1, len(secrets.numbers) // 300)]:
        if np.float64(value).tobytes() in data:
            out.append(f"float64 {value!r} of the node's data is in the message's bytes")
    return out


def audit(federation: Federation) -> list[str]:
    """Every finding, prefixed by participant and request; empty when nothing leaks."""
    assert federation.result.model is not None
    shapes = [a.shape for a in to_arrays(federation.result.model)]
    root = _scenario().root
    findings = []
    for sent in federation.sent:
        secrets = _secrets(root / sent.participant)
        where = f"{sent.participant} {sent.request}"
        if sent.reply.has_error():
            reason = sent.reply.error.reason or ""
            findings += [f"{where}: error echoes {t!r}" for t in secrets.texts if t in reason]
            continue
        for name, record in sent.reply.content.items():
            if name not in {wire.INFO, wire.METRICS, wire.ARRAYS, wire.ENCRYPTED, wire.AGGREGATE}:
                findings.append(f"{where}: unexpected record {name!r}")
            elif isinstance(record, ArrayRecord):
                findings += [f"{where}: {f}" for f in _arrays_findings(name, record, shapes)]
        findings += [f"{where}: {f}" for f in _scalar_findings(sent.reply, secrets)]
        findings += [f"{where}: {f}" for f in _leak_findings(sent.reply, secrets)]
    return findings


# --- the tests --------------------------------------------------------------------------


@pytest.mark.parametrize("privacy", ["none", "dp", "dp+he"])
def test_every_message_a_factory_node_sends_carries_no_raw_series(
    tmp_path: Path, privacy: str
) -> None:
    # Act
    federation = _federate(tmp_path, privacy)

    # Assert: the run was real, every node spoke, and nothing it said leaks.
    assert [r.status for r in federation.result.report.rounds] == ["ok", "ok"]
    requests = {(s.participant, s.request) for s in federation.sent}
    assert {p for p, _ in requests} == {"factory-01", "factory-02"}
    assert {r for _, r in requests} >= {wire.HANDSHAKE, wire.TRAIN}
    assert not any(s.reply.has_error() for s in federation.sent)
    if "he" in privacy:
        assert all(
            wire.ENCRYPTED in s.reply.content and wire.ARRAYS not in s.reply.content
            for s in federation.sent
            if s.request == wire.TRAIN
        )
    assert audit(federation) == []


def _leaking(node_dir: Path) -> Callable[..., Message]:
    """A faulty first node: appends a few of its raw kWh readings to its training replies."""
    kwh = pq.read_table(node_dir / "raw" / "electricity_15min.parquet").column("kwh")
    readings = np.array(list(_distinctive(kwh.to_numpy().astype(np.float64)))[:3])

    def leak(msg: Message, context: Context, call_next: Callable[..., Message]) -> Message:
        reply = call_next(msg, context)
        first = int(context.node_config["partition-id"]) == 0
        if first and msg.metadata.message_type == wire.TRAIN and not reply.has_error():
            reply.content["debug"] = ArrayRecord({"kwh": Array(readings.astype(np.float32))})
            metrics = reply.content[wire.METRICS]
            assert isinstance(metrics, MetricRecord)
            metrics["peak-kwh"] = float(readings[0])
        return reply

    return leak


def test_the_audit_catches_a_node_that_sends_raw_readings(tmp_path: Path) -> None:
    federation = _federate(tmp_path, "dp", _leaking(_scenario().root / "factory-01"))

    findings = audit(federation)

    assert any("unexpected record 'debug'" in f for f in findings)
    assert any("unexpected metric 'peak-kwh'" in f for f in findings)
    assert any("of the node's data is in the message" in f for f in findings)
    assert all(f.startswith("factory-01 train") for f in findings)
