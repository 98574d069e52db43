"""``fedrisk node cross-verify``: the factory node's checks of ERP and MES against energy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from models.errors import ModelsError

from .activity import FactoryActivity, load_activity
from .checks import cross_verify
from .tables import DEFAULT_TZ, activity_from_node

__all__ = ["cross_verify_command"]

_FORMS = (
    "give either --energy, --production and --invoices (CSV files) or --node and --firm "
    "(the node's raw store, after `fedrisk node ingest`)"
)


class _UsageError(ValueError):
    """The options name neither form, or both, or half of one."""


def _activity(
    *,
    csvs: dict[str, Path | None],
    node: Path | None,
    firm: str | None,
    timezone: str,
) -> FactoryActivity:
    given = [name for name, path in csvs.items() if path is not None]
    if given and (node is not None or firm is not None):
        raise _UsageError(f"both forms given: {_FORMS}, not both")
    if given:
        missing = [f"--{name}" for name, path in csvs.items() if path is None]
        if missing:
            raise _UsageError(f"missing {', '.join(missing)}: {_FORMS}")
        return load_activity(**{name: Path(str(path)) for name, path in csvs.items()})
    if node is None and firm is None:
        raise _UsageError(_FORMS)
    if node is None or firm is None:
        raise _UsageError(f"missing {'--firm' if firm is None else '--node'}: {_FORMS}")
    return activity_from_node(node, firm=firm, tz=timezone)


def cross_verify_command(
    energy: Annotated[Path | None, typer.Option(help="Meter readings CSV: timestamp,kwh.")] = None,
    production: Annotated[Path | None, typer.Option(help="MES CSV: date,units.")] = None,
    invoices: Annotated[
        Path | None, typer.Option(help="ERP CSV: invoice_id,date,customer,quantity,amount.")
    ] = None,
    node: Annotated[
        Path | None,
        typer.Option(help="Node folder whose raw.db `fedrisk node ingest` filled (with --firm)."),
    ] = None,
    firm: Annotated[
        str | None, typer.Option(help="The firm to check, by its firm_id (with --node).")
    ] = None,
    timezone: Annotated[
        str,
        typer.Option(help="With --node: the zone the node ingested with (IANA name)."),
    ] = DEFAULT_TZ,
    output: Annotated[
        Path | None, typer.Option(help="Write the flags as JSON (what may leave the node).")
    ] = None,
) -> None:
    """Cross-check declared activity (ERP invoices, MES output) against the meter, here at
    the node, from three CSV files or from one firm's rows in the node's raw store; print
    the flags, with the figures that raised them, and optionally write them (the only
    thing a lender receives: no reading, no invoice)."""
    console = Console(stderr=True, soft_wrap=True)
    csvs = {"energy": energy, "production": production, "invoices": invoices}
    try:
        activity = _activity(csvs=csvs, node=node, firm=firm, timezone=timezone)
    except _UsageError as exc:
        console.print(f"[bold red]error[/]: {exc}")
        raise typer.Exit(code=2) from None
    except (ModelsError, ValueError) as exc:
        console.print(f"[bold red]error[/]: {exc}")
        raise typer.Exit(code=1) from None
    flags = cross_verify(activity)
    out = Console(soft_wrap=True, highlight=False)
    for flag in flags:
        out.print(f"[bold]{flag.rule}[/] {flag.start} to {flag.end}: {flag.text}")
    days = activity.daily()
    whose = "" if firm is None else f" for firm {firm}"
    console.print(f"{len(flags)} flag(s) over {int(days['metered'].sum())} metered days{whose}")
    if output is not None:
        output.write_text(json.dumps([f.to_dict() for f in flags], indent=2) + "\n")
        console.print(f"flags written to {output}")
