"""A vertical federation end to end over an in-process grid: PSI, CKKS vertical LR, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coordinator.handshake import FederationAbortedError
from coordinator.vertical import run_vertical
from models.errors import FederationFileError
from models.federation import FederationSpec, load_federation
from participants.client_app import make_client_app
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


def _run(spec: FederationSpec):  # type: ignore[no-untyped-def]
    grid = LocalGrid(make_client_app(spec.path), n_nodes=len(spec.participants))
    return run_vertical(grid, spec, connect_timeout_s=5)  # type: ignore[arg-type]


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
