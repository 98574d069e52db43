"""Round orchestration over an in-process grid: robustness, privacy modes, refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from flwr.app import ArrayRecord, Context, Message

from coordinator.handshake import FederationAbortedError
from coordinator.rounds import FederationResult, run_federation
from models import wire
from models.federation import FederationSpec, load_federation
from models.layout import secret_key_path
from models.parameters import to_arrays
from participants.cli import ensure_keys
from participants.client_app import make_client_app
from tests.support.builders import make_federation
from tests.support.local_grid import LocalGrid


class _Quiet:
    def print(self, *args: object, **kwargs: object) -> None:
        pass


def _run(spec: FederationSpec, *mods: object) -> FederationResult:
    ensure_keys(spec, console=_Quiet())  # type: ignore[arg-type]
    grid = LocalGrid(
        make_client_app(spec.path, extra_mods=list(mods)), n_nodes=len(spec.participants)
    )  # type: ignore[arg-type]
    return run_federation(grid, spec, connect_timeout_s=5)


def _corrupt(participant: str, how: str):  # type: ignore[no-untyped-def]
    """A mod that damages one participant's outgoing plain update."""

    def mod(msg: Message, context: Context, call_next):  # type: ignore[no-untyped-def]
        reply = call_next(msg, context)
        is_train = msg.metadata.message_type == wire.TRAIN
        if not is_train or reply.has_error() or wire.ARRAYS not in reply.content:
            return reply
        if reply.content[wire.INFO]["participant"] != participant:
            return reply
        arrays = reply.content[wire.ARRAYS].to_numpy_ndarrays()
        if how == "shape":
            arrays = [np.zeros((3, 3), dtype=np.float32)]
        elif how == "nan":
            arrays[0] = np.full_like(arrays[0], np.nan)
        reply.content[wire.ARRAYS] = ArrayRecord(arrays)
        return reply

    return mod


def test_plain_federation_trains_and_reports(tmp_path: Path) -> None:
    spec = load_federation(make_federation(tmp_path, privacy="none", rounds=3))

    result = _run(spec)

    report = result.report
    assert [r.status for r in report.rounds] == ["ok", "ok", "ok"]
    assert report.rounds[-1].contributors == ["p1", "p2", "p3"]
    assert report.final["auc"] > 0.75
    assert report.privacy_mode == "none" and report.warnings


