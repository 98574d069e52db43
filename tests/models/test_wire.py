"""The Flower message vocabulary's typed accessors (models/wire.py)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from models import wire
from models.errors import MessageError, ModelsError


def _config() -> ConfigRecord:
    return ConfigRecord(
        {
            "rounds": 3,
            "rate": 0.5,
            "whole-rate": 2,
            "kind": "mlp",
            "use-dp": True,
            "hidden": [16, 8],
            "empty": [],
            "flag-int": 1,
            "text-int": "3",
            "blob": b"\x00" * 4096,
            "chunks": [b"\x00" * 64, b"\x01" * 64],
            "mixed": [1.5, 2.5],
            "long": "x" * 500,
        }
    )


def _content() -> RecordDict:
    return RecordDict(
        {
            wire.CONFIG: _config(),
            wire.ARRAYS: ArrayRecord([np.zeros(3, dtype=np.float32)]),
            wire.METRICS: MetricRecord({wire.NUM_EXAMPLES: 12, "loss": 0.25}),
        }
    )


# --- records -------------------------------------------------------------------------------


def test_record_accessors_return_the_typed_records() -> None:
    content = _content()

    assert wire.config_of(content)["kind"] == "mlp"
    assert wire.arrays_of(content).to_numpy_ndarrays()[0].shape == (3,)
    assert wire.metrics_of(content)[wire.NUM_EXAMPLES] == 12


def test_record_accessor_takes_another_key() -> None:
    content = RecordDict({wire.INFO: ConfigRecord({"participant": "p1"})})

    assert wire.config_str(wire.config_of(content, wire.INFO), "participant") == "p1"


@pytest.mark.parametrize(
    ("accessor", "key"),
    [(wire.config_of, wire.CONFIG), (wire.arrays_of, wire.ARRAYS), (wire.metrics_of, wire.METRICS)],
)
def test_missing_record_is_refused_naming_the_key(
    accessor: Callable[[RecordDict], object], key: str
) -> None:
    with pytest.raises(MessageError, match=f"no '{key}' record"):
        accessor(RecordDict({}))


def test_record_of_the_wrong_kind_is_refused_naming_key_and_kind() -> None:
    content = RecordDict({wire.ARRAYS: ConfigRecord({"a": 1})})

    with pytest.raises(ValueError, match="'arrays' must be of type ArrayRecord, got ConfigRecord"):
        wire.arrays_of(content)


def test_message_error_is_a_models_error_and_a_value_error() -> None:
    with pytest.raises(MessageError) as excinfo:
        wire.metrics_of(RecordDict({}))

    assert isinstance(excinfo.value, ModelsError)
    assert isinstance(excinfo.value, ValueError)


# --- values --------------------------------------------------------------------------------


def test_config_values_of_the_right_type_are_returned() -> None:
    config = _config()

    assert wire.config_int(config, "rounds") == 3
    assert wire.config_float(config, "rate") == 0.5
    assert wire.config_str(config, "kind") == "mlp"
    assert wire.config_bool(config, "use-dp") is True
    assert wire.config_ints(config, "hidden") == [16, 8]
    assert wire.config_ints(config, "empty") == []


def test_config_float_widens_an_integer() -> None:
    value = wire.config_float(_config(), "whole-rate")

    assert value == 2.0 and isinstance(value, float)


def test_defaults_apply_only_when_the_key_is_absent() -> None:
    config = _config()

    assert wire.config_int(config, "absent", default=7) == 7
    assert wire.config_float(config, "absent", default=1.0) == 1.0
    assert wire.config_str(config, "absent", default="rdp") == "rdp"
    assert wire.config_bool(config, "absent", default=False) is False
    assert wire.config_ints(config, "absent", default=()) == []
    assert wire.config_int(config, "rounds", default=7) == 3


def test_default_does_not_hide_a_value_of_the_wrong_type() -> None:
    with pytest.raises(ValueError, match="'kind'"):
        wire.config_int(_config(), "kind", default=0)


@pytest.mark.parametrize(
    "accessor",
    [wire.config_int, wire.config_float, wire.config_str, wire.config_bool, wire.config_ints],
)
def test_missing_config_value_is_refused_naming_the_key(
    accessor: Callable[[ConfigRecord, str], object],
) -> None:
    with pytest.raises(MessageError, match="ConfigRecord has no 'server-round' value"):
        accessor(_config(), "server-round")


@pytest.mark.parametrize(
    ("accessor", "key", "shown"),
    [
        (wire.config_int, "text-int", "'3' (str)"),
        (wire.config_int, "use-dp", "True (bool)"),
        (wire.config_int, "rate", "0.5 (float)"),
        (wire.config_float, "kind", "'mlp' (str)"),
        (wire.config_float, "use-dp", "True (bool)"),
        (wire.config_str, "rounds", "3 (int)"),
        (wire.config_bool, "flag-int", "1 (int)"),
        (wire.config_ints, "mixed", "[1.5, 2.5] (list)"),
        (wire.config_ints, "kind", "'mlp' (str)"),
    ],
)
def test_config_value_of_the_wrong_type_is_refused_naming_key_and_value(
    accessor: Callable[[ConfigRecord, str], object], key: str, shown: str
) -> None:
    with pytest.raises(MessageError) as excinfo:
        accessor(_config(), key)

    assert f"'{key}'" in str(excinfo.value)
    assert str(excinfo.value).endswith(shown)


def test_bytes_are_shown_only_by_size() -> None:
    with pytest.raises(MessageError) as single:
        wire.config_str(_config(), "blob")
    with pytest.raises(MessageError) as listed:
        wire.config_ints(_config(), "chunks")

    assert str(single.value).endswith("got 4096 bytes")
    assert str(listed.value).endswith("got a list of 2 bytes values")
    assert "\\x00" not in str(single.value) + str(listed.value)


def test_long_values_are_cut_short() -> None:
    with pytest.raises(MessageError) as excinfo:
        wire.config_int(_config(), "long")

    assert len(str(excinfo.value)) < 120 and "…" in str(excinfo.value)


def test_metric_values_are_returned_and_widened() -> None:
    metrics = MetricRecord({wire.NUM_EXAMPLES: 12, "loss": 0.25})

    assert wire.metric_int(metrics, wire.NUM_EXAMPLES) == 12
    assert wire.metric_float(metrics, "loss") == 0.25
    assert wire.metric_float(metrics, wire.NUM_EXAMPLES) == 12.0
    assert wire.metric_int(metrics, "absent", default=0) == 0


def test_metric_missing_or_of_the_wrong_type_is_refused_naming_the_key() -> None:
    metrics = MetricRecord({"loss": 0.25, "sizes": [1, 2]})

    with pytest.raises(MessageError, match="MetricRecord has no 'rows-used' value"):
        wire.metric_int(metrics, "rows-used")
    with pytest.raises(MessageError, match=r"'loss' must be an integer, got 0\.25 \(float\)"):
        wire.metric_int(metrics, "loss")
    with pytest.raises(MessageError, match=r"'sizes' must be a number, got \[1, 2\] \(list\)"):
        wire.metric_float(metrics, "sizes")
