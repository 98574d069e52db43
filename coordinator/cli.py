"""The coordinator's ``fedrisk`` sub-commands and its terminal output."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from models.baselines import BaselineResult, VerticalBaselines
from models.errors import ModelsError
from models.federation import FederationSpec
from models.registry import ModelRegistry
from models.scoring import score_file

from .decisions.cli import decide_cli
from .link_cli import keys_cli, link_cli
from .monitoring.cli import monitor_cli
from .report import FederationReport, RoundRecord

app = typer.Typer(no_args_is_help=True)
models_cli = typer.Typer(help="The local model registry.", no_args_is_help=True)
app.add_typer(models_cli, name="models")
app.add_typer(keys_cli, name="keys")
app.add_typer(link_cli, name="link")
app.add_typer(decide_cli, name="decide")
app.add_typer(monitor_cli, name="monitor")

#: The widest a table gets in a log (beyond it, cells fold onto more lines).
LOG_MAX_WIDTH = 400

DEFAULT_REGISTRY = Path(os.environ.get("FEDRISK_REGISTRY", "fedrisk-demo/runs/registry"))
RegistryOption = Annotated[
    Path,
    typer.Option(
        help="Model registry directory (env FEDRISK_REGISTRY).", envvar="FEDRISK_REGISTRY"
    ),
]


def print_table(console: Console, table: Table) -> None:
    """Print ``table`` with every cell whole. In a terminal it fits the terminal, a word too
    long for its column folding onto the next line instead of being cut to "…"; elsewhere
    (a CI log, ``| tee``), where rich assumes 80 columns, the table is as wide as its content.
    """
    for column in table.columns:
        column.overflow = "fold"
    if not console.is_terminal:
        wide = console.options.update_width(LOG_MAX_WIDTH)
        natural = Measurement.get(console, wide, table).maximum
        if natural > console.width:
            table.width = natural
            console.print(table, crop=False)
            return
    console.print(table)


@app.command()
def score(
    model: Annotated[str, typer.Option(help="Registered model name, e.g. demo-iot.")],
    input: Annotated[Path, typer.Option("--input", help="CSV with the model's features.")],
    output: Annotated[Path, typer.Option("--output", help="Where to write id,score,band.")],
    version: Annotated[str | None, typer.Option(help="Model version (default: latest).")] = None,
    registry: RegistryOption = DEFAULT_REGISTRY,
) -> None:
    """Score a CSV file with a registered model (ONNX Runtime)."""
    console = Console(stderr=True)
    try:
        summary = score_file(
            ModelRegistry(registry),
            model=model,
            version=version,
            input_path=input,
            output_path=output,
        )
    except (ModelsError, OSError) as exc:
        console.print(f"[bold red]error[/]: {exc}")
        raise typer.Exit(code=1) from None
    console.print(f"Scored {summary.n_rows} rows with {model} {summary.version} → {output}")
    for band, count in sorted(summary.band_counts.items()):
        console.print(f"  band {band}: {count}")


@models_cli.command("list")
def list_models(registry: RegistryOption = DEFAULT_REGISTRY) -> None:
    """List registered models and versions."""
    table = Table("model", "version", "privacy", "AUC", "created")
    for entry in ModelRegistry(registry).list():
        card = entry.card
        auc = card.metrics.get("auc")
        table.add_row(
            card.name,
            card.version,
            str(card.privacy_mode),
            f"{auc:.4f}" if isinstance(auc, float) else "-",
            str(card.created_at),
        )
    print_table(Console(), table)


@models_cli.command("show")
def show_model(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str | None, typer.Option(help="Version (default latest).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the card as JSON.")] = False,
    registry: RegistryOption = DEFAULT_REGISTRY,
) -> None:
    """Print a model card."""
    reg = ModelRegistry(registry)
    entry = reg.get(name, version) if version else reg.latest(name)
    if as_json:
        typer.echo(json.dumps(entry.card.to_dict(), indent=2))
    else:
        typer.echo(entry.card.to_markdown())


def print_round(console: Console, spec: FederationSpec, record: RoundRecord) -> None:
    """One line per round: status, AUC, contributors, rejections, ε."""
    auc = f"{record.auc:.4f}" if record.auc is not None else "  -   "
    eps = ", ".join(f"{k} {v:.2f}" for k, v in sorted(record.epsilon.items()))
    status = "[green]ok[/]" if record.status == "ok" else f"[red]FAILED[/] ({record.failure})"
    console.print(
        f"round {record.server_round:>3}/{spec.rounds}  {status}  AUC {auc}  "
        f"{len(record.contributors)} contributors  {record.duration_s:6.2f}s"
        + (f"  ε: {eps}" if eps else "")
    )
    for who, why in record.rejected.items():
        console.print(f"   [yellow]rejected[/] {who}: {why}")


def _epsilon_cell(eps: Mapping[str, float], name: str) -> str:
    """A participant's ε: its own (horizontal DP-SGD), or each of its releases in a vertical
    run (``bank.labels``, ``gov.features``)."""
    if name in eps:
        return f"{eps[name]:.3f}"
    own = {k[len(name) + 1 :]: v for k, v in eps.items() if k.startswith(name + ".")}
    return ", ".join(f"{what} {v:.3f}" for what, v in sorted(own.items())) or "-"


def print_summary(console: Console, report: FederationReport) -> None:
    """The participants table and final figures of a run."""
    table = Table("participant", "accepted", "rows", "used", "excluded (consent)", "ε")
    eps = report.epsilon_per_participant()
    for p in report.participants:
        excluded = ", ".join(f"{k} {v}" for k, v in sorted(p.excluded.items())) or "-"
        table.add_row(
            p.name,
            "yes" if p.accepted else f"[red]no[/]: {p.reason}",
            str(p.rows_total),
            str(p.rows_used),
            excluded,
            _epsilon_cell(eps, p.name),
        )
    print_table(console, table)
    final = report.final
    if final.get("auc") is not None:
        console.print(
            f"Final AUC {final['auc']:.4f}, log-loss {final['log_loss']:.4f}; "
            f"model {report.model_version or '(not registered)'}"
        )
    stopped = final.get("stopped") or {}
    if stopped.get("reason") == "plateau":
        console.print(
            f"Stopped on a plateau after round {stopped['round']} of {stopped['planned']}: "
            f"no AUC gain of {stopped['min_delta']} for {stopped['patience']} rounds "
            f"(best {stopped['best_auc']:.4f} in round {stopped['best_round']})"
        )


def print_comparison(console: Console, report: FederationReport, baselines: BaselineResult) -> None:
    """The demo's closing table: federated vs centralized vs best single participant, and ε."""
    table = Table("model", "AUC on the evaluation set", "note", title="What federation buys")
    final_auc = report.final.get("auc")
    best_name, best_auc = baselines.best_single
    table.add_row(
        f"federated ({report.privacy_mode})",
        f"{final_auc:.4f}" if final_auc is not None else "-",
        "raw data never left a node",
    )
    table.add_row(
        "centralized (pooled)", f"{baselines.centralized_auc:.4f}", "the limit; not allowed"
    )
    table.add_row(f"best single node ({best_name})", f"{best_auc:.4f}", "going it alone")
    for name, auc in sorted(baselines.single_auc.items()):
        if name != best_name:
            table.add_row(f"  {name} alone", f"{auc:.4f}", "")
    print_table(console, table)
    eps = report.epsilon_per_participant()
    if eps:
        delta = report.privacy.get("dp", {}).get("delta")
        console.print(
            f"ε spent per participant (δ = {delta}): "
            + ", ".join(f"{k} {v:.3f}" for k, v in sorted(eps.items()))
        )


