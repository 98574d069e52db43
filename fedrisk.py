"""The ``fedrisk`` command: assembles each package's sub-commands.

This is the only module that imports both the coordinator and the participants (DESIGN.md):
it wires the coordinator's ServerApp and the participants' ClientApp together in Flower's
simulation runtime for ``fedrisk train`` and ``fedrisk demo``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from consent.cli import app as consent_cli
from coordinator.cli import app as coordinator_cli
from coordinator.cli import print_round, print_summary
from coordinator.link_credentials import LinkCredentials, issue_link_credentials
from coordinator.report import RoundRecord
from coordinator.rounds import FederationResult, RoundListener
from coordinator.server_app import make_server_app
from deploy.k8s.cli import app as k8s_cli
from models.federation import FederationSpec, load_federation
from models.layout import deployment_dir, node_keys_dir
from participants.cli import app as participants_cli
from participants.cli import ensure_keys
from participants.client_app import make_client_app
from participants.node_credentials import NodeKeyError, issue_node_key, node_key

console = Console(stderr=True)

#: Demo sizing: ~3,300 firm-months per factory park, enough for DP-SGD at epsilon = 3 to
#: learn (with a few hundred rows per node the noise swamps the signal; see BENCHMARKS.md).
if TYPE_CHECKING:
    from coordinator.serving.settings import ServeSettings
    from participants.demo.manifest import ScenarioManifest

DEMO_FIRMS_PER_FACTORY = 300
DEMO_LOCAL_EPOCHS = 2
DEMO_LEARNING_RATE = 0.2
#: Farmers and SMEs at the bank; with consent gaps and partial registry coverage about
#: 3,700 of each are aligned and trainable, enough for a holdout AUC to within ~0.02.
DEMO_FARMERS = 6000
DEMO_SMES = 6000
DEMO_VERTICAL_EPOCHS = 8
DEMO_VERTICAL_BATCH = 512
#: The split network: Adam at 0.003 on Poisson batches of 128 expected rows (measured on
#: the demo data: larger batches or rates learn less in the same epochs).
DEMO_SPLIT_EPOCHS = 10
DEMO_SPLIT_BATCH = 128
DEMO_SPLIT_LEARNING_RATE = 0.003
#: Where ``serve --only api`` finds the participants' partial-inference servers (JSON).
PARTICIPANTS_ENV = "FEDRISK_COORD_PARTICIPANTS"
app = typer.Typer(
    help="fedrisk: privacy-preserving federated risk models for lending.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
_clis = (coordinator_cli, participants_cli, consent_cli, k8s_cli)
#: A group both sides define (``keys``: the steward's TLS, the node's keys) becomes one.
_groups: dict[str, typer.Typer] = {}
for group in (g for cli in _clis for g in cli.registered_groups):
    part = group.typer_instance
    if group.name not in _groups:
        _groups[group.name] = typer.Typer(help=part.info.help, no_args_is_help=True)
        app.add_typer(_groups[group.name], name=group.name)
    _groups[group.name].registered_commands.extend(part.registered_commands)
    _groups[group.name].registered_groups.extend(part.registered_groups)
for command in (c for cli in _clis for c in cli.registered_commands):
    app.registered_commands.append(command)


@_groups["keys"].command("deployment")
def keys_deployment(
    federation: Annotated[Path, typer.Argument(help="Federation file (TOML).", exists=True)],
    host: Annotated[
        list[str] | None,
        typer.Option(help="A name or address nodes reach the SuperLink by (repeat)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace existing keys and certificates.")] = False,
) -> None:
    """Everything a one-machine deployment needs: the SuperLink's TLS, every participant's
    node key in the allow-list, and the CKKS key set when the privacy mode uses it."""
    spec = load_federation(federation)
    _run_cli(False, lambda: _keys_deployment(spec, hosts=host or [], force=force))


def _keys_deployment(spec: FederationSpec, *, hosts: list[str], force: bool) -> None:
    folder = deployment_dir(spec)
    if force or LinkCredentials(folder).missing():
        issue_link_credentials(folder, names=hosts, federation=spec.name, force=force)
    allowed = LinkCredentials(folder).nodes
    for participant in spec.participants:
        keys = node_keys_dir(spec)
        try:
            key = node_key(keys, participant.name) if not force else None
        except NodeKeyError:
            key = None
        key = key or issue_node_key(keys, participant.name, force=force)
        shutil.copyfile(key.public, allowed / key.public.name)
    ensure_keys(spec, console=console, force=force)
    console.print(
        f"Deployment keys for {spec.name}: TLS in {folder}, {len(spec.participants)} node "
        f"keys in {node_keys_dir(spec)} (allowed in {allowed}). Next: fedrisk link start "
        f"{spec.path}"
    )


def simulate(
    spec: FederationSpec,
    *,
    report_path: Path | None = None,
    on_round: RoundListener | None = None,
    resume: bool = False,
) -> FederationResult:
    """Run a federation in-process on Flower's simulation runtime; return its result.
    With ``resume``, go on with its last unfinished run from the newest checkpoint."""
    from flwr.simulation import run_simulation

    outcome: dict[str, object] = {}

    def done(result: FederationResult) -> None:
        outcome["result"] = result

    server = make_server_app(
        spec, report_path=report_path, on_round=on_round, on_done=done, resume=resume
    )
    failing = _capture_failure(server, outcome)
    client = make_client_app(spec.path)
    cpus = max(1, os.cpu_count() or 1)
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    run_simulation(
        server_app=failing,
        client_app=client,
        num_supernodes=len(spec.participants),
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"num_cpus": cpus, "logging_level": "error", "log_to_driver": False},
        },
    )
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    if "result" not in outcome:
        raise RuntimeError("the federation ended without a result (see the log above)")
    return outcome["result"]  # type: ignore[return-value]


def _capture_failure(server: object, outcome: dict[str, object]) -> object:
    """Wrap a ServerApp so that an exception in its main reaches the caller."""
    from flwr.app import Context
    from flwr.serverapp import Grid, ServerApp

    wrapped = ServerApp()

    @wrapped.main()
    def main(grid: Grid, context: Context) -> None:
        try:
            server(grid, context)  # type: ignore[operator]
        except Exception as exc:
            outcome["error"] = exc

    return wrapped


@app.command()
def train(
    federation: Annotated[Path, typer.Argument(help="Federation file (TOML).", exists=True)],
    report: Annotated[
        Path | None, typer.Option("--report", help="Write the machine-readable report here.")
    ] = None,
    debug: Annotated[bool, typer.Option(help="Show full tracebacks and Flower's logs.")] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Go on with the last unfinished run from its newest checkpoint (after a "
            "crash) instead of starting a new one.",
        ),
    ] = False,
) -> None:
    """Train a federation from a federation file (in-process, Flower simulation runtime)."""
    _run_cli(debug, lambda: _train(federation, report, resume=resume))


def _train(federation: Path, report: Path | None, *, resume: bool = False) -> None:
    spec = load_federation(federation)
    for warning in spec.warnings:
        console.print(f"[bold red]WARNING[/]: {warning}")
    ensure_keys(spec, console=console)
    how = f"strategy {spec.strategy}"
    if spec.vertical is not None:
        protocol = "a split network" if spec.vertical.protocol == "split-nn" else "vertical LR"
        how = f"vertical (PSI, then {protocol}; labels at {spec.vertical.guest})"
    console.print(
        f"Federation [bold]{spec.name}[/]: model {spec.model}, {len(spec.participants)} "
        f"participants, {spec.rounds} rounds, privacy {spec.privacy}, {how}"
    )
    result = simulate(
        spec, report_path=report, on_round=lambda r: print_round(console, spec, r), resume=resume
    )
    print_summary(console, result.report)
    if report is not None:
        console.print(f"Report written to {report}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where the scenario and results go.")] = Path(
        "fedrisk-demo"
    ),
    seed: Annotated[int, typer.Option(help="Scenario seed (deterministic).")] = 7,
    rounds: Annotated[int, typer.Option(help="Federated rounds.")] = 10,
    privacy: Annotated[str, typer.Option(help="none | dp | he | dp+he")] = "dp+he",
    debug: Annotated[bool, typer.Option(help="Show full tracebacks and Flower's logs.")] = False,
) -> None:
    """Generate the demo scenario; train the IoT risk model across the factory edge nodes,
    then the farmer-credit and SME-risk models vertically (bank x government platform)."""
    _run_cli(debug, lambda: _demo(out, seed=seed, rounds=rounds, privacy=privacy))


def _demo(out: Path, *, seed: int, rounds: int, privacy: str) -> None:
    from coordinator.cli import print_comparison
    from coordinator.plots import plot_auc_per_round
    from models.baselines import run_baselines
    from models.resolve import architecture, training_schema
    from models.tabular import load_table
    from participants.demo import generate_scenario, write_iot_federation
    from participants.local_data import load_eligible

    with console.status("Generating the demo scenario (bank, government platform, factories)..."):
        # Re-running the demo replaces its own earlier scenario, never a foreign folder.
        manifest = generate_scenario(
            out,
            seed=seed,
            firms_per_factory=DEMO_FIRMS_PER_FACTORY,
            n_farmers=DEMO_FARMERS,
            n_smes=DEMO_SMES,
            overwrite=(out / "manifest.json").exists(),
        )
    nodes = ", ".join(f"{n.name} ({sum(d.rows for d in n.datasets)} rows)" for n in manifest.nodes)
    console.print(f"Scenario written to {out} (seed {seed}): {nodes}")
    federation = write_iot_federation(
        manifest,
        out / "iot-federation.toml",
        privacy=privacy,
        rounds=rounds,
        local_epochs=DEMO_LOCAL_EPOCHS,
        learning_rate=DEMO_LEARNING_RATE,
    )
    spec = load_federation(federation)
    for warning in spec.warnings:
        console.print(f"[bold red]WARNING[/]: {warning}")
    ensure_keys(spec, console=console)
    console.print(
        f"Training the IoT risk model across {len(spec.participants)} factory edge nodes "
        f"({spec.rounds} rounds, privacy {spec.privacy}, {spec.strategy})"
    )
    report_path = out / "reports" / "iot-risk.json"
    result = simulate(
        spec, report_path=report_path, on_round=lambda r: print_round(console, spec, r)
    )
    print_summary(console, result.report)
    with console.status("Training the non-federated references (pooled and each node alone)..."):
        arch = architecture(spec)
        parts = {p.name: load_eligible(spec, p).data for p in spec.participants}
        assert spec.evaluation_file is not None
        evaluation = load_table(spec.evaluation_file, training_schema(spec))
        baselines = run_baselines(
            parts, evaluation, kind=arch.kind, hidden=arch.hidden, seed=spec.seed
        )
    print_comparison(console, result.report, baselines)
    png = plot_auc_per_round(
        {f"federated ({spec.privacy})": result.report},
        out / "iot-auc-per-round.png",
        references={
            "centralized (pooled, not allowed in production)": baselines.centralized_auc,
            f"best single node ({baselines.best_single[0]})": baselines.best_single[1],
        },
        title="IoT risk model: AUC per round",
    )
    console.print(f"Report: {report_path}\nPlot: {png}")
    _demo_vertical(manifest, out, privacy="he" if "he" in privacy else "none")
    _demo_decisions(out, spec, seed=seed)
    console.print(
        f"Next: fedrisk models show {spec.name} --registry {spec.output_dir / 'registry'}\n"
        f"      fedrisk score --model {spec.name} --registry {spec.output_dir / 'registry'} "
        f"--input {spec.evaluation_file} --output {out / 'scores.csv'}"
    )


def _demo_decisions(out: Path, spec: FederationSpec, *, seed: int) -> None:
    """The lender's side: the demo's firms apply for credit; the bank's channel has recorded
    most firms' credit_scoring consent (some never gave it, some withdrew); every
    application is decided with the IoT model and its policy, then replayed from the ledger."""
    import numpy as np
    import pandas as pd

    from coordinator.decisions import decide_file, load_policy, replay_ledger
    from coordinator.decisions.policy import install_default_policies
    from coordinator.serving.catalog import consent_categories
    from coordinator.serving.service import consent_registry
    from coordinator.serving.settings import ServeSettings
    from models.registry import ModelRegistry
    from participants.demo import write_iot_applications

    install_default_policies(out / "policies")
    policy = load_policy(out / "policies" / "iot.toml")
    assert spec.evaluation_file is not None and spec.schema is not None
    applications = write_iot_applications(
        spec.evaluation_file,
        out / "applications" / "iot.csv",
        id_column=spec.schema.id,
        label_column=spec.schema.label,
        seed=seed,
        firm_column="firm_id",
        period_column="month",
    )
    registry = ModelRegistry(spec.output_dir / "registry")
    settings = ServeSettings.for_root(out)  # the federation's runs are under OUT/runs
    categories = consent_categories(registry.latest(policy.model).card)
    firms = pd.read_csv(applications, dtype={spec.schema.id: str})[spec.schema.id].tolist()
    # A subject is what the IoT model's id column names: here one row per firm.
    rng = np.random.default_rng([seed, 15])
    now = datetime.now(UTC)
    with consent_registry(settings) as consent:
        for firm, draw in zip(firms, rng.random(len(firms)), strict=True):
            if draw < 0.10:  # never granted
                continue
            grant = consent.grant(subject_id=firm, institution="demo-bank",
                                  purpose="credit_scoring", categories=categories,
                                  starts_at=now - timedelta(days=30),
                                  expires_at=now + timedelta(days=365),
                                  evidence_hash=hashlib.sha256(firm.encode()).hexdigest(),
                                  channel="branch")  # fmt: skip
            if draw < 0.15:  # withdrawn since
                consent.withdraw(grant.event.grant_id)
        summary = decide_file(
            policy=policy,
            registry=registry,
            consent=consent,
            applications=applications,
            output=out / "decisions" / "iot.csv",
            institution="demo-bank",
            app="demo-lender",
        )
        replayed = replay_ledger(consent.ledger)
    outcomes = ", ".join(f"{k} {v}" for k, v in summary.outcomes.items() if v)
    console.print(
        f"Decisions ({policy.name} {policy.version}, {policy.model} {summary.model_version}): "
        f"{summary.rows} applications: {outcomes}; {summary.refused_consent} without consent "
        f"were referred unscored → {summary.output_path}\n"
        f"Replayed from the ledger: {replayed.reproduced} of {replayed.decisions} decisions "
        f"reproduced exactly. Again any time: fedrisk decide replay --root {out}"
    )


def _demo_vertical(manifest: ScenarioManifest, out: Path, *, privacy: str) -> None:
    """Train the farmer-credit and SME-risk models vertically (bank x government platform)."""
    from coordinator.cli import print_vertical_comparison
    from coordinator.plots import plot_auc_per_round
    from models.baselines import run_vertical_baselines
    from participants.demo import VERTICAL_DEMO_MODELS, write_vertical_federation
    from participants.local_data import load_eligible

    results = {}
    for model in VERTICAL_DEMO_MODELS:
        slug = model.replace("_", "-")
        federation = write_vertical_federation(
            manifest,
            out / f"{slug}-federation.toml",
            model=model,
            privacy=privacy,
            epochs=DEMO_VERTICAL_EPOCHS,
            batch_size=DEMO_VERTICAL_BATCH,
        )
        split_federation = write_vertical_federation(
            manifest,
            out / f"{slug}-split-federation.toml",
            model=model,
            privacy="dp",
            epochs=DEMO_SPLIT_EPOCHS,
            batch_size=DEMO_SPLIT_BATCH,
            learning_rate=DEMO_SPLIT_LEARNING_RATE,
            protocol="split-nn",
        )
        reports = {}
        for label, path in (("vertical LR", federation), ("split network", split_federation)):
            spec = load_federation(path)
            assert spec.vertical is not None
            ensure_keys(spec, console=console)
            console.print(
                f"Training the {model} model vertically as a {label}: labels at "
                f"{spec.vertical.guest}, features also at {', '.join(spec.vertical.hosts)} "
                f"(PSI, then {label}, privacy {spec.privacy}, {spec.rounds} epochs)"
            )
            name = slug if label == "vertical LR" else f"{slug}-split"

            def show(record: RoundRecord, spec: FederationSpec = spec) -> None:
                print_round(console, spec, record)

            result = simulate(spec, report_path=out / "reports" / f"{name}.json", on_round=show)
            reports[f"{label} ({spec.privacy})"] = result.report
        with console.status(f"Training the {model} references (bank alone, pooled)..."):
            tables = {p.name: load_eligible(spec, p).data for p in spec.participants}
            hosts = {name: tables[name] for name in spec.vertical.hosts}
            baselines = run_vertical_baselines(
                tables[spec.vertical.guest], hosts, holdout=spec.vertical.holdout, seed=spec.seed
            )
        results[model] = (reports, baselines)
        plot_auc_per_round(
            {f"federated {label}": report for label, report in reports.items()},
            out / f"{slug}-auc-per-epoch.png",
            references={
                "centralized LR (pooled, not allowed in production)": baselines.centralized_auc,
                "bank alone": baselines.guest_only_auc,
            },
            title=f"{model}: holdout AUC per epoch",
        )
    print_vertical_comparison(console, results)
    console.print(f"Reports and plots: {out / 'reports'}, {out}/*-auc-per-epoch.png")
    console.print(
        f"Vertical model cards (combiner + each party's part): fedrisk models show "
        f"demo-farmer-credit --registry {spec.output_dir / 'registry'}"
    )


@app.command()
def serve(
    root: Annotated[Path, typer.Option(help="The demo folder (or any like it).")] = Path(
        "fedrisk-demo"
    ),
    port: Annotated[int, typer.Option(help="The scoring API's port.")] = 8080,
    node_port: Annotated[int, typer.Option(help="First port of the embedded nodes.")] = 8101,
    host: Annotated[str, typer.Option(help="Listen address (loopback by default).")] = "127.0.0.1",
    only: Annotated[
        str | None,
        typer.Option(help="Run only this part: 'api', or one node's name (separate processes)."),
    ] = None,
    debug: Annotated[bool, typer.Option(help="Show full tracebacks.")] = False,
) -> None:
    """Serve the published models in one command: the scoring and consent API with SQLite and
    the local registry under ROOT, plus every participant node of ROOT's federation files
    (each its own HTTP server on loopback, as it would run at the data owner's site).
    Node N listens on NODE_PORT + N (N in the federation files' order of first mention);
    with --only api, FEDRISK_COORD_PARTICIPANTS (a JSON object name -> base URL), when set,
    says where the nodes are instead."""
    _run_cli(debug, lambda: _serve(root, host=host, port=port, node_port=node_port, only=only))


def _serve(root: Path, *, host: str, port: int, node_port: int, only: str | None) -> None:

    from consent.assertions import AssertionSigner
    from coordinator.serving.app import create_app
    from coordinator.serving.service import ServingState
    from participants.serving.run import node_app, node_names

    federations = sorted(root.glob("*federation.toml"))
    if not federations:
        raise typer.BadParameter(f"no *federation.toml in {root}: run `fedrisk demo` first")
    state_dir = root / "serving"
    key = AssertionSigner.in_folder(state_dir).public_key
    servers, endpoints = [], {}
    names = node_names(federations)
    if only is not None and only != "api" and only not in names:
        raise typer.BadParameter(f"--only must be 'api' or one of {', '.join(names)}")
    for k, name in enumerate(names):
        endpoints[name] = f"http://{host}:{node_port + k}"
        if only not in (None, name):
            continue
        app_, models = node_app(party=name, registry=root / "runs" / "registry",
                                federations=federations, coordinator_key=key)  # fmt: skip
        console.print(f"node {name}: {', '.join(models) or 'nothing'} at {endpoints[name]}")
        servers.append(_server(app_, host=host, port=node_port + k))
    if only not in (None, "api"):
        _run_servers(servers)
        return
    settings = serve_settings(root, endpoints=endpoints, only=only, host=host, port=port)
    state = ServingState.from_settings(settings)
    for name, reason in state.catalog.skipped.items():
        console.print(f"[yellow]not serving {name}[/]: {reason}")
    servers.append(_server(create_app(state), host=host, port=port))
    console.print(
        f"Scoring API: http://{host}:{port}/docs (models: {', '.join(state.catalog.models)})\n"
        f"Ledger key:  {state.consent.ledger.sign_head().public_key}\n"
        f"Add an app:  fedrisk apps add farmer-app --institution demo-bank --scope 'score:*' "
        f"--scope consent:write --scope consent:read --scope evidence:read --state-dir {state_dir}"
    )

    _run_servers(servers)


def serve_settings(
    root: Path, *, endpoints: dict[str, str], only: str | None, host: str, port: int
) -> ServeSettings:
    """The scoring API's settings for ``fedrisk serve``: state under ROOT, the embedded
    nodes' ``endpoints`` unless the API runs alone (``only='api'``) and
    FEDRISK_COORD_PARTICIPANTS says where the nodes are (a cluster, other hosts)."""
    from coordinator.serving.settings import ServeSettings

    where: dict[str, Any] = {}
    if only != "api" or PARTICIPANTS_ENV not in os.environ:
        where["participants"] = endpoints
    return ServeSettings.for_root(root, **where, host=host, port=port)


def _server(app: Any, *, host: str, port: int) -> Any:
    """A uvicorn server for ``app``: warnings only, no access log (Prometheus counts
    requests; a log line per request would cost more CPU than a consent check)."""
    import uvicorn

    return uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    )


def _run_servers(servers: list[Any]) -> None:
    """Run uvicorn servers together on one event loop (uvloop's when installed)."""
    import asyncio

    async def run_all() -> None:
        await asyncio.gather(*(s.serve() for s in servers))

    try:
        import uvloop
    except ImportError:
        asyncio.run(run_all())
    else:
        uvloop.run(run_all())


def _run_cli(debug: bool, action: Callable[[], None]) -> None:
    logging.basicConfig(
        level=logging.INFO if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not debug:
        for name in ("flwr", "ray", "opacus"):
            logging.getLogger(name).setLevel(logging.ERROR)
    try:
        action()
    except Exception as exc:
        if debug:
            raise
        console.print(f"[bold red]error[/]: {exc}")
        console.print("Run again with --debug for the full traceback.")
        raise typer.Exit(code=1) from None


def main() -> None:
    """Console-script entry point."""
    app(prog_name="fedrisk")


if __name__ == "__main__":
    sys.exit(main())