def test_he_aggregate_equals_plain_aggregate(tmp_path: Path) -> None:
    plain = _run(load_federation(make_federation(tmp_path / "a", privacy="none")))
    encrypted = _run(load_federation(make_federation(tmp_path / "b", privacy="he")))

    for a, b in zip(to_arrays(plain.model), to_arrays(encrypted.model), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert encrypted.report.strategy == "encrypted-fedavg"


@pytest.mark.parametrize("how", ["shape", "nan"])
def test_malformed_update_is_rejected_and_round_goes_on(tmp_path: Path, how: str) -> None:
    spec = load_federation(make_federation(tmp_path, privacy="none"))

    result = _run(spec, _corrupt("p2", how))

    for record in result.report.rounds:
        assert record.status == "ok"
        assert record.contributors == ["p1", "p3"]
        assert "p2" in record.rejected


def test_round_fails_cleanly_and_keeps_last_good_model(tmp_path: Path) -> None:
    spec = load_federation(make_federation(tmp_path, privacy="none", min_participants=3, rounds=2))
    plain = _run(load_federation(make_federation(tmp_path / "ref", privacy="none", rounds=1)))

    result = _run(spec, _corrupt("p2", "nan"))

    assert [r.status for r in result.report.rounds] == ["failed", "failed"]
    assert "fewer than min_participants=3" in (result.report.rounds[0].failure or "")
    # the model kept is the initial one, not the one a bad round would have produced
    assert not np.allclose(to_arrays(result.model)[0], to_arrays(plain.model)[0])


def test_update_under_another_key_set_is_rejected(tmp_path: Path) -> None:
    spec = load_federation(make_federation(tmp_path, privacy="he", rounds=1))
    ensure_keys(spec, console=_Quiet())  # type: ignore[arg-type]
    other = load_federation(make_federation(tmp_path / "other", privacy="he", rounds=1))
    ensure_keys(other, console=_Quiet())  # type: ignore[arg-type]
    swapped = {"done": False}

    def swap_key_after_handshake(msg: Message, context: Context, call_next):  # type: ignore[no-untyped-def]
        if msg.metadata.message_type == wire.TRAIN and not swapped["done"]:
            shutil.copy(secret_key_path(other, "p3"), secret_key_path(spec, "p3"))
            swapped["done"] = True
        return call_next(msg, context)

    result = _run(spec, swap_key_after_handshake)

    record = result.report.rounds[0]
    assert record.status == "ok"
    assert "p3" in record.rejected and "key set" in record.rejected["p3"]
    assert record.contributors == ["p1", "p2"]


def test_participant_with_other_key_set_is_refused_before_round_one(tmp_path: Path) -> None:
    spec = load_federation(make_federation(tmp_path, privacy="he", rounds=1))
    ensure_keys(spec, console=_Quiet())  # type: ignore[arg-type]
    other = load_federation(make_federation(tmp_path / "other", privacy="he", rounds=1))
    ensure_keys(other, console=_Quiet())  # type: ignore[arg-type]
    shutil.copy(secret_key_path(other, "p2"), secret_key_path(spec, "p2"))

    result = _run(spec)

    refused = {p.name: p.reason for p in result.report.participants if not p.accepted}
    assert "p2" in refused and "key set" in (refused["p2"] or "")
    assert result.report.rounds[0].contributors == ["p1", "p3"]


def _malformed_handshake(participant: str):  # type: ignore[no-untyped-def]
    """A mod that makes one participant report a row count that is not an integer."""

    def mod(msg: Message, context: Context, call_next):  # type: ignore[no-untyped-def]
        reply = call_next(msg, context)
        is_handshake = msg.metadata.message_type == wire.HANDSHAKE
        if is_handshake and reply.content[wire.INFO]["participant"] == participant:
            reply.content[wire.METRICS]["rows-used"] = 2.5
        return reply

    return mod


def test_malformed_handshake_reply_is_refused_and_the_others_go_on(tmp_path: Path) -> None:
    spec = load_federation(make_federation(tmp_path, privacy="none", rounds=1))

    result = _run(spec, _malformed_handshake("p2"))

    refused = {p.name: p.reason or "" for p in result.report.participants if not p.accepted}
    assert "'rows-used' must be an integer, got 2.5" in refused["p2"]
    assert result.report.rounds[0].contributors == ["p1", "p3"]


def test_schema_mismatch_is_refused_naming_the_participant(tmp_path: Path) -> None:
    path = make_federation(tmp_path, privacy="none", rounds=1, min_participants=3)
    text = path.read_text().replace(
        'name = "p2"\nfile = "p2.csv"\n',
        'name = "p2"\nfile = "p2.csv"\nschema = { id = "id", label = "y", features = ['
        '{ name = "x0", type = "float" }, { name = "x1", type = "float" } ] }\n',
    )
    path.write_text(text)
    spec = load_federation(path)

    with pytest.raises(FederationAbortedError, match="p2"):
        _run(spec)


def test_malformed_csv_names_file_row_and_column(tmp_path: Path) -> None:
    path = make_federation(tmp_path, privacy="none", rounds=1, min_participants=3)
    csv = tmp_path / "p3.csv"
    lines = csv.read_text().splitlines()
    cells = lines[5].split(",")
    cells[3] = "abc"
    lines[5] = ",".join(cells)
    csv.write_text("\n".join(lines) + "\n")

    with pytest.raises(FederationAbortedError) as excinfo:
        _run(load_federation(path))

    message = str(excinfo.value)
    assert "p3.csv" in message and "row 6" in message and "x1" in message


def test_dp_reports_epsilon_per_participant_and_round(tmp_path: Path) -> None:
    spec = load_federation(make_federation(tmp_path, privacy="dp", rounds=3))

    result = _run(spec)

    eps = [r.epsilon for r in result.report.rounds]
    for name in ("p1", "p2", "p3"):
        series = [e[name] for e in eps]
        assert series == sorted(series) and series[0] > 0
        assert series[-1] == pytest.approx(3.0, rel=0.1)
    used = result.report.privacy["dp"]["used"]
    assert set(used) == {"p1", "p2", "p3"}
    assert all(u["noise_multiplier"] > 0 and 0 < u["sample_rate"] <= 1 for u in used.values())


def test_dp_budget_refuses_rounds_once_spent(tmp_path: Path) -> None:
    dp = (
        "[privacy.dp]\ntarget_epsilon = 2.0\ndelta = 1e-5\nmax_grad_norm = 1.0\n"
        "budget_epsilon = 2.5\n"
    )
    path = make_federation(tmp_path, privacy="dp", rounds=2, dp=dp)
    first = _run(load_federation(path))
    assert all(r.status == "ok" for r in first.report.rounds)

    second = _run(load_federation(path))

    assert second.report.rounds[-1].status == "failed"
    reasons = " ".join(second.report.rounds[-1].rejected.values())
    assert "budget" in reasons


def _run_on(spec: FederationSpec, *mods: object) -> tuple[FederationResult, LocalGrid]:
    ensure_keys(spec, console=_Quiet())  # type: ignore[arg-type]
    grid = LocalGrid(
        make_client_app(spec.path, extra_mods=list(mods)), n_nodes=len(spec.participants)
    )  # type: ignore[arg-type]
    return run_federation(grid, spec, connect_timeout_s=5), grid


def test_ckks_aggregates_are_opened_by_participants_not_by_extra_round_trips(
    tmp_path: Path,
) -> None:
    spec = load_federation(make_federation(tmp_path, privacy="he", rounds=3))

    result, grid = _run_on(spec)

    # Rounds 1-2 are opened from the next train message; only the last needs a round trip.
    assert grid.sent.count(wire.DECRYPT) == 1
    assert [r.status for r in result.report.rounds] == ["ok", "ok", "ok"]
    assert all(r.auc is not None for r in result.report.rounds)


def _drop_returned_model(msg: Message, context: Context, call_next):  # type: ignore[no-untyped-def]
    reply = call_next(msg, context)
    if not reply.has_error() and wire.AGGREGATE in reply.content:
        del reply.content[wire.AGGREGATE]
    return reply


def test_missing_returned_model_falls_back_to_a_decryption_round_trip(tmp_path: Path) -> None:
    plain = _run(load_federation(make_federation(tmp_path / "a", privacy="none", rounds=3)))
    spec = load_federation(make_federation(tmp_path / "b", privacy="he", rounds=3))

    result, grid = _run_on(spec, _drop_returned_model)

    assert grid.sent.count(wire.DECRYPT) == 3
    for a, b in zip(to_arrays(plain.model), to_arrays(result.model), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def _claim_one_contributor(msg: Message, context: Context, call_next):  # type: ignore[no-untyped-def]
    if wire.ENCRYPTED in msg.content and msg.metadata.message_type == wire.TRAIN:
        msg.content[wire.CONFIG]["aggregate-contributors"] = 1
    return call_next(msg, context)


def test_participants_refuse_to_open_an_aggregate_of_too_few_updates(tmp_path: Path) -> None:
    spec = load_federation(make_federation(tmp_path, privacy="he", rounds=2))

    result, _ = _run_on(spec, _claim_one_contributor)

    second = result.report.rounds[1]
    assert second.status == "failed"
    assert all("cannot open the aggregate" in reason for reason in second.rejected.values())
