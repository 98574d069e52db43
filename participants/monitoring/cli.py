"""``fedrisk node monitor``: the factory node's post-loan monitor over its meter readings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from models.errors import ModelsError

from .monitor import FactoryMonitor
from .readings import read_readings
from .reporting import CoordinatorLink
from .watches import load_watches

__all__ = ["monitor_command"]


def monitor_command(
    readings: Annotated[
        Path, typer.Option(help="Readings CSV: timestamp,kwh[,running][,failures].")
    ],
    factory: Annotated[str, typer.Option(help="This factory's id (as in the lender's loans).")],
    subject: Annotated[str, typer.Option(help="The factory's firm (its credit code).")],
    state: Annotated[
        Path, typer.Option(help="The monitor's state (SQLite, kept between runs).")
    ] = Path("monitor.sqlite"),
    watches: Annotated[
        Path | None, typer.Option(help="TOML overriding the default watches.")
    ] = None,
    idle_kwh: Annotated[
        float | None,
        typer.Option(help="Running above this kWh per reading (without a running column)."),
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
    changes it detected, and send the pending ones to the coordinator or write them."""
    console = Console(stderr=True, soft_wrap=True)
    try:
        rows = read_readings(readings)
        monitor = FactoryMonitor(
            factory=factory,
            subject_id=subject,
            watches=load_watches(watches),
            idle_kwh=idle_kwh,
            state=state,
        )
    except ModelsError as exc:
        console.print(f"[bold red]error[/]: {exc}")
        raise typer.Exit(code=1) from None
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
