"""``fedrisk decide``: apply a decision policy to a file of applications, replay a ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from consent.errors import ConsentError
from consent.ledger.log import EvidenceLog
from coordinator.serving.service import consent_registry
from coordinator.serving.settings import ServeSettings
from models.errors import ModelsError
from models.registry import ModelRegistry

from .errors import DecisionError
from .policy import install_default_policies, load_policy
from .portfolio import decide_file
from .replay import replay_ledger

__all__ = ["decide_cli"]

decide_cli = typer.Typer(
    help="Lending decisions from a versioned policy, evidenced and replayable.",
    no_args_is_help=True,
)

RootOption = Annotated[
    Path,
    typer.Option(
        help="Demo or serving root: consent store under ROOT/serving, models and ledger "
        "under ROOT/runs (as `fedrisk serve ROOT` uses them)."
    ),
]


@decide_cli.command("run")
def run(
    policy: Annotated[Path, typer.Argument(help="Decision policy (TOML).")],
    applications: Annotated[Path, typer.Option(help="CSV: id, application figures, features.")],
    output: Annotated[Path, typer.Option(help="Where to write one decision per row (CSV).")],
    scores: Annotated[
        Path | None,
        typer.Option(help="subject_id,score from a portfolio scoring run (vertical models)."),
    ] = None,
    institution: Annotated[str, typer.Option(help="Whose consent grants count.")] = "demo-bank",
    app: Annotated[str, typer.Option(help="Recorded as the deciding application.")] = "decide-cli",
    version: Annotated[str | None, typer.Option(help="Model version (default latest).")] = None,
    root: RootOption = Path("fedrisk-demo"),
) -> None:
    """Decide every application in a file: consent check, score, policy, ledger."""
    console = Console(stderr=True, soft_wrap=True)
    try:
        found = load_policy(policy)
        settings = ServeSettings.for_root(root)
        with consent_registry(settings) as consent, Progress(console=console) as bar:
            task = bar.add_task("ledger", total=None)
            summary = decide_file(
                policy=found,
                registry=ModelRegistry(settings.registry),
                consent=consent,
                applications=applications,
                output=output,
                institution=institution,
                app=app,
                scores=scores,
                version=version,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except (DecisionError, ModelsError, ConsentError, OSError) as exc:
        console.print(f"[bold red]error[/]: {exc}")
        raise typer.Exit(code=1) from None
    table = Table("outcome", "applications", title=f"{summary.policy} {summary.policy_version}")
    for outcome, count in summary.outcomes.items():
        table.add_row(outcome, f"{count:,}")
    Console().print(table)
    took = sum(summary.seconds.values())
    console.print(
        f"{summary.rows:,} decisions with {summary.model} {summary.model_version} in "
        f"{took:.1f} s ({summary.rows_per_s:,.0f}/s); {summary.refused_consent:,} without "
        f"consent (referred, not scored); limits granted {summary.total_limit:,.0f} → {output}"
    )


@decide_cli.command("replay")
def replay(root: RootOption = Path("fedrisk-demo")) -> None:
    """Decide every decision in the ledger again from its record; exit 1 if one differs."""
    console = Console(stderr=True, soft_wrap=True)
    settings = ServeSettings.for_root(root)
    try:
        with EvidenceLog.in_folder(settings.ledger_folder, read_only=True) as ledger:
            report = replay_ledger(ledger)
    except ConsentError as exc:
        console.print(
            f"[bold red]error[/]: {exc}; run `fedrisk demo` or `fedrisk decide run` first"
        )
        raise typer.Exit(code=1) from None
    for mismatch in report.mismatches:
        console.print(f"[red]not reproduced[/] {mismatch.evidence_id}: {mismatch.problem}")
    console.print(
        f"{report.reproduced:,} of {report.decisions:,} decisions reproduced exactly "
        f"({report.share:.2%}) under {report.policies} policies"
    )
    if not report.ok:
        raise typer.Exit(code=1)


@decide_cli.command("check")
def check(policy: Annotated[Path, typer.Argument(help="Decision policy (TOML).")]) -> None:
    """Check a policy file and print its identity (name, version, digest)."""
    try:
        found = load_policy(policy)
    except DecisionError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error[/]: {exc}")
        raise typer.Exit(code=1) from None
    typer.echo(f"{found.name} {found.version} for {found.model}: sha256 {found.digest}")


@decide_cli.command("init")
def init(
    root: RootOption = Path("fedrisk-demo"),
    force: Annotated[bool, typer.Option(help="Replace policies already there.")] = False,
) -> None:
    """Write the shipped policies (IoT, farmer credit, SME) into ROOT/policies, where
    `fedrisk serve ROOT` reads them; edit them there, bumping each one's version."""
    written = install_default_policies(root / "policies", force=force)
    for path in written:
        typer.echo(f"wrote {path}")
    if not written:
        typer.echo(f"{root / 'policies'} already holds every policy (--force replaces them)")
