"""``fedrisk node monitor``: the factory node's post-loan monitor over its meter readings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from models.errors import ModelsError
from participants.edge import MONTHLY_FILE, RAW_DATABASE, EdgeError, EdgeSettings

from .closures import load_closures
from .monitor import FactoryMonitor
from .node_readings import DEFAULT_TIMEZONE, raw_database, readings_from_node
from .readings import read_readings
from .reporting import CoordinatorLink
from .scoring import ChangeScorer
from .watches import load_watches

__all__ = ["monitor_command"]


def monitor_command(
    factory: Annotated[str, typer.Option(help="This factory's id (as in the lender's loans).")],
    subject: Annotated[
        str, typer.Option(help="The factory's firm (its credit code; with --node, its firm_id).")
    ],
    readings: Annotated[
        Path | None,
        typer.Option(help="Readings CSV: timestamp,kwh[,running][,failures] (or --node)."),
    ] = None,
    node: Annotated[
        Path | None,
        typer.Option(help="Node folder of `fedrisk node ingest`: read its raw.db (or --readings)."),
    ] = None,
    timezone: Annotated[
        str,
        typer.Option(help="With --node: the zone the node ingested with (IANA name)."),
    ] = DEFAULT_TIMEZONE,
    state: Annotated[
        Path, typer.Option(help="The monitor's state (SQLite, kept between runs).")
    ] = Path("monitor.sqlite"),
    watches: Annotated[
        Path | None, typer.Option(help="TOML overriding the default watches.")
    ] = None,
    closures: Annotated[
        Path | None,
        typer.Option(help="CSV first,last[,reason] of planned closures: days left out."),
    ] = None,
    idle_kwh: Annotated[
        float | None,
        typer.Option(help="Running above this kWh per reading (without a running column)."),
    ] = None,
    registry: Annotated[
        Path | None,
        typer.Option(help="Model registry: add the firm's score before and after each change."),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="With --registry: the horizontal IoT model that scores.")
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="With --registry: the model version (default: latest).")
    ] = None,
    features: Annotated[
        Path | None,
        typer.Option(
            help=f"With --registry: the firm's monthly indicators (default NODE/{MONTHLY_FILE})."
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Write the pending events as JSON (what may leave).")
    ] = None,
    coordinator: Annotated[
        str | None, typer.Option(help="Send the events to this coordinator URL.")
    ] = None,
    client_id: Annotated[str | None, typer.Option(help="The node's API client id.")] = None,
    client_secret_file: Annotated[
        Path | None, typer.Option(help="File holding the node's API client secret.")
    ] = None,
) -> None:
    """Feed new readings to the monitor (readings it already saw are skipped), print the
    changes it detected, and send the pending ones to the coordinator or write them.

    Readings come from a CSV (--readings) or from the node's raw store (--node, after
    `fedrisk node ingest`): one reading per 15-minute slot of the firm --subject, only
    the slots after the last one the monitor saw."""
    console = Console(stderr=True, soft_wrap=True)
    if (readings is None) == (node is None):
        given = "both" if readings is not None else "neither"
        console.print(
            f"[bold red]error[/]: give exactly one of --readings CSV or --node DIR ({given} given)"
        )
        raise typer.Exit(code=1)
    try:
        rows = read_readings(readings) if readings is not None else []
        if node is not None:  # checked before the monitor's state is created
            EdgeSettings(timezone=timezone)
            raw_database(node)
        scorer = _scorer(registry, model=model, version=version, features=features, node=node)
        monitor = FactoryMonitor(
            factory=factory,
            subject_id=subject,
            watches=load_watches(watches),
            idle_kwh=idle_kwh,
            state=state,
            score=None if scorer is None else scorer.score,
            closures=load_closures(closures) if closures is not None else (),
        )
    except (ModelsError, EdgeError) as exc:
        console.print(f"[bold red]error[/]: {exc}")
        raise typer.Exit(code=1) from None
    if node is not None:
        try:
            rows = readings_from_node(
                node, firm=subject, after=monitor.last_reading_at, tz=timezone
            )
        except (ModelsError, EdgeError) as exc:
            monitor.close()
            console.print(f"[bold red]error[/]: {exc}")
            raise typer.Exit(code=1) from None
        since = monitor.last_reading_at
        console.print(
            f"{node / RAW_DATABASE}: {len(rows):,} new slot(s) of {subject}"
            + (f" after {since:%Y-%m-%d %H:%M}" if since is not None else "")
        )
    events = monitor.add(rows)
    console.print(
        f"{len(rows):,} readings ({monitor.skipped:,} already seen), {len(monitor.days())} days, "
        f"{len(events)} new change(s)"
    )
    for event in events:
        console.print(f"  [bold]{event.indicator}[/]: {event.text}")
    pending = monitor.pending()
    if output is not None:
        output.write_text(json.dumps(pending, indent=2) + "\n")
        console.print(f"{len(pending)} pending event(s) written to {output}")
    if coordinator is not None:
        if client_id is None or client_secret_file is None:
            console.print(
                "[bold red]error[/]: --coordinator needs --client-id and --client-secret-file "
                "(fedrisk apps add ... --scope monitoring:report)"
            )
            raise typer.Exit(code=1)
        link = CoordinatorLink(
            coordinator, client_id=client_id, client_secret=client_secret_file.read_text().strip()
        )
        try:
            sent = link.report(monitor)
        finally:
            link.close()
        console.print(
            f"sent: {len(sent.alerts)} alert(s), {len(sent.refused)} refused "
            f"{sent.refused or ''}, {sent.pending} still pending"
        )
    monitor.close()


def _scorer(
    registry: Path | None,
    *,
    model: str | None,
    version: str | None,
    features: Path | None,
    node: Path | None,
) -> ChangeScorer | None:
    """The scorer the options ask for, or None without --registry."""
    if registry is None:
        if model is not None or version is not None or features is not None:
            raise ModelsError("--model, --version and --features need --registry (the models)")
        return None
    if model is None:
        raise ModelsError("--registry needs --model: the horizontal IoT model that scores")
    if features is None:
        if node is None:
            raise ModelsError(
                "--registry with --readings needs --features: the firm's monthly indicators "
                f"({MONTHLY_FILE} of `fedrisk node ingest`)"
            )
        features = node / MONTHLY_FILE
    if not features.is_file():
        raise ModelsError(
            f"{features}: no monthly indicators; run `fedrisk node ingest` first "
            "or name the file with --features"
        )
    return ChangeScorer(registry=registry, model=model, features=features, version=version)
