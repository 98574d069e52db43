"""``fedrisk node cross-verify``: the factory node's checks of ERP and MES against energy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from models.errors import ModelsError

from .activity import load_activity
from .checks import cross_verify

__all__ = ["cross_verify_command"]


def cross_verify_command(
    energy: Annotated[Path, typer.Option(help="Meter readings CSV: timestamp,kwh.")],
    production: Annotated[Path, typer.Option(help="MES CSV: date,units.")],
    invoices: Annotated[
        Path, typer.Option(help="ERP CSV: invoice_id,date,customer,quantity,amount.")
    ],
    output: Annotated[
        Path | None, typer.Option(help="Write the flags as JSON (what may leave the node).")
    ] = None,
) -> None:
    """Cross-check declared activity (ERP invoices, MES output) against the meter, here at
    the node; print the flags, with the figures that raised them, and optionally write them
    (the only thing a lender receives: no reading, no invoice)."""
    console = Console(stderr=True, soft_wrap=True)
    try:
        activity = load_activity(energy=energy, production=production, invoices=invoices)
    except ModelsError as exc:
        console.print(f"[bold red]error[/]: {exc}")
        raise typer.Exit(code=1) from None
    flags = cross_verify(activity)
    out = Console(soft_wrap=True, highlight=False)
    for flag in flags:
        out.print(f"[bold]{flag.rule}[/] {flag.start} to {flag.end}: {flag.text}")
    days = activity.daily()
    console.print(f"{len(flags)} flag(s) over {int(days['metered'].sum())} metered days")
    if output is not None:
        output.write_text(json.dumps([f.to_dict() for f in flags], indent=2) + "\n")
        console.print(f"flags written to {output}")
