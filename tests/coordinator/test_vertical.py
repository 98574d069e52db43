"""A vertical federation end to end over an in-process grid: PSI, CKKS vertical LR, refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from coordinator.handshake import FederationAbortedError
from coordinator.publish import publish
from coordinator.rounds import FederationResult
from coordinator.vertical import run_vertical
from models.errors import FederationFileError, ModelsError
from models.federation import FederationSpec, load_federation
from models.registry import ModelRegistry
from models.scoring import score_file
from models.vertical_parts import combine, score_parts
from participants.client_app import make_client_app
from participants.vertical_state import part_dir
from privacy.vertical import holdout_split
from tests.support.local_grid import LocalGrid


def _write_parties(folder: Path, *, duplicate_host_id: bool = False) -> None:
    """Guest rows 0..449, host rows 50..499: 400 shared subjects, in different orders."""
    rng = np.random.default_rng(0)
    n = 500
    xg, xh = rng.normal(size=(n, 3)), rng.normal(size=(n, 4))
    logit = 1.2 * xg[:, 0] - 0.8 * xg[:, 1] + 1.5 * xh[:, 0] - 1.0 * xh[:, 2]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    ids = [f"C{100000 + i}" for i in range(n)]
    guest = pd.DataFrame({"cid": ids, "default": y, **{f"g{j}": xg[:, j] for j in range(3)}})
    host = pd.DataFrame({"customer": ids, **{f"h{j}": xh[:, j] for j in range(4)}})
    guest.iloc[:450].sample(frac=1.0, random_state=1).to_csv(folder / "bank.csv", index=False)
    host = host.iloc[50:].sample(frac=1.0, random_state=2)
    if duplicate_host_id:
        host = pd.concat([host, host.iloc[:1]])
    host.to_csv(folder / "gov.csv", index=False)


def _federation(
    folder: Path, *, privacy: str = "he", extra: str = "", label_in_host: bool = False
) -> Path:
    features = lambda prefix, k: ", ".join(  # noqa: E731
        f'{{ name = "{prefix}{j}", type = "float", min = -100.0, max = 100.0 }}' for j in range(k)
    )
    host_label = 'label = "h3", ' if label_in_host else ""
    text = f"""
[federation]
name = "vertical-test"
model = "logistic"
mode = "vertical"
privacy = "{privacy}"
rounds = 4
batch_size = 128
learning_rate = 0.3
seed = 3
{extra}

[[participants]]
name = "bank"
file = "bank.csv"
schema = {{ id = "cid", label = "default", features = [{features("g", 3)}] }}

[[participants]]
name = "gov"
file = "gov.csv"
schema = {{ id = "customer", {host_label}features = [{features("h", 3 if label_in_host else 4)}] }}
"""
    path = folder / "federation.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _run_vertical(spec: FederationSpec):  # type: ignore[no-untyped-def]
    grid = LocalGrid(make_client_app(spec.path), n_nodes=len(spec.participants))
    return run_vertical(grid, spec, connect_timeout_s=5)  # type: ignore[arg-type]


def _run(spec: FederationSpec):  # type: ignore[no-untyped-def]
    return _run_vertical(spec).report


def _holdout_features(folder: Path, spec: FederationSpec) -> dict[str, np.ndarray]:
    """Each party's holdout rows, as the federation aligned and split them (sorted ids)."""
    bank = pd.read_csv(folder / "bank.csv").set_index("cid")
    gov = pd.read_csv(folder / "gov.csv").set_index("customer")
    ids = sorted(set(bank.index) & set(gov.index))
    assert spec.vertical is not None
    _, holdout = holdout_split(len(ids), holdout=spec.vertical.holdout, seed=spec.seed)
    rows = [ids[i] for i in holdout]
    return {
        "bank": bank.loc[rows, ["g0", "g1", "g2"]].to_numpy(np.float32),
        "gov": gov.loc[rows, ["h0", "h1", "h2", "h3"]].to_numpy(np.float32),
        "label": bank.loc[rows, "default"].to_numpy(),
    }


