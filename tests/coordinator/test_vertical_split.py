"""A vertical split network end to end over an in-process grid: training, DP, parts, refusals."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flwr.app import Message
from sklearn.metrics import roc_auc_score

from coordinator.publish import publish
from coordinator.rounds import FederationResult
from coordinator.vertical import run_vertical
from models.errors import FederationFileError
from models.federation import FederationSpec, load_federation
from models.vertical_parts import combine, score_parts
from participants.client_app import make_client_app
from participants.vertical_state import part_dir
from privacy.dp.accounting import epsilon_for
from privacy.dp.events import DPEvent
from privacy.vertical import holdout_split
from tests.support.local_grid import LocalGrid

N = 2_000


def _write_parties(folder: Path) -> None:
    """The label is an interaction of a guest and a host feature (no linear model fits);
    guest rows 0..1949, host rows 50..1999: 1 900 shared subjects."""
    rng = np.random.default_rng(0)
    xg, xh = rng.normal(size=(N, 3)), rng.normal(size=(N, 3))
    logit = 2.5 * np.sign(xg[:, 0] * xh[:, 0]) + 0.5 * xg[:, 1]
    y = (rng.random(N) < 1 / (1 + np.exp(-logit))).astype(int)
    ids = [f"C{100000 + i}" for i in range(N)]
    guest = pd.DataFrame({"cid": ids, "default": y, **{f"g{j}": xg[:, j] for j in range(3)}})
    host = pd.DataFrame({"customer": ids, **{f"h{j}": xh[:, j] for j in range(3)}})
    guest.iloc[: N - 50].sample(frac=1.0, random_state=1).to_csv(folder / "bank.csv", index=False)
    host.iloc[50:].sample(frac=1.0, random_state=2).to_csv(folder / "gov.csv", index=False)


def _federation(folder: Path, *, privacy: str = "dp", vertical: str = "", rounds: int = 6) -> Path:
    features = lambda prefix: ", ".join(  # noqa: E731
        f'{{ name = "{prefix}{j}", type = "float", min = -100.0, max = 100.0 }}' for j in range(3)
    )
    text = f"""
[federation]
name = "split-test"
model = "logistic"
mode = "vertical"
privacy = "{privacy}"
rounds = {rounds}
batch_size = 64
learning_rate = 0.03
seed = 3

[vertical]
protocol = "split-nn"
activation_noise_multiplier = 0.3
gradient_noise_multiplier = 0.3
{vertical}

[[participants]]
name = "bank"
file = "bank.csv"
schema = {{ id = "cid", label = "default", features = [{features("g")}] }}

