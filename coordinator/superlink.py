"""The coordinator's SuperLink: Flower's ``flower-superlink`` with TLS and node
authentication on, its state in a SQLite file, and the participants' node keys (the
allow-list) registered as soon as it answers.

The SuperLink starts a SuperExec which launches the coordinator's ServerApp for each run
``fedrisk link run`` submits. Turning TLS off takes ``insecure=True`` (``--insecure``);
node authentication needs TLS, so it goes with it.
"""

from __future__ import annotations

import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.flower_processes import flower_executable

from .flwr_control import ControlError, FlwrControl
from .link_credentials import LinkCredentials

__all__ = ["DEFAULT_PORT", "Superlink", "wait_until_healthy"]

DEFAULT_PORT = 9093
START_TIMEOUT_S = 60.0
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class Superlink:
    """How to start one SuperLink: where it listens, its credentials (``None`` = insecure)
    and its state file."""

    host: str
    port: int
    credentials: LinkCredentials | None
    database: Path

    @property
    def secure(self) -> bool:
        return self.credentials is not None

    @property
    def local_address(self) -> str:
        """Where this machine's own tools reach it (loopback when bound to every address)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    def command(self) -> list[str]:
        """The ``flower-superlink`` command line."""
        command = [
            flower_executable("flower-superlink"),
            "--host", self.host,
            "--port", str(self.port),
            "--database", str(self.database),
            # fedrisk is installed beside Flower: run the apps in this environment instead
            # of building one per run with uv (which would also need the network).
            "--disable-runtime-dependency-installation",
        ]  # fmt: skip
        if self.credentials is None:
            return [*command, "--insecure"]
        return [
            *command,
            "--ssl-ca-certfile", str(self.credentials.ca_cert),
            "--ssl-certfile", str(self.credentials.server_cert),
            "--ssl-keyfile", str(self.credentials.server_key),
            "--enable-supernode-auth",
        ]  # fmt: skip

    def control(self, flwr_home: Path) -> FlwrControl:
        """The ``flwr`` connection this machine's steward tools use."""
        ca = self.credentials.ca_cert if self.credentials is not None else None
        return FlwrControl(home=flwr_home, address=self.local_address, ca_cert=ca)

    def on_started(
        self, flwr_home: Path, *, report: Callable[[str], None]
    ) -> Callable[[subprocess.Popen[bytes]], None]:
        """What to do once the process runs: wait for it to answer, then register every
        node key in the allow-list folder."""

        def started(process: subprocess.Popen[bytes]) -> None:
            ca = self.credentials.ca_cert if self.credentials is not None else None
            wait_until_healthy(self.local_address, ca_cert=ca, process=process)
            if self.credentials is None:
                report(f"SuperLink up on {self.host}:{self.port} (insecure: no TLS, no node auth)")
                return
            control = self.control(flwr_home)
            keys = self.credentials.node_keys()
            added = [key.stem for key in keys if control.register(key, name=key.stem)]
            kept = sorted({key.stem for key in keys} - set(added))
            report(
                f"SuperLink up on {self.host}:{self.port} (TLS, node authentication); "
                f"registered {', '.join(added) or 'no new node'}"
                + (f"; already registered {', '.join(kept)}" if kept else "")
            )
            if not keys:
                report(
                    f"no node keys in {self.credentials.nodes}: no participant can connect "
                    "until its NAME.pub is copied there and the SuperLink restarted"
                )

        return started


def wait_until_healthy(
    address: str,
    *,
    ca_cert: Path | None,
    process: subprocess.Popen[bytes] | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> None:
    """Return once the SuperLink at ``address`` answers its health check; raise
    :class:`ControlError` if it exits first or ``timeout_s`` passes."""
    scheme = "http" if ca_cert is None else "https"
    context = None if ca_cert is None else ssl.create_default_context(cafile=str(ca_cert))
    url = f"{scheme}://{address}/health"
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ControlError(f"the SuperLink exited with code {process.returncode}: see its log")
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        time.sleep(0.3)
    raise ControlError(f"no answer from {url} after {timeout_s:.0f} s ({last})")