def test_parts_filed_at_the_parties_and_the_combiner_reproduce_the_trained_model(
    tmp_path: Path,
) -> None:
    _write_parties(tmp_path)
    spec = load_federation(_federation(tmp_path))
    run = _run_vertical(spec)

    registered = publish(
        spec,
        FederationResult(
            report=run.report, model=None, n_features=0, parts=run.parts, combiner=run.combiner
        ),
        report_path=None,
    )

    assert registered is not None and registered.card.mode == "vertical"
    # 400 aligned rows, 100 held out: each party trained on the other 300.
    assert registered.card.participants == {"bank": 300, "gov": 300}
    refs = {p["party"]: p for p in registered.card.architecture["parts"]}
    assert set(refs) == {"bank", "gov"} and refs["gov"]["features"] == ["h0", "h1", "h2", "h3"]
    data = _holdout_features(tmp_path, spec)
    partial = {}
    for party in ("bank", "gov"):
        path = part_dir(spec.name, party, refs[party]["export_id"]) / "part.onnx"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == refs[party]["sha256"]
        partial[party] = score_parts(path, data[party])
    scores = combine(registered.onnx_path, partial)
    # The combined parts rank the holdout exactly as the federation's own evaluation did.
    assert roc_auc_score(data["label"], scores) == pytest.approx(run.report.final["auc"], abs=1e-9)
    one = combine(
        registered.onnx_path,
        {
            p: score_parts(part_dir(spec.name, p, refs[p]["export_id"]) / "part.onnx", data[p][0])
            for p in partial
        },
    )
    assert one[0] == pytest.approx(scores[0], abs=1e-12)
    with pytest.raises(ModelsError, match="is vertical: its features live at bank, gov"):
        score_file(
            ModelRegistry(registered.dir.parent.parent),
            model=spec.name,
            version=None,
            input_path=tmp_path / "bank.csv",
            output_path=tmp_path / "out.csv",
        )


def test_vertical_lr_over_psi_aligned_rows_learns_from_both_parties(tmp_path: Path) -> None:
    _write_parties(tmp_path)
    spec = load_federation(_federation(tmp_path))

    report = _run(spec)

    assert report.final["aligned_rows"] == 400
    assert report.final["holdout_rows"] == 100
    assert [r.server_round for r in report.rounds] == [1, 2, 3, 4]
    assert report.final["auc"] > 0.8
    assert report.privacy["he"]["key_holder"] == "bank"  # type: ignore[index]


def test_ckks_and_plaintext_protocols_give_the_same_model_quality(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _write_parties(tmp_path / "a")
    _write_parties(tmp_path / "b")

    he = _run(load_federation(_federation(tmp_path / "a", privacy="he")))
    plain = _run(load_federation(_federation(tmp_path / "b", privacy="none")))

    assert he.final["auc"] == pytest.approx(plain.final["auc"], abs=1e-3)
    assert plain.warnings  # privacy 'none' is loud


def test_duplicate_ids_at_a_host_stop_the_run_naming_the_host(tmp_path: Path) -> None:
    _write_parties(tmp_path, duplicate_host_id=True)
    spec = load_federation(_federation(tmp_path))

    with pytest.raises(
        FederationAbortedError, match=r"gov.*gov.csv, row 452, column .customer.: duplicate id"
    ):
        _run(spec)


def test_label_noise_is_accounted_per_epoch(tmp_path: Path) -> None:
    _write_parties(tmp_path)
    spec = load_federation(
        _federation(tmp_path, extra="\n[vertical]\nlabel_noise_multiplier = 2.0")
    )

    report = _run(spec)

    eps = [r.epsilon["bank.labels"] for r in report.rounds]
    assert eps == sorted(eps) and eps[0] > 0
    assert report.final["epsilon"]["bank.labels"] == eps[-1]


def test_two_label_holders_are_refused_in_the_federation_file(tmp_path: Path) -> None:
    _write_parties(tmp_path)

    with pytest.raises(FederationFileError, match="exactly one participant"):
        load_federation(_federation(tmp_path, label_in_host=True))


def test_vertical_federation_refuses_dp_modes_and_shared_schemas(tmp_path: Path) -> None:
    _write_parties(tmp_path)

    with pytest.raises(FederationFileError, match="'he' \\(CKKS residuals\\) or 'none'"):
        load_federation(_federation(tmp_path, privacy="dp+he"))


def test_vertical_model_card_lists_each_partys_features_and_part(tmp_path: Path) -> None:
    _write_parties(tmp_path)
    spec = load_federation(_federation(tmp_path, privacy="none"))
    run = _run_vertical(spec)
    registered = publish(
        spec,
        FederationResult(
            report=run.report, model=None, n_features=0, parts=run.parts, combiner=run.combiner
        ),
        report_path=tmp_path / "report.json",
    )
    assert registered is not None

    text = (registered.dir / "card.md").read_text(encoding="utf-8")

    assert "vertical-logistic (parts bank: 3 + gov: 4 features" in text
    gov = next(p for p in run.parts if p.party == "gov")
    assert f"### At gov (part `{gov.sha256[:16]}…`" in text
    assert "- `h3` (float)" in text
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["model_version"] == f"{spec.name}/v1"
    assert [p["party"] for p in report["final"]["parts"]] == ["bank", "gov"]
