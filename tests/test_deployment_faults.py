"""Faults on Flower's deployment engine, on loopback, with TLS and node authentication:
a participant's SuperNode killed mid-training, and the coordinator killed with SIGKILL and
restarted (``fedrisk link run --resume``). Each result is checked against the in-process
run of the same federation (tests/coordinator/test_fault_tolerance.py has the same faults
in process, where every branch is reachable)."""

from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from consent.ledger.log import EvidenceLog
from coordinator.checkpoints import Checkpoint, load_checkpoint
from coordinator.rounds import run_federation
from models.federation import FederationSpec, load_federation
from models.layout import checkpoint_dir, ledger_dir
from participants.cli import ensure_keys
from participants.client_app import make_client_app
from tests.coordinator.test_fault_tolerance import DroppingGrid
from tests.support.loopback import PARTICIPANTS, LoopbackDeployment, write_federation
from tests.test_deployment import AUC_TOLERANCE, WEIGHT_TOLERANCE, deployed_report, in_process

RUN_TIMEOUT_S = 420.0
DP = "\n[privacy.dp]\ntarget_epsilon = 3.0\ndelta = 1e-5\nmax_grad_norm = 1.0\n"

pytestmark = [pytest.mark.deployment, pytest.mark.slow]


def wait_for_round(spec: FederationSpec, server_round: int, *, timeout_s: float) -> Checkpoint:
    """The current run's checkpoint once it reaches ``server_round``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = load_checkpoint(checkpoint_dir(spec))
        if found is not None and found.server_round >= server_round:
            return found
        time.sleep(0.2)
    raise TimeoutError(f"no checkpoint of round {server_round} after {timeout_s:.0f} s")


def test_a_killed_participant_leaves_the_rounds_to_the_survivors_under_he(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """p4's SuperNode is killed once round 1 is committed; the rounds after it average the
    other three under CKKS, equal to the in-process run in which p4 drops at that round."""
    data = tmp_path / "federation"
    data.mkdir()
    federation = write_federation(
        data, privacy="he", rounds=3, min_participants=3, extra="round_timeout_s = 40"
    )
    spec = load_federation(federation)
    with LoopbackDeployment(tmp_path / "deployment", federation, PARTICIPANTS) as deployment:
        deployment.start_run(timeout_s=RUN_TIMEOUT_S)
        wait_for_round(spec, 1, timeout_s=RUN_TIMEOUT_S)
        deployment.kill("p4")
        code = deployment.wait("run", timeout_s=RUN_TIMEOUT_S + 60)
        logs = deployment.logs()
    assert code == 0, logs
    deployed = deployed_report(federation)
    rounds = deployed["rounds"]
    assert [r["status"] for r in rounds] == ["ok", "ok", "ok"], logs
    missing = [i for i, r in enumerate(rounds, start=1) if "p4" not in r["contributors"]]
    assert missing and missing == list(range(missing[0], 4)), rounds
    for record in rounds[missing[0] - 1 :]:
        assert sorted(record["contributors"]) == ["p1", "p2", "p3"]

    # In process, p4 (node 1003, the fourth partition) goes offline at the same round.
    local = tmp_path / "in-process"
    shutil.copytree(data, local)
    monkeypatch.setenv("FEDRISK_HOME", str(local / "home"))
    local_spec = load_federation(local / federation.name)
    ensure_keys(local_spec, console=Console(file=io.StringIO()))
    grid = DroppingGrid(
        make_client_app(local_spec.path), n_nodes=4, drop={1003}, after=missing[0] - 1
    )
    expected = run_federation(grid, local_spec, connect_timeout_s=5)
    for mine, theirs in zip(rounds, expected.report.rounds, strict=True):
        assert sorted(mine["contributors"]) == sorted(theirs.contributors)
        assert mine["auc"] == pytest.approx(theirs.auc, abs=AUC_TOLERANCE)
    final = load_checkpoint(checkpoint_dir(spec))
    reference = load_checkpoint(checkpoint_dir(local_spec))
    assert final is not None and reference is not None
    for a, b in zip(final.arrays, reference.arrays, strict=True):
        np.testing.assert_allclose(a, b, atol=WEIGHT_TOLERANCE)


def test_a_coordinator_killed_mid_training_resumes_where_it_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL to the SuperLink (and the ServerApp it runs) once round 2 is committed; the
    restarted coordinator resumes the same run from round 2's model: the same rounds, model,
    ε per participant as the uninterrupted in-process run, and one ledger entry."""
    data = tmp_path / "federation"
    data.mkdir()
    federation = write_federation(data, privacy="dp", rounds=4, min_participants=3, extra=DP)
    spec = load_federation(federation)
    local = in_process(federation, tmp_path / "in-process", monkeypatch)

    with LoopbackDeployment(tmp_path / "deployment", federation, PARTICIPANTS) as deployment:
        deployment.start_run(timeout_s=RUN_TIMEOUT_S)
        committed = wait_for_round(spec, 2, timeout_s=RUN_TIMEOUT_S)
        deployment.kill("link")  # kill -9: the SuperLink, its SuperExec and the ServerApp
        deployment.kill("run")  # the steward's `fedrisk link run` went with the machine
        committed = load_checkpoint(checkpoint_dir(spec)) or committed
        restarted = time.monotonic()
        deployment.start_link()
        deployment.wait_for_nodes(len(PARTICIPANTS))
        outcome = deployment.run("--resume", timeout_s=RUN_TIMEOUT_S)
        seconds = time.monotonic() - restarted
        logs = deployment.logs()

    assert outcome.returncode == 0, f"{outcome.output}\n{logs}"
    deployed = deployed_report(federation)
    assert deployed["run_id"] == committed.run_id
    assert deployed["resumed"][-1]["after_round"] == committed.server_round
    assert deployed["resumed"][-1]["model_sha256"] == committed.model_sha256
    assert [r["server_round"] for r in deployed["rounds"]] == [1, 2, 3, 4]
    for mine, theirs in zip(deployed["rounds"], local["rounds"], strict=True):
        assert mine["auc"] == pytest.approx(theirs["auc"], abs=AUC_TOLERANCE)
    assert deployed["final"]["epsilon"] == pytest.approx(local["final"]["epsilon"], rel=1e-9)
    final = load_checkpoint(checkpoint_dir(spec))
    reference = load_checkpoint(
        checkpoint_dir(load_federation(tmp_path / "in-process" / federation.name))
    )
    assert final is not None and reference is not None and final.server_round == 4
    for a, b in zip(final.arrays, reference.arrays, strict=True):
        np.testing.assert_allclose(a, b, atol=WEIGHT_TOLERANCE)
    with EvidenceLog.in_folder(ledger_dir(spec)) as log:
        runs = [b.get("run_id") for b in log.bodies_of_kind("training_round")]
    assert runs == [committed.run_id]
    print(json.dumps({"restart_to_finish_s": round(seconds, 1)}))
