"""The steward's side of Flower's Control API, through Flower's own ``flwr`` CLI: the
connection to a SuperLink, registering participants' node keys, submitting a run of
fedrisk's Flower App and waiting for it to end.

``flwr`` reads its connections from ``$FLWR_HOME/config.toml``; each deployment keeps a
private ``FLWR_HOME`` (``<deployment>/flwr-home``) holding one connection, ``fedrisk``,
so the steward's own ``~/.flwr`` is never read or changed.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.flower_processes import flower_environment, flower_executable

__all__ = [
    "CONNECTION",
    "ControlError",
    "FlwrControl",
    "RunOutcome",
    "flower_app_dir",
]

CONNECTION = "fedrisk"
CLI_TIMEOUT_S = 60.0
POLL_S = 1.0


class ControlError(Exception):
    """The ``flwr`` CLI could not do what was asked (the SuperLink refused or is down)."""


def flower_app_dir() -> Path:
    """The Flower App definition (``deploy/flower``) of this checkout."""
    found = Path(__file__).resolve().parents[1] / "deploy" / "flower"
    if not (found / "pyproject.toml").is_file():
        raise ControlError(
            f"{found / 'pyproject.toml'} not found: run from a fedrisk checkout installed "
            "with make setup (pip install -e .), or pass --app"
        )
    return found


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended: its id, final status (``finished:completed`` …) and its log."""

    run_id: int | None
    status: str
    details: str
    output: str
    seconds: float

    @property
    def completed(self) -> bool:
        return self.status == "finished:completed"


@dataclass(frozen=True)
class FlwrControl:
    """``flwr`` pointed at one SuperLink through a private ``FLWR_HOME``.

    ``ca_cert`` is the deployment's CA certificate (TLS); ``None`` means an insecure
    connection, which only ``--insecure`` asks for.
    """

    home: Path
    address: str
    ca_cert: Path | None

    def write_connection(self) -> Path:
        """Write ``config.toml`` with the ``fedrisk`` connection (replacing an old one)."""
        self.home.mkdir(parents=True, exist_ok=True)
        lines = [
            "[superlink]",
            f'default = "{CONNECTION}"',
            "",
            f"[superlink.{CONNECTION}]",
            f"address = {json.dumps(self.address)}",
        ]
        if self.ca_cert is None:
            lines.append("insecure = true")
        else:
            lines.append(f"root-certificates = {json.dumps(str(self.ca_cert.resolve()))}")
        path = self.home / "config.toml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def flwr(
        self, *args: str, timeout_s: float = CLI_TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        """Run ``flwr ARGS`` against this SuperLink; its result, whatever the exit code."""
        self.write_connection()
        try:
            return subprocess.run(
                [flower_executable("flwr"), *args],
                cwd=self.home,
                env=flower_environment(flwr_home=self.home),
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ControlError(
                f"flwr {' '.join(args[:2])}: no answer from {self.address} in {timeout_s:.0f} s"
            ) from None

    def _json(self, *args: str) -> dict[str, Any]:
        done = self.flwr(*args, "--format", "json")
        try:
            parsed = json.loads(done.stdout)
        except json.JSONDecodeError:
            parsed = None
        if done.returncode != 0 or not isinstance(parsed, dict) or not parsed.get("success", True):
            reason = _error_text(parsed) or (done.stderr or done.stdout).strip()[-500:]
            raise ControlError(f"flwr {' '.join(args[:2])} at {self.address}: {reason}")
        return parsed

    def nodes(self) -> list[dict[str, Any]]:
        """The SuperNodes the SuperLink knows (registered keys, online or not)."""
        return list(self._json("supernode", "list", CONNECTION).get("nodes", []))

    def online(self) -> int:
        """How many SuperNodes are connected now."""
        return sum(1 for node in self.nodes() if node.get("status") == "online")

    def register(self, public_key: Path, *, name: str | None = None) -> bool:
        """Allow the node holding ``public_key``'s private key to connect. ``False`` when
        the key was registered already (a SuperLink with a ``--database`` keeps it)."""
        done = self.flwr("supernode", "register", str(public_key), CONNECTION, "--format", "json")
        text = done.stdout + done.stderr
        if done.returncode == 0 and '"success": false' not in text.replace(" ", " "):
            return True
        if re.search(r"already", text, re.IGNORECASE):
            return False
        reason = _error_text(_maybe_json(done.stdout)) or text.strip()[-500:]
        raise ControlError(f"registering {public_key.name} at {self.address}: {reason}")

    def run(
        self,
        app: Path,
        run_config: Mapping[str, str | bool],
        *,
        timeout_s: float,
        on_output: Callable[[str], None] | None = None,
    ) -> RunOutcome:
        """Submit a run of ``app``, stream its log (to ``on_output``, line by line) and wait
        at most ``timeout_s`` for it to end; a run still going then is stopped."""
        self.write_connection()
        overrides = " ".join(f"{key}={json.dumps(value)}" for key, value in run_config.items())
        command = [flower_executable("flwr"), "run", str(app), CONNECTION, "--stream"]
        if overrides:
            command += ["--run-config", overrides]
        started = time.monotonic()
        deadline = started + timeout_s
        lines: list[str] = []
        with subprocess.Popen(
            command,
            cwd=self.home,
            env=flower_environment(flwr_home=self.home),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if on_output is not None:
                    on_output(line.rstrip("\n"))
                if time.monotonic() > deadline:
                    process.kill()
                    break
        output = "".join(lines)
        match = re.search(r"Successfully started run (\d+)", output)
        if match is None:
            seconds = time.monotonic() - started
            return RunOutcome(None, "not-started", _last_error(output), output, seconds)
        run_id = int(match.group(1))
        status, details = self.wait(run_id, deadline=deadline)
        if not status.startswith("finished"):
            self.flwr("stop", str(run_id), CONNECTION)
            details = f"still {status} after {timeout_s:.0f} s: stopped"
        return RunOutcome(run_id, status, details, output, time.monotonic() - started)

    def wait(self, run_id: int, *, deadline: float) -> tuple[str, str]:
        """The run's status once it has finished, or its last status at ``deadline``."""
        status, details = "unknown", ""
        while True:
            try:
                runs = self._json("list", CONNECTION, "--run-id", str(run_id)).get("runs", [])
            except ControlError:
                runs = []
            if runs:
                status, details = runs[0]["status"], runs[0].get("status-details", "")
                if status.startswith("finished"):
                    return status, details
            if time.monotonic() >= deadline:
                return status, details
            time.sleep(POLL_S)


def _maybe_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _error_text(parsed: Any) -> str:
    if isinstance(parsed, dict):
        for key in ("error-message", "error", "message"):
            if parsed.get(key):
                return str(parsed[key])
    return ""


def _last_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "flwr run printed nothing"
