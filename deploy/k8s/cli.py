"""``fedrisk k8s``: render the manifests, create their Secrets, apply them and wait, run a
training round as a Job, show where it all stands.

Progress goes to stderr; rendered YAML, dry-run Secrets and a round's log go to stdout. An
error is one line (``--debug`` shows the traceback), and the exit code is non-zero.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from .errors import K8sError, RoundError

if TYPE_CHECKING:
    from .cluster import Cluster

__all__ = ["app", "k8s_cli"]

app = typer.Typer(no_args_is_help=True)
k8s_cli = typer.Typer(
    help="fedrisk on Kubernetes: render, secrets, apply, a round as a Job, status.",
    no_args_is_help=True,
)
app.add_typer(k8s_cli, name="k8s")

#: soft_wrap: a message stays one line (commands in it can be copied), whatever the width.
console = Console(stderr=True, soft_wrap=True)
#: Poll at most this often while waiting (and at least 20 times within a short timeout).
POLL_S = 2.0
APPLY_TIMEOUT_S = 300.0
ROUND_TIMEOUT_S = 3600.0

OverlayOption = Annotated[
    str, typer.Option(help="The overlay under deploy/k8s/overlays: demo or production.")
]
KubeconfigOption = Annotated[
    Path | None,
    typer.Option(help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)."),
]
ContextOption = Annotated[
    str | None, typer.Option(help="The kubeconfig context (default: its current one).")
]
DebugOption = Annotated[bool, typer.Option(help="Show full tracebacks and requests.")]


def _say(text: object) -> None:
    console.print(escape(str(text)))


def _poll_s(timeout_s: float) -> float:
    return min(POLL_S, max(timeout_s / 20, 0.05))


def _run(debug: bool, action: Callable[[], None]) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        action()
    except typer.Exit:
        raise
    except Exception as exc:
        if debug:
            raise
        console.print(f"[bold red]error[/]: {escape(str(exc))}")
        if not isinstance(exc, K8sError | ValueError | OSError):
            console.print("Run again with --debug for the full traceback.")
        raise typer.Exit(code=1) from None


def _connect(kubeconfig: Path | None, context: str | None) -> Cluster:
    from .cluster import Cluster

    return Cluster.from_kubeconfig(kubeconfig=kubeconfig, context=context)


@k8s_cli.command("render")
def render(overlay: OverlayOption = "demo", debug: DebugOption = False) -> None:
    """Print an overlay's manifests as kustomize renders them."""

    def action() -> None:
        from .render import render_yaml

        typer.echo(render_yaml(overlay), nl=False)

    _run(debug, action)


@k8s_cli.command("secrets")
def secrets(
    federation: Annotated[
        Path, typer.Argument(help="The steward's federation file (TOML).", exists=True)
    ],
    overlay: OverlayOption = "demo",
    credentials: Annotated[
        Path | None,
        typer.Option(help="Deployment folder (default: <federation output>/deployment)."),
    ] = None,
    node_keys: Annotated[
        Path | None,
        typer.Option(help="Node key folder (default: $FEDRISK_HOME/node-keys/FEDERATION)."),
    ] = None,
    api_env: Annotated[
        Path | None,
        typer.Option(help="KEY=VALUE lines for fedrisk-api-secrets (production: required)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the Secrets, values redacted; apply none.")
    ] = False,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    debug: DebugOption = False,
) -> None:
    """Create or update the Secrets the overlay uses, from the files `fedrisk keys` wrote.

    The SuperLink's TLS, the node allow-list, each participant's node key, the consent
    store's login (generated once, then kept) and the API's settings (--api-env)."""

    def action() -> None:
        import yaml

        from models.federation import load_federation
        from models.layout import deployment_dir, node_keys_dir

        from .apply import apply_object
        from .render import render_objects
        from .round_job import superlink_site
        from .secret_refs import secret_references
        from .secrets import KeyFolders, build_secrets, redacted

        spec = load_federation(federation)
        folders = KeyFolders(
            federation=federation,
            deployment=credentials or deployment_dir(spec),
            node_keys=node_keys or node_keys_dir(spec),
            participants=tuple(p.name for p in spec.participants),
        )
        docs = render_objects(overlay)
        refs = secret_references(docs)
        built = build_secrets(
            refs, folders=folders, superlink_names=superlink_site(docs).names, api_env=api_env
        )
        for ref in refs:
            if ref.optional and not any(b.name == f"{ref.namespace}/{ref.name}" for b in built):
                _say(f"Secret {ref.namespace}/{ref.name} is optional and has no source: skipped")
        if dry_run:
            typer.echo(yaml.safe_dump_all([redacted(b.manifest) for b in built], sort_keys=False))
            return
        namespaces = {b.manifest["metadata"]["namespace"] for b in built}
        with _connect(kubeconfig, context) as cluster:
            for doc in docs:
                if doc.get("kind") == "Namespace" and doc["metadata"]["name"] in namespaces:
                    applied = apply_object(cluster, doc)
                    _say(f"{applied.action} {applied.ref}")
            for secret in built:
                applied = apply_object(cluster, secret.manifest, replace=secret.replace)
                _say(f"{applied.action} {applied.ref}")
        _say(
            f"Next: fedrisk k8s apply --overlay {overlay}. A changed allow-list or TLS takes "
            "effect when the SuperLink restarts (kubectl rollout restart)."
        )

    _run(debug, action)