def _auc_cell(report: FederationReport | None) -> str:
    if report is None:
        return "-"
    auc = report.final.get("auc")
    cell = f"{auc:.4f}" if isinstance(auc, float) else "-"
    epsilon = report.final.get("epsilon") or {}
    if epsilon:
        cell += f" (ε {max(epsilon.values()):.1f})"
    return cell


def print_vertical_comparison(
    console: Console,
    results: Mapping[str, tuple[Mapping[str, FederationReport], VerticalBaselines]],
) -> None:
    """The demo's vertical table: per model, each federated protocol vs bank alone vs pooled,
    on one holdout (the protocols' ε beside their AUC)."""
    protocols = list(dict.fromkeys(label for reports, _ in results.values() for label in reports))
    table = Table(
        "model",
        *(f"federated {label}" for label in protocols),
        "bank alone",
        "pooled LR",
        "pooled GBT",
        "rows",
        title="Vertical models (bank x gov platform): holdout AUC",
        caption="pooled: the limit, not allowed; rows: aligned/holdout; ε: the largest of the "
        "protocol's releases, δ = 1e-5",
    )
    for model, (reports, base) in results.items():
        table.add_row(
            model,
            *(_auc_cell(reports.get(label)) for label in protocols),
            f"{base.guest_only_auc:.4f}",
            f"{base.centralized_auc:.4f}",
            f"{base.centralized_gbt_auc:.4f}",
            f"{base.aligned_rows}/{base.holdout_rows}",
        )
    print_table(console, table)
    console.print(
        "Bank alone and centralized are trained by the demo on pooled files for comparison "
        "only; in the federation neither party saw the other's rows."
    )
    for model, (reports, base) in results.items():
        aucs = {label: r.final.get("auc") for label, r in reports.items()}
        best = max((a, label) for label, a in aucs.items() if isinstance(a, float))
        worst = min((a, label) for label, a in aucs.items() if isinstance(a, float))
        if best[1] != worst[1]:
            console.print(
                f"{model}: {best[1]} leads {worst[1]} by {best[0] - worst[0]:.4f} AUC on "
                f"{base.aligned_rows - base.holdout_rows} training rows (a split network's "
                "cut-layer noise costs the most on few rows; BENCHMARKS.md compares them on "
                "the 22,500-row credit data)."
            )


