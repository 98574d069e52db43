"""Flower's deployment engine across processes: its overhead per round, and recovery.

One federation (four participants of 300 synthetic rows each, a logistic model, privacy
``he``, 32-row batches) runs twice, back to back: in process on Flower's simulation runtime
(``fedrisk train``'s path), and across six processes on loopback with TLS and node
authentication (``fedrisk link start``, four ``fedrisk node start``, ``fedrisk link run``:
tests/support/loopback.py). Seconds per round are the rounds' own durations in each
report (median, the first round left out); the deployment's start-up (keys, SuperLink, the
four SuperNodes online) is counted apart. Recovery: the coordinator is killed with SIGKILL
once round 2 (quick: round 1) is committed and restarted; measured from the restart to the
SuperLink answering, to every SuperNode back online, and to the next round committed by
the resumed run (``fedrisk link run --resume``).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .common import fmt, fresh_dir, progress, table

ROUNDS, QUICK_ROUNDS = 6, 2
ROUND_TIMEOUT_S = 300.0


def _clientapp_start_s(*, runs: int = 3) -> float:
    """Seconds for a fresh Python to import what a ClientApp process loads (torch, Opacus,
    TenSEAL, Flower): Flower's SuperExec starts one such process per message (median)."""
    code = "import torch, opacus, tenseal, flwr"
    times = []
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.monotonic() - started)
    return statistics.median(times)


def _median_round_s(rounds: list[dict[str, Any]]) -> float:
    durations = [r["duration_s"] for r in rounds[1:]] or [r["duration_s"] for r in rounds]
    return statistics.median(durations)


def _in_process(federation: Path) -> dict[str, Any]:
    import io
    import json
    import os

    from rich.console import Console

    import fedrisk
    from models.federation import load_federation
    from participants.cli import ensure_keys

    os.environ["FEDRISK_HOME"] = str(federation.parent / "home")
    spec = load_federation(federation)
    ensure_keys(spec, console=Console(file=io.StringIO()))
    started = time.monotonic()
    fedrisk.simulate(spec, report_path=federation.parent / "report.json")
    wall = time.monotonic() - started
    report = json.loads((federation.parent / "report.json").read_text())
    return {"rounds": report["rounds"], "wall_s": wall, "auc": report["final"]["auc"]}


def _deployed(federation: Path, work: Path) -> dict[str, Any]:
    import json

    from models.federation import load_federation
    from tests.support.loopback import PARTICIPANTS, LoopbackDeployment

    spec = load_federation(federation)
    started = time.monotonic()
    with LoopbackDeployment(work, federation, PARTICIPANTS) as deployment:
        up = time.monotonic() - started
        outcome = deployment.run(timeout_s=ROUND_TIMEOUT_S * 4)
    if outcome.returncode != 0:
        raise RuntimeError(f"the deployed run failed:\n{outcome.output[-3000:]}")
    report = json.loads((spec.output_dir / "reports" / f"{spec.name}.json").read_text())
    return {
        "rounds": report["rounds"],
        "startup_s": up,
        "run_s": outcome.seconds,
        "auc": report["final"]["auc"],
    }


def _recovery(federation: Path, work: Path, *, kill_after: int) -> dict[str, Any]:
    from coordinator.checkpoints import load_checkpoint
    from models.federation import load_federation
    from models.layout import checkpoint_dir
    from tests.support.loopback import PARTICIPANTS, LoopbackDeployment

    spec = load_federation(federation)

    def committed() -> int:
        found = load_checkpoint(checkpoint_dir(spec))
        return 0 if found is None else found.server_round

    def wait_round(server_round: int, timeout_s: float) -> float:
        deadline = time.monotonic() + timeout_s
        while committed() < server_round:
            if time.monotonic() > deadline:
                raise TimeoutError(f"round {server_round} not committed in {timeout_s:.0f} s")
            time.sleep(0.05)
        return time.monotonic()

    with LoopbackDeployment(work, federation, PARTICIPANTS) as deployment:
        deployment.start_run(timeout_s=ROUND_TIMEOUT_S * 4)
        wait_round(kill_after, ROUND_TIMEOUT_S)
        deployment.kill("link")
        deployment.kill("run")
        killed_at = committed()
        restart = time.monotonic()
        deployment.start_link()
        link_up = time.monotonic()
        deployment.wait_for_nodes(len(PARTICIPANTS))
        nodes_up = time.monotonic()
        finished: dict[str, Any] = {}

        def resume() -> None:
            finished["outcome"] = deployment.run("--resume", timeout_s=ROUND_TIMEOUT_S * 4)

        runner = threading.Thread(target=resume)
        runner.start()
        next_round = wait_round(killed_at + 1, ROUND_TIMEOUT_S)
        runner.join()
    outcome = finished["outcome"]
    if outcome.returncode != 0:
        raise RuntimeError(f"the resumed run failed:\n{outcome.output[-3000:]}")
    return {
        "killed_after_round": killed_at,
        "link_up_s": link_up - restart,
        "nodes_online_s": nodes_up - restart,
        "next_round_s": next_round - restart,
        "finished_s": time.monotonic() - restart,
    }


