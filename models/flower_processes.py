"""Running Flower's own executables (``flower-superlink``, ``flower-supernode``, ``flwr``)
as child processes of a ``fedrisk`` command, for both sides of a deployment.

Flower's deployment engine does the networking, scheduling and node authentication; this
module only finds its executables in fedrisk's environment, gives them an environment in
which fedrisk's apps import, and runs one in the foreground so that Ctrl-C or a service
manager's SIGTERM reaches it (and the SuperExec and app processes it started).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from .errors import ModelsError

__all__ = [
    "FlowerProcessError",
    "descendants",
    "flower_environment",
    "flower_executable",
    "run_foreground",
    "send_signal",
    "stop_process_tree",
]

#: The folder that holds the ``coordinator``, ``participants`` and ``models`` packages.
SOURCE_ROOT = Path(__file__).resolve().parents[1]
STOP_GRACE_S = 10.0


class FlowerProcessError(ModelsError):
    """A Flower executable is missing, or a Flower process failed to start."""


def flower_executable(name: str) -> str:
    """The path of Flower's ``name`` executable beside this interpreter (else on PATH)."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        raise FlowerProcessError(
            f"{name} not found beside {sys.executable} or on PATH: install fedrisk with its "
            "dependencies (make setup, or pip install -e .), which brings flwr 1.41"
        )
    return found


def flower_environment(*, flwr_home: Path | None = None) -> dict[str, str]:
    """The environment for a Flower process: this environment's executables first on PATH
    (a SuperLink starts SuperExec and the apps by command name), fedrisk's packages
    importable, Flower's telemetry and update check off, and ``FLWR_HOME`` (the ``flwr``
    CLI's connections) set when given, so the user's ``~/.flwr`` is left alone."""
    env = dict(os.environ)
    bin_dir = str(Path(flower_executable("flower-superlink")).parent)
    env["PATH"] = os.pathsep.join(p for p in (bin_dir, env.get("PATH", "")) if p)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SOURCE_ROOT), env.get("PYTHONPATH", "")) if p
    )
    env["FLWR_TELEMETRY_ENABLED"] = "0"
    env["FLWR_DISABLE_UPDATE_CHECK"] = "1"
    if flwr_home is not None:
        env["FLWR_HOME"] = str(flwr_home)
    return env


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux ``/proc``; empty elsewhere), including those
    in sessions of their own: a SuperLink or SuperNode starts SuperExec with
    ``start_new_session=True``, so signalling its process group does not reach it."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def send_signal(pid: int, sig: signal.Signals) -> None:
    """Signal ``pid`` if it still exists."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def stop_process_tree(process: subprocess.Popen[bytes], *, grace_s: float = STOP_GRACE_S) -> int:
    """SIGTERM ``process`` and everything it started; SIGKILL what is left after
    ``grace_s``. Returns the process's exit code."""
    below = descendants(process.pid)
    for pid in [process.pid, *below]:
        send_signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        send_signal(process.pid, signal.SIGKILL)
        process.wait()
    for pid in below:
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _running(pid):
            send_signal(pid, signal.SIGKILL)
    return process.returncode


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (an exited process nobody reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def run_foreground(
    command: Sequence[str],
    *,
    env: dict[str, str],
    on_started: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> int:
    """Run ``command`` until it exits or this process is told to stop (SIGINT, SIGTERM),
    then stop it and its descendants. ``on_started`` runs once the process is up (e.g. to
    register node keys with a SuperLink); if it raises, the process is stopped and the
    error propagates. Returns the process's exit code (0 when stopped on request)."""
    process = subprocess.Popen(list(command), env=env, stdin=subprocess.DEVNULL)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stopped(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if on_started is not None:
            on_started(process)
        return process.wait()
    except _Stopped:
        return 0
    finally:
        # Stop the tree while it is whole: once the process is gone its SuperExec is
        # re-parented and can no longer be found from it.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        stop_process_tree(process)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Stopped(BaseException):
    """This process was asked to stop (raised from the signal handler)."""