[[participants]]
name = "gov"
file = "gov.csv"
schema = {{ id = "customer", features = [{features("h")}] }}
"""
    path = folder / "federation.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _run(spec: FederationSpec, grid: LocalGrid | None = None):  # type: ignore[no-untyped-def]
    grid = grid or LocalGrid(make_client_app(spec.path), n_nodes=len(spec.participants))
    return run_vertical(grid, spec, connect_timeout_s=5)  # type: ignore[arg-type]


def _holdout(folder: Path, spec: FederationSpec) -> dict[str, np.ndarray]:
    bank = pd.read_csv(folder / "bank.csv").set_index("cid")
    gov = pd.read_csv(folder / "gov.csv").set_index("customer")
    ids = sorted(set(bank.index) & set(gov.index))
    assert spec.vertical is not None
    _, holdout = holdout_split(len(ids), holdout=spec.vertical.holdout, seed=spec.seed)
    rows = [ids[i] for i in holdout]
    return {
        "bank": bank.loc[rows, ["g0", "g1", "g2"]].to_numpy(np.float32),
        "gov": gov.loc[rows, ["h0", "h1", "h2"]].to_numpy(np.float32),
        "label": bank.loc[rows, "default"].to_numpy(),
    }


def test_split_network_learns_the_interaction_and_its_parts_reproduce_it(
    tmp_path: Path,
) -> None:
    _write_parties(tmp_path)
    spec = load_federation(_federation(tmp_path))

    run = _run(spec)
    registered = publish(
        spec,
        FederationResult(
            report=run.report, model=None, n_features=0, parts=run.parts, combiner=run.combiner
        ),
        report_path=None,
    )

    assert run.report.strategy == "split-nn" and len(run.report.rounds) == 6
    assert run.report.final["auc"] > 0.75  # an interaction no linear model can fit
    assert registered is not None
    assert registered.card.architecture["kind"] == "vertical-split-nn"
    refs = {p["party"]: p for p in registered.card.architecture["parts"]}
    data = _holdout(tmp_path, spec)
    cuts = {}
    for party in ("bank", "gov"):
        path = part_dir(spec.name, party, refs[party]["export_id"]) / "part.onnx"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == refs[party]["sha256"]
        cuts[party] = score_parts(path, data[party])
        assert cuts[party].shape == (data["label"].size, 8)
    scores = combine(registered.onnx_path, cuts)
    # The parts and the combiner rank the holdout as the federation's own evaluation did.
    assert roc_auc_score(data["label"], scores) == pytest.approx(run.report.final["auc"], abs=1e-6)
    one = combine(registered.onnx_path, {p: cuts[p][:1] for p in cuts})
    assert one[0] == pytest.approx(scores[0], abs=1e-7)


def test_both_releases_are_accounted_over_every_batch(tmp_path: Path) -> None:
    _write_parties(tmp_path)
    spec = load_federation(_federation(tmp_path, rounds=2))

    report = _run(spec).report

    # 1 900 aligned rows, 1 425 train: ceil(1425 / 64) = 23 Poisson batches per epoch.
    expected = epsilon_for([DPEvent(0.3, 64 / 1425, 23 * 2)], delta=1e-5)
    assert report.final["epsilon"]["gov.features"] == pytest.approx(expected, rel=1e-3)
    assert report.final["epsilon"]["bank.labels"] == pytest.approx(expected, rel=1e-3)
    first = report.rounds[0].epsilon["gov.features"]
    assert first < report.final["epsilon"]["gov.features"]  # grows epoch by epoch
    assert report.privacy["cut_layer_dp"]["gradients"]["clip_norm"] == 0.3


def test_noise_matters_and_none_reports_no_epsilon(tmp_path: Path) -> None:
    _write_parties(tmp_path)
    quiet = _run(load_federation(_federation(tmp_path, privacy="none", rounds=2))).report
    loud = _run(
        load_federation(
            _federation(
                tmp_path,
                rounds=2,
                vertical="activation_clip_norm = 0.5\ngradient_clip_norm = 0.001",
            )
        )
    ).report

    assert quiet.final["epsilon"] == {}
    assert quiet.final["auc"] > loud.final["auc"]


def test_a_host_never_receives_labels_and_the_guest_never_host_features(tmp_path: Path) -> None:
    _write_parties(tmp_path)
    spec = load_federation(_federation(tmp_path, rounds=1))
    grid = LocalGrid(make_client_app(spec.path), n_nodes=2)
    seen: dict[str, list[Message]] = {"bank": [], "gov": []}
    push = grid.push_messages

    def spy(messages):  # type: ignore[no-untyped-def]
        messages = list(messages)
        for m in messages:
            seen["bank" if m.metadata.dst_node_id == 1000 else "gov"].append(m)
        return push(messages)

    grid.push_messages = spy  # type: ignore[method-assign]
    _run(spec, grid)

    gov = pd.read_csv(tmp_path / "gov.csv")
    bank = pd.read_csv(tmp_path / "bank.csv")
    host_values = set(gov[["h0", "h1", "h2"]].to_numpy().ravel())
    labels = bank["default"].to_numpy(float)
    for message in seen["bank"]:
        for record in message.content.array_records.values():
            for array in record.values():
                values = array.numpy().ravel()
                if values.dtype.kind == "f":
                    assert not host_values & set(values)  # no raw host value, exactly
    for message in seen["gov"]:
        for record in message.content.array_records.values():
            for array in record.values():
                values = array.numpy().ravel()
                # no array the size of the guest's labels, nor one equal to them
                assert values.size != labels.size or not np.array_equal(values, labels)


def test_split_settings_are_checked_in_the_federation_file(tmp_path: Path) -> None:
    _write_parties(tmp_path)

    with pytest.raises(FederationFileError, match="'dp' \\(clipped, noised cut layer\\)"):
        load_federation(_federation(tmp_path, privacy="he"))
    with pytest.raises(FederationFileError, match="applies only to protocol 'logistic-reg"):
        load_federation(_federation(tmp_path, vertical="label_noise_multiplier = 1.0"))
    with pytest.raises(FederationFileError, match="layer sizes must be >= 1"):
        load_federation(_federation(tmp_path, vertical="top_hidden = [0]"))
    lr = _federation(tmp_path, privacy="none").read_text().replace('protocol = "split-nn"\n', "")
    (tmp_path / "lr.toml").write_text(lr)
    with pytest.raises(FederationFileError, match="applies only to protocol 'split-nn'"):
        load_federation(tmp_path / "lr.toml")


def test_over_flower_the_protocol_equals_the_in_process_one(tmp_path: Path) -> None:
    from participants.vertical_split import split_config
    from participants.vertical_step import Step
    from privacy.vertical.split_nn import SplitNNGuest, SplitNNHost, run_split_epoch

    _write_parties(tmp_path)
    spec = load_federation(_federation(tmp_path, rounds=2))
    run = _run(spec)
    report = run.report
    bank = pd.read_csv(tmp_path / "bank.csv").set_index("cid")
    gov = pd.read_csv(tmp_path / "gov.csv").set_index("customer")
    ids = sorted(set(bank.index) & set(gov.index))
    assert spec.vertical is not None
    train, holdout = holdout_split(len(ids), holdout=spec.vertical.holdout, seed=spec.seed)
    xg, y = bank.loc[ids, ["g0", "g1", "g2"]].to_numpy(float), bank.loc[ids, "default"].to_numpy()
    xh = gov.loc[ids, ["h0", "h1", "h2"]].to_numpy(float)
    config = split_config(Step(spec, spec.participants[0], None, None, tmp_path))  # type: ignore[arg-type]

    guest = SplitNNGuest(xg[train], y[train], config=config, hosts=1)
    host = SplitNNHost(xh[train], config=config, index=1)
    for epoch in range(2):
        run_split_epoch(guest, [host], epoch=epoch)
    auc = roc_auc_score(y[holdout], guest.logits(xg[holdout], [host.cut(xh[holdout])]))

    assert report.final["auc"] == pytest.approx(auc, abs=1e-9)
    # The exported parts and combiner give the jointly trained model's probabilities.
    refs = {ref.party: ref for ref in run.parts}
    cuts = {
        party: score_parts(part_dir(spec.name, party, refs[party].export_id) / "part.onnx", x)
        for party, x in (("bank", xg[holdout]), ("gov", xh[holdout]))
    }
    joint = 1 / (1 + np.exp(-guest.logits(xg[holdout], [host.cut(xh[holdout])])))
    np.testing.assert_allclose(combine(run.combiner, cuts), joint, atol=1e-5)


def test_the_run_summary_shows_each_partys_releases_epsilon(tmp_path: Path) -> None:
    from rich.console import Console

    from coordinator.cli import print_summary

    _write_parties(tmp_path)
    report = _run(load_federation(_federation(tmp_path, rounds=1))).report
    console = Console(record=True, width=200)

    print_summary(console, report)

    text = console.export_text()
    eps = report.final["epsilon"]
    assert f"labels {eps['bank.labels']:.3f}" in text
    assert f"features {eps['gov.features']:.3f}" in text
