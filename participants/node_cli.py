"""A data owner's deployment commands: ``fedrisk keys node`` (the node's authentication key)
and ``fedrisk node start`` (the participant's SuperNode)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from models.errors import ModelsError
from models.federation import FederationSpec, load_federation
from models.flower_processes import flower_environment, run_foreground
from models.layout import deployment_dir, node_keys_dir

from .crossverify.cli import cross_verify_command
from .edge.cli import ingest_command
from .monitoring.cli import monitor_command
from .node_credentials import NodeKeyError, issue_node_key, node_key
from .supernode import DEFAULT_NODE_PORT, Supernode

__all__ = ["keys_node", "node_cli"]

node_cli = typer.Typer(
    help="A participant's node on Flower's deployment engine (SuperNode).", no_args_is_help=True
)

node_cli.command("cross-verify")(cross_verify_command)
node_cli.command("ingest")(ingest_command)
node_cli.command("monitor")(monitor_command)

FederationArg = Annotated[Path, typer.Argument(help="Federation file (TOML).", exists=True)]
ParticipantOption = Annotated[str, typer.Option(help="The participant this node serves.")]
KeysOption = Annotated[
    Path | None,
    typer.Option(help="Node key folder (default: $FEDRISK_HOME/node-keys/FEDERATION)."),
]


def _fail(console: Console, message: object) -> typer.Exit:
    console.print(f"[bold red]error[/]: {message}")
    return typer.Exit(code=1)


def _spec(federation: Path, participant: str, console: Console) -> FederationSpec:
    try:
        spec = load_federation(federation)
    except (ModelsError, OSError) as exc:
        raise _fail(console, exc) from None
    names = [p.name for p in spec.participants]
    if participant not in names:
        known = ", ".join(names)
        raise _fail(console, f"{federation}: no participant {participant!r} (has {known})")
    return spec


def keys_node(
    federation: FederationArg,
    participant: ParticipantOption,
    out: KeysOption = None,
    force: Annotated[bool, typer.Option(help="Replace an existing node key.")] = False,
) -> None:
    """Create this participant's node key (EC P-384) for Flower's node authentication."""
    console = Console(stderr=True)
    spec = _spec(federation, participant, console)
    try:
        made = issue_node_key(out or node_keys_dir(spec), participant, force=force)
    except NodeKeyError as exc:
        raise _fail(console, exc) from None
    console.print(
        f"Node key for {participant}: {made.private} (mode 0600, stays here). Send "
        f"{made.public} to the steward, who puts it in the deployment's nodes/ folder."
    )


@node_cli.command("start")
def start(
    federation: FederationArg,
    participant: ParticipantOption,
    superlink: Annotated[str, typer.Option(help="The coordinator's SuperLink, HOST:PORT.")] = (
        "127.0.0.1:9093"
    ),
    port: Annotated[
        int, typer.Option(help="Local port for the ClientApp runtime (one per node).")
    ] = DEFAULT_NODE_PORT,
    ca: Annotated[
        Path | None,
        typer.Option(help="The federation's CA certificate (default: the deployment's ca.crt)."),
    ] = None,
    keys: KeysOption = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="No TLS, no node key (loopback experiments only).")
    ] = False,
) -> None:
    """Start this participant's SuperNode and keep it running."""
    console = Console(stderr=True)
    spec = _spec(federation, participant, console)
    ca_cert, key = None, None
    if not insecure:
        ca_cert = ca or deployment_dir(spec) / "ca.crt"
        if not ca_cert.is_file():
            raise _fail(
                console,
                f"no CA certificate {ca_cert}: pass --ca with the ca.crt the steward sent "
                "(or --insecure for a SuperLink started with --insecure)",
            )
        try:
            key = node_key(keys or node_keys_dir(spec), participant)
        except NodeKeyError as exc:
            raise _fail(console, exc) from None
    node = Supernode(
        federation=spec.path,
        participant=participant,
        superlink=superlink,
        port=port,
        ca_cert=ca_cert,
        key=key,
    )
    mode = "insecure" if insecure else "TLS, node key " + str(key.public.name if key else "")
    console.print(f"SuperNode for {participant} → {superlink} ({mode})")
    try:
        code = run_foreground(node.command(), env=flower_environment())
    except ModelsError as exc:
        raise _fail(console, exc) from None
    raise typer.Exit(code=code)
