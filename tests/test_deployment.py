"""fedrisk across processes on Flower's deployment engine, started with fedrisk's own
commands (``fedrisk keys deployment``, ``link start``, ``node start``, ``link run``) with TLS
and node authentication on, and compared with the in-process run of the same federation.

Each deployment is a SuperLink, one SuperNode per participant (each with the SuperExec and
app processes Flower starts) on 127.0.0.1, all separate processes (tests/support/loopback.py).
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from coordinator.checkpoints import latest_checkpoint
from models.federation import load_federation
from models.layout import checkpoint_dir
from participants.cli import ensure_keys
from tests.support.loopback import PARTICIPANTS, LoopbackDeployment, free_ports, write_federation
from tests.support.serving import write_vertical_federation

REPO = Path(__file__).resolve().parents[1]
APP_DIR = REPO / "deploy" / "flower"
RUN_TIMEOUT_S = 300.0
#: CKKS is approximate: sums decrypt to within ~1e-6 of the plaintext sums.
WEIGHT_TOLERANCE = 1e-4
AUC_TOLERANCE = 1e-3


# --- tests ------------------------------------------------------------------------------------


def test_flower_app_bundle_carries_only_its_definition() -> None:
    from flwr.cli.build import build_fab_from_disk
    from flwr.cli.config_utils import load_and_validate

    config, warnings = load_and_validate(APP_DIR / "pyproject.toml", check_module=False)
    fab = build_fab_from_disk(APP_DIR)

    names = zipfile.ZipFile(io.BytesIO(fab)).namelist()
    assert warnings == []
    assert sorted(names) == [".info/CONTENT", "pyproject.toml"]
    components = config["tool"]["flwr"]["app"]["components"]
    assert components == {
        "serverapp": "coordinator.server_app:app",
        "clientapp": "participants.client_app:app",
    }
    assert config["tool"]["flwr"]["app"]["config"] == {
        "federation": "",
        "report": "",
        "resume": False,
    }


def in_process(federation: Path, folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The same federation (a copy of its folder) run in-process: its report."""
    import fedrisk

    shutil.copytree(federation.parent, folder)
    monkeypatch.setenv("FEDRISK_HOME", str(folder / "home"))
    spec = load_federation(folder / federation.name)
    ensure_keys(spec, console=Console(file=io.StringIO()))
    fedrisk.simulate(spec, report_path=folder / "report.json")
    return json.loads((folder / "report.json").read_text())


def deployed_report(federation: Path) -> dict:
    spec = load_federation(federation)
    return json.loads((spec.output_dir / "reports" / f"{spec.name}.json").read_text())


def assert_same_rounds(deployed: dict, local: dict) -> None:
    assert [r["status"] for r in deployed["rounds"]] == [r["status"] for r in local["rounds"]]
    assert [sorted(r["contributors"]) for r in deployed["rounds"]] == [
        sorted(r["contributors"]) for r in local["rounds"]
    ]
    for mine, theirs in zip(deployed["rounds"], local["rounds"], strict=True):
        assert mine["auc"] == pytest.approx(theirs["auc"], abs=AUC_TOLERANCE)
    assert deployed["final"]["auc"] == pytest.approx(local["final"]["auc"], abs=AUC_TOLERANCE)


@pytest.mark.deployment
@pytest.mark.slow
def test_horizontal_he_federation_over_tls_equals_the_in_process_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "federation"
    data_dir.mkdir()
    federation = write_federation(data_dir)
    local = in_process(federation, tmp_path / "in-process", monkeypatch)

    with LoopbackDeployment(tmp_path / "deployment", federation, PARTICIPANTS) as deployment:
        # A node whose key the steward never allowed: it must not join.
        intruder = tmp_path / "intruder-keys"
        made = deployment.fedrisk(
            "keys", "node", str(federation), "--participant", "p1", "--out", str(intruder),
            timeout_s=60,
        )  # fmt: skip
        assert made.returncode == 0, made.output
        deployment.spawn(
            "intruder",
            "node", "start", str(federation), "--participant", "p1",
            "--superlink", deployment.superlink, "--keys", str(intruder),
            "--port", str(free_ports(1)[0]),
        )  # fmt: skip
        outcome = deployment.run(timeout_s=RUN_TIMEOUT_S)
        online = deployment.online()
        logs = deployment.logs()
        intruder_log = deployment.log("intruder")
        # The SuperLink's refusal makes the intruder's SuperNode shut itself down.
        intruder_exit = deployment.exited("intruder")

    assert outcome.returncode == 0, f"{outcome.output}\n{logs}"
    assert online == len(PARTICIPANTS), logs
    assert "SuperNode ID" not in intruder_log, intruder_log
    assert intruder_exit is not None and intruder_exit != 0, intruder_log
    # Flower reports the refusal as its exit code 305 (SuperNode connection error).
    assert "Failed to activate SuperNode" in intruder_log, intruder_log
    deployed = deployed_report(federation)
    assert_same_rounds(deployed, local)
    for record in deployed["rounds"]:
        assert sorted(record["contributors"]) == list(PARTICIPANTS)
    assert deployed["final"]["auc"] > 0.6
    spec, local_spec = (
        load_federation(federation),
        load_federation(tmp_path / "in-process" / federation.name),
    )
    mine, theirs = (
        latest_checkpoint(checkpoint_dir(spec)),
        latest_checkpoint(checkpoint_dir(local_spec)),
    )
    assert mine is not None and theirs is not None
    assert mine[0] == theirs[0] == 2
    for a, b in zip(mine[1], theirs[1], strict=True):
        np.testing.assert_allclose(a, b, atol=WEIGHT_TOLERANCE)
    assert (spec.output_dir / "registry" / "deploy-smoke" / "v1" / "model.onnx").is_file()
    assert "final AUC" in outcome.output


@pytest.mark.deployment
@pytest.mark.slow
def test_vertical_federation_over_tls_equals_the_in_process_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "federation"
    data_dir.mkdir()
    federation = write_vertical_federation(data_dir)
    # A SuperNode polls its SuperLink every 3 s when idle (Flower 1.41), and a vertical
    # epoch is several message exchanges per batch: one batch per epoch, two epochs.
    text = federation.read_text().replace("rounds = 3", "rounds = 2")
    federation.write_text(text.replace("batch_size = 128", "batch_size = 512"))
    local = in_process(federation, tmp_path / "in-process", monkeypatch)

    with LoopbackDeployment(tmp_path / "deployment", federation, ("bank", "gov")) as deployment:
        outcome = deployment.run(timeout_s=RUN_TIMEOUT_S)
        logs = deployment.logs()

    assert outcome.returncode == 0, f"{outcome.output}\n{logs}"
    deployed = deployed_report(federation)
    assert_same_rounds(deployed, local)
    assert deployed["final"]["auc"] > 0.7
