"""A participant's SuperNode: Flower's ``flower-supernode`` next to the participant's data,
connecting to the coordinator's SuperLink over TLS and proving who it is with its node key.

The SuperNode runs the participant's ClientApp for every run; ``--node-config`` tells the
ClientApp which federation file (this machine's copy) and which participant it serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models.flower_processes import flower_executable

from .node_credentials import NodeKey

__all__ = ["DEFAULT_NODE_PORT", "Supernode"]

DEFAULT_NODE_PORT = 9094


@dataclass(frozen=True)
class Supernode:
    """How to start one participant's SuperNode. ``ca_cert`` and ``key`` are ``None``
    only for an insecure connection (``--insecure``)."""

    federation: Path
    participant: str
    superlink: str
    port: int
    ca_cert: Path | None
    key: NodeKey | None
    host: str = "127.0.0.1"

    def node_config(self) -> str:
        """``--node-config``: this machine's federation file and the participant's name."""
        return f'federation="{self.federation.resolve()}" participant="{self.participant}"'

    def command(self) -> list[str]:
        """The ``flower-supernode`` command line."""
        command = [
            flower_executable("flower-supernode"),
            "--superlink", self.superlink,
            # The ClientApp Runtime API: local to this machine, one port per SuperNode.
            "--host", self.host,
            "--port", str(self.port),
            "--node-config", self.node_config(),
        ]  # fmt: skip
        if self.ca_cert is None or self.key is None:
            return [*command, "--insecure"]
        return [
            *command,
            "--root-certificates", str(self.ca_cert),
            "--auth-supernode-private-key", str(self.key.private),
        ]  # fmt: skip
