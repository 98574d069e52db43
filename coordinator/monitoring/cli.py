"""``fedrisk monitor``: the lender's loan book for post-loan monitoring, and its alerts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from coordinator.serving.settings import ServeSettings
from models.errors import ModelsError

from .alerts import AlertBook
from .loans import LoanBook
from .webhooks import Outbox

__all__ = ["monitor_cli"]

monitor_cli = typer.Typer(
    help="Post-loan monitoring: the loans watched, the alerts raised, their webhooks.",
    no_args_is_help=True,
)

RootOption = Annotated[
    Path, typer.Option(help="Serving root (state under ROOT/serving, as `fedrisk serve ROOT`).")
]


def _state(root: Path) -> Path:
    return ServeSettings.for_root(root).state_dir


@monitor_cli.command("loans")
def loans(
    file: Annotated[
        Path | None,
        typer.Argument(help="CSV loan_id,subject_id,factory,institution,opened_on[,closed_on]."),
    ] = None,
    root: RootOption = Path("fedrisk-demo"),
) -> None:
    """Import loans (all rows or none) and list the loan book."""
    console = Console(soft_wrap=True)
    book = LoanBook(_state(root) / "monitoring.sqlite")
    try:
        if file is not None:
            count = book.import_csv(file)
            Console(stderr=True).print(f"{count} loans imported from {file}")
    except ModelsError as exc:
        Console(stderr=True).print(f"[bold red]error[/]: {exc}")
        raise typer.Exit(code=1) from None
    table = Table("loan", "factory", "institution", "opened", "closed")
    for loan in book.loans():
        closed = loan.closed_on.isoformat() if loan.closed_on else ""
        table.add_row(loan.loan_id, loan.factory, loan.institution, str(loan.opened_on), closed)
    console.print(table)
    book.close()


@monitor_cli.command("alerts")
def alerts(
    institution: Annotated[str, typer.Option(help="Whose alerts.")] = "demo-bank",
    root: RootOption = Path("fedrisk-demo"),
) -> None:
    """The institution's alerts and the state of their webhook deliveries."""
    state = _state(root)
    outbox = Outbox(state / "webhooks.sqlite")
    delivered = {d.message_id: d for d in outbox.deliveries(institution=institution)}
    table = Table("alert", "loan", "what changed", "webhook")
    found_alerts = AlertBook(state / "monitoring.sqlite")
    for alert in found_alerts.alerts(institution, limit=10_000):
        found = delivered.get(alert.alert_id)
        status = f"{found.status} ({found.attempts} tries)" if found else "-"
        table.add_row(alert.alert_id, alert.body["loan_id"], alert.body["text"], status)
    Console(soft_wrap=True).print(table)
    outbox.close()
    found_alerts.close()
