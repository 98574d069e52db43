"""``fedrisk node ingest``: one pass of the factory node's edge pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Final

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from .kinds import RAW_KINDS
from .pipeline import EdgePass, EdgeSettings, IndicatorFile, run_edge_pass
from .weekly import WeeklySettings

__all__ = ["ingest_command"]

_SELF_EXPLAINED: Final = ("drop new readings as a new file", "rename it", "move it into")
_LOG_MAX_WIDTH: Final = 400


def _print_table(console: Console, table: Table) -> None:
    """Cells whole: folded in a terminal, as wide as the content in a log (where rich
    assumes 80 columns), as ``fedrisk data check`` prints its table."""
    for column in table.columns:
        column.overflow = "fold"
    if not console.is_terminal:
        natural = Measurement.get(console, console.options.update_width(_LOG_MAX_WIDTH), table)
        if natural.maximum > console.width:
            table.width = natural.maximum
            console.print(table, crop=False, soft_wrap=False)
            return
    console.print(table, soft_wrap=False)


def _advice(reason: str) -> str:
    if any(words in reason for words in _SELF_EXPLAINED):
        return ""
    return (
        " [dim]→ nothing from it was stored in this pass; correct it and run the command again[/]"
    )


def _kinds_table(done: EdgePass) -> Table | None:
    """One row per kind with files or rows; ``None`` when the store is still empty."""
    table = Table(
        "kind", "files new", "unchanged", "waiting", "refused", "rows new", "repeated", "stored"
    )
    for kind in RAW_KINDS:
        report = done.store.kinds[kind.name]
        cells = (
            len(report.ingested),
            len(report.unchanged),
            len(report.waiting),
            len(report.refused),
            sum(report.ingested.values()),
            sum(report.duplicates.values()),
            done.stored_rows[kind.name],
        )
        if any(cells):
            table.add_row(kind.name, *(str(c) for c in cells))
    return table if table.row_count else None


def _indicator_line(label: str, written: IndicatorFile) -> str:
    state = "updated" if written.changed else "unchanged"
    if written.rows == 0:
        return f"{label}: no rows yet (needs the machines register and readings) → {written.path}"
    return (
        f"{label}: {written.rows} rows, {written.firms} firms x {written.periods} periods "
        f"({written.first} to {written.last}), {state} → {written.path}"
    )


def ingest_command(
    inbox: Annotated[
        Path,
        typer.Option(
            help="Inbox folder: one subfolder per raw kind (machines/, electricity_15min/, "
            "mes_daily/, erp_orders/, ...) holding CSV or Parquet files."
        ),
    ],
    node: Annotated[
        Path, typer.Option(help="Node folder: raw store, indicator files and the pass summary.")
    ],
    settle_s: Annotated[
        float,
        typer.Option(help="Seconds a file must stay unchanged before it is read (0: at once)."),
    ] = 2.0,
    timezone: Annotated[
        str, typer.Option(help="Local time zone of timestamps without a UTC offset (IANA name).")
    ] = "Asia/Shanghai",
    temperature_min_c: Annotated[
        float, typer.Option(help="Workshop temperature band, lower end (°C).")
    ] = 5.0,
    temperature_max_c: Annotated[
        float, typer.Option(help="Workshop temperature band, upper end (°C).")
    ] = 35.0,
) -> None:
    """Ingest new raw readings from the inbox (each file once, appended rows incrementally,
    half-written files left for later) and recompute the node's monthly and weekly
    indicators; raw readings stay in the node folder. Exits with 1 if a file was refused."""
    console = Console(stderr=True, soft_wrap=True, highlight=False)
    try:
        weekly = WeeklySettings(
            temperature_min_c=temperature_min_c, temperature_max_c=temperature_max_c
        )
        settings = EdgeSettings(timezone=timezone, weekly=weekly)
        if settle_s > 0:
            console.print(f"Waiting {settle_s:g} s for files still being written…")
        done = run_edge_pass(inbox=inbox, node=node, settings=settings, settle_s=settle_s)
    except (ValueError, OSError) as exc:
        console.print(f"[bold red]error[/]: {exc}")
        raise typer.Exit(code=1) from None
    table = _kinds_table(done)
    if table is None:
        console.print(f"nothing stored yet: no files in {inbox}/<kind>/")
    else:
        _print_table(console, table)
    for name, reason in done.refused.items():
        console.print(f"[bold red]refused[/] {name}: {reason}{_advice(reason)}")
    for kind, report in done.store.kinds.items():
        for name in report.waiting:
            console.print(f"[yellow]waiting[/] {kind}/{name}: still being written; next pass")
    if done.unregistered_firms:
        console.print(
            f"[yellow]note[/]: readings of {done.unregistered_firms} firm(s) missing from the "
            "machines register are not used: add their machines to inbox/machines/"
        )
    console.print(_indicator_line("monthly", done.monthly))
    console.print(_indicator_line("weekly", done.weekly))
    console.print(f"summary → {done.summary}")
    if done.refused:
        raise typer.Exit(code=1)