@k8s_cli.command("apply")
def apply(
    overlay: OverlayOption = "demo",
    timeout: Annotated[
        float, typer.Option(help="Wait at most this long (s) for the workloads to be ready.")
    ] = APPLY_TIMEOUT_S,
    wait: Annotated[bool, typer.Option(help="Wait for the workloads to be ready.")] = True,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    debug: DebugOption = False,
) -> None:
    """Create or patch every object of the overlay, then wait until it is ready.

    Namespaces first; then every Deployment and StatefulSet is waited for (--timeout)."""

    def action() -> None:
        from .apply import apply_objects
        from .readiness import wait_ready, workloads
        from .render import render_objects
        from .resources import KINDS, ObjectRef
        from .secret_refs import secret_references

        docs = render_objects(overlay)
        with _connect(kubeconfig, context) as cluster:
            done = apply_objects(cluster, docs, on_applied=lambda a: _say(f"{a.action} {a.ref}"))
            _say(f"Applied {len(done)} objects of overlay {overlay} to {cluster.host}")
            secret = KINDS[("v1", "Secret")]
            for ref in secret_references(docs):
                if not ref.optional and not cluster.find(
                    ObjectRef(secret, ref.name, ref.namespace)
                ):
                    text = (
                        f"no Secret {ref.namespace}/{ref.name} (used by {', '.join(ref.users)}): "
                        f"create it with `fedrisk k8s secrets FEDERATION --overlay {overlay}`"
                    )
                    console.print(f"[yellow]warning[/]: {escape(text)}")
            if not wait:
                return
            refs = workloads(docs)
            _say(f"Waiting up to {timeout:g} s for {len(refs)} workloads to be ready")
            wait_ready(
                cluster,
                refs,
                timeout_s=timeout,
                poll_s=_poll_s(timeout),
                on_change=lambda state: _say(f"  {state}"),
                hint=(
                    f"A missing Secret: fedrisk k8s secrets FEDERATION --overlay {overlay}. "
                    "A missing image: build and load it (deploy/k8s/README.md)."
                ),
            )
            _say(f"All {len(refs)} workloads are ready.")

    _run(debug, action)


@k8s_cli.command("round")
def round_(
    model: Annotated[
        str,
        typer.Option(help="The model to train: iot-risk, farmer-credit[-split], sme-risk[-split]."),
    ],
    overlay: OverlayOption = "demo",
    rounds: Annotated[
        int | None,
        typer.Option(help="Rounds (epochs, vertical) instead of the federation file's."),
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Give up (and let Kubernetes stop the Job) after s.")
    ] = ROUND_TIMEOUT_S,
    name: Annotated[
        str | None, typer.Option(help="Job name (default fedrisk-round-MODEL-UTCTIME).")
    ] = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    debug: DebugOption = False,
) -> None:
    """Train a model on the cluster: a Job runs `fedrisk link run` against the SuperLink.

    Its log is printed here as it comes; the exit code is 1 when it fails or times out."""

    def action() -> None:
        from .render import render_objects
        from .round_job import job_name, round_job, superlink_site
        from .rounds import run_round

        site = superlink_site(render_objects(overlay))
        job = round_job(
            site,
            model=model,
            name=name or job_name(model, now=dt.datetime.now(dt.UTC)),
            timeout_s=timeout,
            rounds=rounds,
        )
        with _connect(kubeconfig, context) as cluster:
            outcome = run_round(
                cluster,
                job,
                timeout_s=timeout,
                poll_s=_poll_s(timeout),
                on_log=typer.echo,
                on_progress=_say,
            )
        if not outcome.succeeded:
            raise RoundError(
                f"{outcome.job} {outcome.state.summary} (its log is above): kubectl -n "
                f"{outcome.job.namespace} describe job/{outcome.job.name}"
            )
        _say(f"{outcome.job}: Succeeded in {outcome.seconds:.0f} s")

    _run(debug, action)


@k8s_cli.command("status")
def status(
    overlay: OverlayOption = "demo",
    job: Annotated[str | None, typer.Option(help="Show this round Job only.")] = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    debug: DebugOption = False,
) -> None:
    """Readiness of the coordinator's and participants' workloads, and recent rounds.

    The exit code is 1 when something is missing, not ready or (with --job) failed."""

    def action() -> None:
        from .render import render_objects
        from .round_job import superlink_site
        from .status import overlay_status, round_status

        docs = render_objects(overlay)
        coordinator = superlink_site(docs).namespace
        with _connect(kubeconfig, context) as cluster:
            if job is not None:
                summary = round_status(cluster, namespace=coordinator, name=job)
                _say(summary)
                if summary.state.finished and not summary.state.succeeded:
                    raise typer.Exit(code=1)
                return
            found = overlay_status(cluster, docs, coordinator=coordinator)
        for namespace in found.missing_namespaces:
            _say(f"namespace {namespace}: missing (fedrisk k8s apply --overlay {overlay})")
        for state in found.workloads:
            _say(f"{'ready' if state.ready else 'NOT READY'}  {state}")
        _say("Recent rounds:" if found.rounds else f"No round Jobs in {coordinator}.")
        for summary in found.rounds:
            _say(f"  {summary}")
        if not found.ready:
            raise typer.Exit(code=1)

    _run(debug, action)