def run(work: Path, *, quick: bool) -> dict[str, Any]:
    from tests.support.loopback import write_federation

    rounds = QUICK_ROUNDS if quick else ROUNDS
    work = fresh_dir(work)
    out: dict[str, Any] = {"rounds": rounds, "quick": quick}
    for label in ("in_process", "deployed", "recovery"):
        data = work / label / "federation"
        data.mkdir(parents=True)
        federation = write_federation(
            data, privacy="he", rounds=rounds, min_participants=3,
            extra=f"round_timeout_s = {ROUND_TIMEOUT_S:g}",
        )  # fmt: skip
        progress(f"deployment: {label.replace('_', ' ')} ({rounds} rounds)")
        if label == "in_process":
            out[label] = _in_process(federation)
        elif label == "deployed":
            out[label] = _deployed(federation, work / label / "deployment")
        else:
            out[label] = _recovery(
                federation, work / label / "deployment", kill_after=1 if quick else 2
            )
    out["clientapp_start_s"] = _clientapp_start_s()
    local, deployed = out["in_process"], out["deployed"]
    out["in_process_round_s"] = _median_round_s(local["rounds"])
    out["deployed_round_s"] = _median_round_s(deployed["rounds"])
    out["ratio"] = out["deployed_round_s"] / out["in_process_round_s"]
    progress(
        f"deployment: {out['deployed_round_s']:.2f} s/round deployed vs "
        f"{out['in_process_round_s']:.2f} in process ({out['ratio']:.1f}x)"
    )
    return out


def markdown(result: dict[str, Any]) -> str:
    local, deployed, recovery = result["in_process"], result["deployed"], result["recovery"]
    rows = [
        ["in process (simulation runtime)", fmt(result["in_process_round_s"], 2), "1.0x",
         "-", fmt(local["wall_s"], 1), fmt(local["auc"])],
        ["6 processes on loopback, TLS + node auth", fmt(result["deployed_round_s"], 2),
         f"{result['ratio']:.1f}x", fmt(deployed["startup_s"], 1), fmt(deployed["run_s"], 1),
         fmt(deployed["auc"])],
    ]  # fmt: skip
    steady = result["deployed_round_s"]
    start = result.get("clientapp_start_s", float("nan"))
    recovery_rows = [
        ["SuperLink answering again", fmt(recovery["link_up_s"], 1)],
        ["every SuperNode back online", fmt(recovery["nodes_online_s"], 1)],
        [f"round {recovery['killed_after_round'] + 1} committed (the resumed run's first)",
         fmt(recovery["next_round_s"], 1)],
        ["resumed run finished and published", fmt(recovery["finished_s"], 1)],
    ]  # fmt: skip
    return "\n".join([
        table(["run", "s/round (median)", "vs in process", "start-up s", "run s", "final AUC"],
              rows),
        "",
        f"{result['rounds']} rounds each; the first round is left out of the median. A "
        "deployed round costs what the process boundaries cost, not TLS or gRPC (milliseconds): "
        "Flower's SuperExec starts a fresh ClientApp process for every message, and one that "
        f"imports torch, Opacus, TenSEAL and Flower takes {start:.1f} s here (median of "
        "three), with four nodes sharing two cores; a round under `he` is two exchanges (a "
        "train message to each node, then the aggregate to one key holder to decrypt), "
        "and an idle SuperNode asks the SuperLink "
        "for work every 3 s (Flower 1.41's polling interval), so each exchange can also wait "
        "up to 3 s.",
        "",
        "**Recovery** (coordinator killed with SIGKILL after round "
        f"{recovery['killed_after_round']}, then `fedrisk link start` and "
        "`fedrisk link run --resume`; seconds from the restart):",
        "",
        table(["milestone", "s after the restart"], recovery_rows),
        "",
        f"Restart to the next committed round: {recovery['next_round_s']:.1f} s, against "
        f"{steady:.1f} s for a steady deployed round: the resumed run is a new Flower run, so "
        "it pays its ServerApp's start and the handshake with every node before the round "
        "itself (the round cut off by the kill is asked again; nodes that already released "
        "its update release the identical one, at no further ε). Most of the wait before "
        "the handshake completes is the killed run's leftover: the SuperLink keeps its state "
        "across the restart, and a node that was still on a message of the killed run (in the "
        "runs' logs, the key holder with its decrypt request) first starts a ClientApp process "
        "for it, which finds that run finished (the SuperLink answers 403, Flower logs \"Run "
        "ID … is not in `RUNNING` status. Ignoring message\"); only then does that node take "
        "the resumed run's handshake, with the ClientApp processes of the other nodes sharing "
        "the two cores.",
    ])  # fmt: skip