apps_cli = typer.Typer(help="Lending apps allowed to call the scoring API.", no_args_is_help=True)
app.add_typer(apps_cli, name="apps")
StateOption = Annotated[
    Path,
    typer.Option(
        help="The scoring service's state folder (env FEDRISK_COORD_STATE_DIR).",
        envvar="FEDRISK_COORD_STATE_DIR",
    ),
]


@apps_cli.command("add")
def apps_add(
    client_id: Annotated[str, typer.Argument(help="The app's client id, e.g. farmer-app.")],
    institution: Annotated[str, typer.Option(help="The institution the app acts for.")],
    scope: Annotated[
        list[str],
        typer.Option(
            help="score:<model>, score:*, consent:read, consent:write, evidence:read, "
            "alerts:read, alerts:write (the lender's alerts and webhook), monitoring:report "
            "(a factory node's change events) (repeat)."
        ),
    ],
    rate: Annotated[float, typer.Option(help="Quota: requests per second.")] = 50.0,
    burst: Annotated[int, typer.Option(help="Quota: burst size.")] = 100,
    state_dir: StateOption = Path("fedrisk-demo/serving"),
) -> None:
    """Register a lending app; prints its client secret once (only a hash is kept)."""
    from .serving.apps import AppRegistry

    try:
        secret = AppRegistry(state_dir / "apps.json").add(
            client_id, institution=institution, scopes=scope, rate_per_s=rate, burst=burst
        )
    except ValueError as exc:
        Console(stderr=True).print(f"[bold red]error[/]: {exc}")
        raise typer.Exit(code=1) from None
    typer.echo(f"client_id={client_id}\nclient_secret={secret}")
    Console(stderr=True).print("Keep the secret now: it is not stored and cannot be shown again.")


@apps_cli.command("revoke")
def apps_revoke(
    client_id: Annotated[str, typer.Argument(help="The app's client id.")],
    state_dir: StateOption = Path("fedrisk-demo/serving"),
) -> None:
    """Remove an app: its client secret stops working (issued tokens expire as usual)."""
    from .serving.apps import AppRegistry

    try:
        AppRegistry(state_dir / "apps.json").revoke(client_id)
    except ValueError as exc:
        Console(stderr=True).print(f"[bold red]error[/]: {exc}")
        raise typer.Exit(code=1) from None
    Console(stderr=True).print(f"app {client_id} revoked")


@apps_cli.command("list")
def apps_list(state_dir: StateOption = Path("fedrisk-demo/serving")) -> None:
    """The registered apps, their institutions, scopes and quotas."""
    from .serving.apps import AppRegistry

    for entry in AppRegistry(state_dir / "apps.json").list():
        typer.echo(
            f"{entry.client_id}\t{entry.institution}\t{' '.join(entry.scopes)}\t"
            f"{entry.rate_per_s:g}/s burst {entry.burst}"
        )
