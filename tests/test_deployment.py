"""fedrisk on Flower's deployment engine: a SuperLink and SuperNodes as processes on loopback.

The same ServerApp and ClientApp that ``fedrisk train`` runs in-process on Flower's
simulation runtime run here as separate processes, launched with ``flwr run deploy/flower``
exactly as deploy/README.md describes. The processes talk over **insecure** HTTP on
127.0.0.1 (``--insecure``, no TLS, no node authentication): acceptable for a test on
loopback only, never across machines.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
APP_DIR = REPO / "deploy" / "flower"
RUN_TIMEOUT_S = 240.0
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
CONNECTION = "loopback"


# --- harness ----------------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (held open together so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def node_config(federation: Path, participant: str) -> str:
    """A SuperNode's ``--node-config``: which federation file and which participant it is."""
    return f'federation="{federation}" participant="{participant}"'


def _flower_bin(name: str) -> str:
    """A Flower executable from this interpreter's environment (falls back to PATH)."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def _children(pid: int) -> list[int]:
    """All descendants of ``pid`` (Linux /proc), including those in their own sessions.

    The SuperLink and each SuperNode start a SuperExec with ``start_new_session=True``, so
    killing their process groups does not reach it or the app processes it starts.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    parents: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal(pid: int, sig: signal.Signals, *, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass(frozen=True)
class RunOutcome:
    """How a ``flwr run`` ended: the run's final status and everything it printed."""

    run_id: int | None
    status: str
    details: str
    output: str

    @property
    def completed(self) -> bool:
        return self.status == "finished:completed"


@dataclass
class LoopbackDeployment:
    """A SuperLink and one SuperNode per participant on 127.0.0.1, insecure, for tests.

    Use as a context manager: the processes always stop on exit, whatever happened.
    ``flwr`` talks to the SuperLink through a connection in a private ``FLWR_HOME``, so the
    user's ``~/.flwr`` is never read or written.
    """

    workdir: Path
    nodes: Mapping[str, str]  # SuperNode name -> --node-config
    _procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    _env: dict[str, str] = field(default_factory=dict)
    _port: int = 0

    def __enter__(self) -> LoopbackDeployment:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    def _start(self) -> None:
        flwr_home = self.workdir / "flwr-home"
        flwr_home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._port, *node_ports = free_ports(1 + len(self.nodes))
        bin_dir = str(Path(_flower_bin("flower-superlink")).parent)
        self._env = {
            **os.environ,
            "FLWR_HOME": str(flwr_home),
            # SuperLink and SuperNodes start SuperExec and the apps by command name.
            "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
            # The apps come from this checkout whether or not fedrisk is pip-installed.
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
            ),
            "FLWR_TELEMETRY_ENABLED": "0",
            "FLWR_DISABLE_UPDATE_CHECK": "1",
        }
        (flwr_home / "config.toml").write_text(
            f'[superlink]\ndefault = "{CONNECTION}"\n\n'
            f'[superlink.{CONNECTION}]\naddress = "127.0.0.1:{self._port}"\ninsecure = true\n'
        )
        self._spawn(
            "superlink",
            [
                _flower_bin("flower-superlink"),
                "--insecure",
                "--host", "127.0.0.1",
                "--port", str(self._port),
                "--disable-runtime-dependency-installation",
            ],
        )  # fmt: skip
        # SuperNodes retry until the SuperLink answers, so all start at once.
        for (name, config), port in zip(self.nodes.items(), node_ports, strict=True):
            self._spawn(
                f"supernode-{name}",
                [
                    _flower_bin("flower-supernode"),
                    "--insecure",
                    "--superlink", f"127.0.0.1:{self._port}",
                    "--host", "127.0.0.1",
                    "--port", str(port),
                    "--node-config", config,
                ],
            )  # fmt: skip
        self._wait_for_superlink()
        self._wait_for_nodes(len(self.nodes))

    def _spawn(self, name: str, command: list[str]) -> None:
        with (self.log_dir / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._procs.append((name, proc))

    def _check_alive(self) -> None:
        for name, proc in self._procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}\n{self.logs()}")

    def _wait_for_superlink(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        url = f"http://127.0.0.1:{self._port}/health"
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise TimeoutError(f"SuperLink not up after {START_TIMEOUT_S:.0f} s\n{self.logs()}")

    def _wait_for_nodes(self, expected: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        online = 0
        while time.monotonic() < deadline:
            self._check_alive()
            listed = self.flwr("supernode", "ls", CONNECTION, "--format", "json", timeout_s=30)
            if listed.returncode == 0:
                nodes = json.loads(listed.stdout)["nodes"]
                online = sum(1 for node in nodes if node["status"] == "online")
                if online >= expected:
                    return
            time.sleep(0.5)
        raise TimeoutError(f"{online} of {expected} SuperNodes online\n{self.logs()}")

    def flwr(self, *args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
        """Run the ``flwr`` CLI against this deployment."""
        return subprocess.run(
            [_flower_bin("flwr"), *args],
            cwd=self.workdir,
            env=self._env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def run(self, app_dir: Path, run_config: Mapping[str, str], *, timeout_s: float) -> RunOutcome:
        """``flwr run APP --stream`` and wait (at most ``timeout_s``) for the run to end."""
        overrides = " ".join(f"{key}={json.dumps(value)}" for key, value in run_config.items())
        command = [_flower_bin("flwr"), "run", str(app_dir), CONNECTION, "--stream"]
        if overrides:
            command += ["--run-config", overrides]
        deadline = time.monotonic() + timeout_s
        try:
            done = subprocess.run(
                command,
                cwd=self.workdir,
                env=self._env,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
            output = done.stdout + done.stderr
        except subprocess.TimeoutExpired as exc:
            output = _text(exc.stdout) + _text(exc.stderr)
        match = re.search(r"Successfully started run (\d+)", output)
        if match is None:
            return RunOutcome(None, "not-started", "flwr run did not start a run", output)
        run_id = int(match.group(1))
        status, details = self._wait_for_status(run_id, deadline)
        if not status.startswith("finished"):
            self.flwr("stop", str(run_id), CONNECTION, timeout_s=30)
        return RunOutcome(run_id, status, details, output)

    def _wait_for_status(self, run_id: int, deadline: float) -> tuple[str, str]:
        """The run's status once finished, or its last status when ``deadline`` passes."""
        status, details = "unknown", ""
        while True:
            listed = self.flwr(
                "ls", CONNECTION, "--run-id", str(run_id), "--format", "json", timeout_s=30
            )
            if listed.returncode == 0:
                run = json.loads(listed.stdout)["runs"][0]
                status, details = run["status"], run["status-details"]
                if status.startswith("finished"):
                    return status, details
            if time.monotonic() >= deadline:
                return status, details
            time.sleep(1.0)

    def stop(self) -> None:
        """Stop the SuperNodes, then the SuperLink, and every process they started."""
        procs = list(reversed(self._procs))
        descendants = [child for _, proc in procs for child in _children(proc.pid)]
        for _, proc in procs:
            _signal(proc.pid, signal.SIGTERM, group=True)
        for child in descendants:
            _signal(child, signal.SIGTERM, group=False)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for _, proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal(proc.pid, signal.SIGKILL, group=True)
                proc.wait()
        for child in descendants:
            if Path(f"/proc/{child}").exists():
                _signal(child, signal.SIGKILL, group=False)
        self._procs.clear()

    def logs(self, *, tail_chars: int = 4000) -> str:
        """The tail of every process log, for assertion messages."""
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"--- {path.name} ---\n{text[-tail_chars:]}")
        return "\n".join(parts)


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


# --- a small horizontal federation on synthetic data --------------------------------------------

FEATURES = [f"x{i}" for i in range(5)]
PARTICIPANTS = ("p1", "p2", "p3")
WEIGHTS = np.array([1.5, -2.0, 1.0, 0.0, 0.5])


def write_rows(path: Path, *, rows: int, rng: np.random.Generator, id_prefix: str) -> None:
    """``rows`` subjects whose default label is a noisy logistic function of x0..x4."""
    x = rng.normal(size=(rows, len(FEATURES)))
    p = 1.0 / (1.0 + np.exp(-(x @ WEIGHTS)))
    y = (rng.random(rows) < p).astype(int)
    lines = ["id,y," + ",".join(FEATURES)]
    for i in range(rows):
        values = ",".join(f"{v:.6f}" for v in x[i])
        lines.append(f"{id_prefix}{i:05d},{y[i]},{values}")
    path.write_text("\n".join(lines) + "\n")


def write_federation(directory: Path, *, rows: int = 300, seed: int = 3) -> Path:
    """Three participants' CSVs, an evaluation CSV and the federation file over them."""
    rng = np.random.default_rng(seed)
    for name in PARTICIPANTS:
        write_rows(directory / f"{name}.csv", rows=rows, rng=rng, id_prefix=f"{name}-")
    write_rows(directory / "eval.csv", rows=rows, rng=rng, id_prefix="eval-")
    features = ", ".join(f'{{ name = "{f}", type = "float" }}' for f in FEATURES)
    participants = "\n".join(
        f'[[participants]]\nname = "{name}"\nfile = "{name}.csv"\n' for name in PARTICIPANTS
    )
    path = directory / "federation.toml"
    path.write_text(
        f"""[federation]
name = "deploy-smoke"
model = "logistic"
mode = "horizontal"
privacy = "he"
strategy = "fedavg"
rounds = 2
min_participants = 2
local_epochs = 1
batch_size = 32
learning_rate = 0.1
seed = {seed}

[schema]
id = "id"
label = "y"
features = [ {features} ]

[evaluation]
file = "eval.csv"

{participants}"""
    )
    return path


def provision_keys(federation: Path) -> None:
    """The participants' CKKS key set (``fedrisk keys provision FEDERATION``)."""
    from rich.console import Console

    from models.federation import load_federation
    from participants.cli import ensure_keys

    ensure_keys(load_federation(federation), console=Console(file=io.StringIO()))


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
    assert config["tool"]["flwr"]["app"]["config"] == {"federation": "", "report": ""}


@pytest.mark.deployment
@pytest.mark.slow
def test_horizontal_he_federation_runs_on_the_deployment_engine(tmp_path: Path) -> None:
    data_dir = tmp_path / "federation"
    data_dir.mkdir()
    federation = write_federation(data_dir)
    provision_keys(federation)
    report_path = tmp_path / "report.json"
    nodes = {name: node_config(federation, name) for name in PARTICIPANTS}

    with LoopbackDeployment(tmp_path / "deployment", nodes) as deployment:
        outcome = deployment.run(
            APP_DIR,
            {"federation": str(federation), "report": str(report_path)},
            timeout_s=RUN_TIMEOUT_S,
        )
        logs = deployment.logs()

    assert outcome.completed, (
        f"run {outcome.run_id}: {outcome.status} ({outcome.details})\n{outcome.output}\n{logs}"
    )
    report = json.loads(report_path.read_text())
    assert [r["status"] for r in report["rounds"]] == ["ok", "ok"]
    for record in report["rounds"]:
        assert sorted(record["contributors"]) == list(PARTICIPANTS)
    assert report["final"]["auc"] > 0.6
    assert (data_dir / "runs" / "registry" / "deploy-smoke" / "v1" / "model.onnx").is_file()
