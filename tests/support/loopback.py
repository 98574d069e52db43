"""A federation on Flower's deployment engine, on loopback, started the way a steward and
data owners start it: ``fedrisk keys deployment``, ``fedrisk link start``, one
``fedrisk node start`` per participant and ``fedrisk link run``, each a separate process.

TLS and node authentication are on (the commands' default). Every process logs to its own
file under ``<workdir>/logs``; whatever happens, every process and everything it started
stops when the ``with`` block ends. Used by the deployment and fault tests and by
``bench/deployment.py``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import numpy as np

from coordinator.flwr_control import ControlError, FlwrControl
from models.federation import load_federation
from models.flower_processes import descendants, send_signal, stop_process_tree
from models.layout import deployment_dir

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0


FEATURES = [f"x{i}" for i in range(5)]
PARTICIPANTS = ("p1", "p2", "p3", "p4")
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


def write_federation(
    directory: Path,
    *,
    rows: int = 300,
    seed: int = 3,
    privacy: str = "he",
    rounds: int = 2,
    min_participants: int = 2,
    extra: str = "",
) -> Path:
    """Four participants' CSVs, an evaluation CSV and the federation file over them
    (``extra``: more [federation] keys, then any further tables)."""
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
privacy = "{privacy}"
strategy = "fedavg"
rounds = {rounds}
min_participants = {min_participants}
local_epochs = 1
batch_size = 32
learning_rate = 0.1
seed = {seed}
{extra}

[schema]
id = "id"
label = "y"
features = [ {features} ]

[evaluation]
file = "eval.csv"

{participants}"""
    )
    return path


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


def fedrisk_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "fedrisk", *args]


@dataclass(frozen=True)
class CommandResult:
    """A finished ``fedrisk`` command: exit code and everything it printed."""

    returncode: int
    output: str
    seconds: float


@dataclass
class LoopbackDeployment:
    """A SuperLink and one SuperNode per participant of ``federation``, on 127.0.0.1."""

    workdir: Path
    federation: Path
    participants: Sequence[str]
    #: Extra environment for every process (``FEDRISK_HOME`` is always the workdir's).
    env: Mapping[str, str] = field(default_factory=dict)
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _nodes: dict[str, int] = field(default_factory=dict)
    port: int = 0

    def __enter__(self) -> LoopbackDeployment:
        try:
            self.start()
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

    @property
    def superlink(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def process_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "FEDRISK_HOME": str(self.workdir / "home"),
            "COLUMNS": "200",
            **self.env,
        }

    def control(self) -> FlwrControl:
        folder = deployment_dir(load_federation(self.federation))
        return FlwrControl(
            home=folder / "flwr-home", address=self.superlink, ca_cert=folder / "ca.crt"
        )

    def fedrisk(self, *args: str, timeout_s: float) -> CommandResult:
        """Run one ``fedrisk`` command to its end, in this deployment's environment."""
        started = time.monotonic()
        done = subprocess.run(
            fedrisk_command(*args),
            cwd=self.workdir,
            env=self.process_env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        return CommandResult(done.returncode, done.stdout + done.stderr, time.monotonic() - started)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        keys = self.fedrisk("keys", "deployment", str(self.federation), timeout_s=120)
        assert keys.returncode == 0, keys.output
        self.port, *node_ports = free_ports(1 + len(self.participants))
        self.start_link()
        for name, port in zip(self.participants, node_ports, strict=True):
            self._nodes[name] = port
            self.start_node(name)
        self.wait_for_nodes(len(self.participants))

    def start_link(self) -> None:
        """``fedrisk link start`` (again, after :meth:`kill`), and wait until it answers."""
        # The log is appended to: after a restart, only what this start wrote counts.
        before = len(self.log("link"))
        self.spawn("link", "link", "start", str(self.federation), "--port", str(self.port))
        deadline = time.monotonic() + START_TIMEOUT_S
        while "SuperLink up on" not in self.log("link")[before:]:
            self.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"SuperLink not up after {START_TIMEOUT_S:.0f} s\n{self.logs()}")
            time.sleep(0.3)

    def start_node(self, name: str) -> None:
        self.spawn(
            name,
            "node", "start", str(self.federation),
            "--participant", name,
            "--superlink", self.superlink,
            "--port", str(self._nodes[name]),
        )  # fmt: skip

    def spawn(self, name: str, *args: str, command: Sequence[str] | None = None) -> None:
        """Start a long-running process named ``name`` (a ``fedrisk`` command by default)."""
        with (self.log_dir / f"{name}.log").open("ab") as log:
            self._procs[name] = subprocess.Popen(
                list(command) if command is not None else fedrisk_command(*args),
                cwd=self.workdir,
                env=self.process_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check_alive(self) -> None:
        for name, proc in self._procs.items():
            if name == "run":
                continue
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}\n{self.logs()}")

    def online(self) -> int:
        try:
            return self.control().online()
        except ControlError:  # the SuperLink is down or restarting
            return -1

    def wait_for_nodes(self, expected: int, *, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        online = 0
        while time.monotonic() < deadline:
            self.check_alive()
            online = self.online()
            if online >= expected:
                return
            time.sleep(0.5)
        raise TimeoutError(f"{online} of {expected} SuperNodes online\n{self.logs()}")

    def run(self, *extra: str, timeout_s: float) -> CommandResult:
        """``fedrisk link run`` against this deployment."""
        return self.fedrisk(
            "link", "run", str(self.federation),
            "--superlink", self.superlink,
            "--timeout", str(timeout_s),
            *extra,
            timeout_s=timeout_s + 60,
        )  # fmt: skip

    def start_run(self, *extra: str, timeout_s: float) -> None:
        """``fedrisk link run`` in the background (process ``run``); see :meth:`wait`."""
        self.spawn(
            "run", "link", "run", str(self.federation),
            "--superlink", self.superlink, "--timeout", str(timeout_s), *extra,
        )  # fmt: skip

    def wait(self, name: str, *, timeout_s: float) -> int:
        """Wait for process ``name`` to end; its exit code."""
        proc = self._procs.pop(name)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            stop_process_tree(proc, grace_s=STOP_TIMEOUT_S)
            message = f"{name} still running after {timeout_s:.0f} s\n{self.logs()}"
            raise TimeoutError(message) from None

    def exited(self, name: str) -> int | None:
        """Process ``name``'s exit code, or ``None`` while it runs."""
        return self._procs[name].poll()

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Kill process ``name`` and everything it started (``kill -9`` by default)."""
        proc = self._procs.pop(name)
        for pid in [proc.pid, *descendants(proc.pid)]:
            send_signal(pid, sig)
        proc.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        """Stop every process and all it started, nodes first (SIGTERM, then SIGKILL)."""
        for proc in reversed(list(self._procs.values())):
            stop_process_tree(proc, grace_s=STOP_TIMEOUT_S)
        self._procs.clear()

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self, *, tail_chars: int = 4000) -> str:
        """The tail of every process log, for assertion messages."""
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"--- {path.name} ---\n{text[-tail_chars:]}")
        return "\n".join(parts)
