"""The steward's deployment commands: ``fedrisk keys tls`` (the SuperLink's certificates),
``fedrisk link start`` (the SuperLink), ``fedrisk link run`` (a training run on it) and
``fedrisk link nodes`` (who is registered and online)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from models.errors import ModelsError
from models.federation import FederationSpec, load_federation
from models.flower_processes import flower_environment, run_foreground
from models.layout import deployment_dir

from .flwr_control import ControlError, FlwrControl, flower_app_dir
from .link_credentials import (
    CredentialsError,
    LinkCredentials,
    issue_link_credentials,
    link_credentials,
)
from .superlink import DEFAULT_PORT, LOOPBACK, Superlink

__all__ = ["keys_cli", "link_cli"]

keys_cli = typer.Typer(help="Keys and certificates for a federation.", no_args_is_help=True)
link_cli = typer.Typer(
    help="The coordinator on Flower's deployment engine (SuperLink, runs).", no_args_is_help=True
)

FederationArg = Annotated[Path, typer.Argument(help="Federation file (TOML).", exists=True)]
CredentialsOption = Annotated[
    Path | None,
    typer.Option(help="Deployment folder (default: <federation output>/deployment)."),
]
InsecureOption = Annotated[
    bool,
    typer.Option(
        "--insecure", help="No TLS and no node authentication (loopback experiments only)."
    ),
]
RUN_TIMEOUT_S = 3600.0


def _fail(console: Console, message: object) -> typer.Exit:
    console.print(f"[bold red]error[/]: {message}")
    return typer.Exit(code=1)


def _spec(federation: Path, console: Console) -> FederationSpec:
    try:
        return load_federation(federation)
    except (ModelsError, OSError) as exc:
        raise _fail(console, exc) from None


@keys_cli.command("tls")
def tls(
    federation: FederationArg,
    host: Annotated[
        list[str] | None,
        typer.Option(help="A name or address participants reach the SuperLink by (repeat)."),
    ] = None,
    out: CredentialsOption = None,
    force: Annotated[bool, typer.Option(help="Replace an existing CA and certificate.")] = False,
) -> None:
    """Create the federation's CA and the SuperLink's TLS certificate (ECDSA P-384)."""
    console = Console(stderr=True)
    spec = _spec(federation, console)
    folder = out or deployment_dir(spec)
    try:
        made = issue_link_credentials(folder, names=host or (), federation=spec.name, force=force)
    except CredentialsError as exc:
        raise _fail(console, exc) from None
    console.print(
        f"TLS for {spec.name} in {made.folder}: give {made.ca_cert.name} to every participant; "
        f"{made.ca_key.name} and {made.server_key.name} stay here (mode 0600). Put each "
        f"participant's NAME.pub into {made.nodes} to allow its node."
    )


def _credentials(
    spec: FederationSpec, folder: Path | None, *, insecure: bool, console: Console
) -> LinkCredentials | None:
    if insecure:
        return None
    try:
        return link_credentials(folder or deployment_dir(spec))
    except CredentialsError as exc:
        raise _fail(console, exc) from None


@link_cli.command("start")
def start(
    federation: FederationArg,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every one).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port of the SuperLink's APIs.")] = DEFAULT_PORT,
    credentials: CredentialsOption = None,
    insecure: InsecureOption = False,
) -> None:
    """Start the SuperLink (TLS and node authentication on) and keep it running."""
    console = Console(stderr=True)
    spec = _spec(federation, console)
    found = _credentials(spec, credentials, insecure=insecure, console=console)
    folder = found.folder if found is not None else (credentials or deployment_dir(spec))
    folder.mkdir(parents=True, exist_ok=True)
    if found is None and host not in LOOPBACK:
        console.print(
            f"[bold yellow]warning[/]: insecure SuperLink on {host}: anyone who reaches "
            "this port can join the federation or read its traffic"
        )
    link = Superlink(host=host, port=port, credentials=found, database=folder / "superlink.db")
    try:
        code = run_foreground(
            link.command(),
            env=flower_environment(flwr_home=folder / "flwr-home"),
            on_started=link.on_started(folder / "flwr-home", report=console.print),
        )
    except (ControlError, ModelsError) as exc:
        raise _fail(console, exc) from None
    raise typer.Exit(code=code)


def _control(
    spec: FederationSpec,
    superlink: str,
    credentials: Path | None,
    *,
    insecure: bool,
    console: Console,
) -> FlwrControl:
    folder = credentials or deployment_dir(spec)
    if insecure:
        return FlwrControl(home=folder / "flwr-home", address=superlink, ca_cert=None)
    ca = folder / "ca.crt"
    if not ca.is_file():
        raise _fail(
            console,
            f"no {ca}: pass --credentials FOLDER holding the federation's ca.crt "
            "(or --insecure for a SuperLink started with --insecure)",
        )
    return FlwrControl(home=folder / "flwr-home", address=superlink, ca_cert=ca)


SuperlinkOption = Annotated[str, typer.Option(help="The SuperLink's HOST:PORT.")]


@link_cli.command("run")
def run(
    federation: FederationArg,
    superlink: SuperlinkOption = f"127.0.0.1:{DEFAULT_PORT}",
    report: Annotated[
        Path | None,
        typer.Option(help="Where the ServerApp writes its report (default: runs/reports/)."),
    ] = None,
    credentials: CredentialsOption = None,
    insecure: InsecureOption = False,
    timeout: Annotated[float, typer.Option(help="Give up (and stop the run) after s.")] = (
        RUN_TIMEOUT_S
    ),
    app: Annotated[Path | None, typer.Option(help="Flower App folder (deploy/flower).")] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Go on with the last unfinished training run from its newest checkpoint "
            "(after a coordinator crash) instead of starting a new one.",
        ),
    ] = False,
) -> None:
    """Train the federation on the SuperLink's nodes; stream the log, print the result."""
    console = Console(stderr=True)
    spec = _spec(federation, console)
    control = _control(spec, superlink, credentials, insecure=insecure, console=console)
    report_path = (report or spec.output_dir / "reports" / f"{spec.name}.json").resolve()
    try:
        app_dir = app or flower_app_dir()
        outcome = control.run(
            app_dir,
            {"federation": str(spec.path.resolve()), "report": str(report_path), "resume": resume},
            timeout_s=timeout,
            on_output=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except ControlError as exc:
        raise _fail(console, exc) from None
    if not outcome.completed:
        raise _fail(
            console,
            f"run {outcome.run_id} ended {outcome.status}: {outcome.details or 'no details'}"
            " (the SuperLink's and nodes' logs say more)",
        )
    _print_report(console, report_path, seconds=outcome.seconds, run_id=outcome.run_id)


def _print_report(console: Console, path: Path, *, seconds: float, run_id: int | None) -> None:
    if not path.is_file():
        console.print(f"run {run_id} completed in {seconds:.1f} s (no report at {path})")
        return
    report = json.loads(path.read_text(encoding="utf-8"))
    for record in report.get("rounds", []):
        console.print(
            f"round {record['server_round']:>3}  {record['status']}  AUC {_auc(record.get('auc'))}"
            f"  {len(record.get('contributors', []))} contributors"
        )
    final = report.get("final", {})
    console.print(
        f"run {run_id} completed in {seconds:.1f} s: final AUC {_auc(final.get('auc'))}; "
        f"report {path}"
    )
    if report.get("model_version"):
        console.print(f"published {report['federation']} {report['model_version']}")


def _auc(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"


@link_cli.command("nodes")
def nodes(
    federation: FederationArg,
    superlink: SuperlinkOption = f"127.0.0.1:{DEFAULT_PORT}",
    credentials: CredentialsOption = None,
    insecure: InsecureOption = False,
) -> None:
    """List the SuperNodes the SuperLink knows, online or not."""
    console = Console(stderr=True)
    spec = _spec(federation, console)
    control = _control(spec, superlink, credentials, insecure=insecure, console=console)
    try:
        listed = control.nodes()
    except ControlError as exc:
        raise _fail(console, exc) from None
    for node in listed:
        typer.echo(f"{node.get('node-id')}\t{node.get('status')}\t{node.get('name') or ''}")
