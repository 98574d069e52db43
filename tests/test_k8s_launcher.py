"""The Kubernetes launcher (deploy/k8s, ``fedrisk k8s``) against the kmock *emulator*: an
in-memory Kubernetes API server on loopback HTTP that stores what it is sent and serves
it back (no controllers, no scheduler, no kubelet). Tests play the controllers' part by
writing status into the emulator, and assert on the requests the emulator received.

Everything the launcher builds (Secrets, the round Job) is validated offline in strict mode
against the Kubernetes schemas the manifests' test uses.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kmock
import kubernetes_validate
import pytest
import yaml
from kmock._internal import parsing
from typer.testing import CliRunner

from coordinator.link_credentials import issue_link_credentials
from deploy.k8s.apply import apply_objects
from deploy.k8s.cli import app
from deploy.k8s.cluster import FIELD_MANAGER, Cluster
from deploy.k8s.errors import (
    ApiError,
    K8sError,
    MissingKeyFileError,
    RoundError,
    UnknownModelError,
    UnreachableError,
)
from deploy.k8s.readiness import readiness_of, wait_ready, workloads
from deploy.k8s.render import APPLY_ORDER, in_apply_order, render_objects
from deploy.k8s.resources import KINDS, ObjectRef, ref_of
from deploy.k8s.round_job import (
    ROUND_FEDERATIONS,
    STAGE_SCRIPT,
    federation_file,
    job_name,
    round_job,
    superlink_site,
)
from deploy.k8s.rounds import job_state, run_round
from deploy.k8s.secret_refs import secret_references
from deploy.k8s.secrets import KeyFolders, build_secrets, redacted
from models.federation import load_federation
from participants.demo import VERTICAL_DEMO_MODELS
from participants.node_credentials import issue_node_key
from tests.support.builders import schema_block, write_rows
from tests.test_k8s_manifests import KUBERNETES_VERSION, SECRET_NAMES, template_problems

COORDINATOR = "fedrisk-coordinator"
TOKEN = "test-token"
JOBS = kmock.resource("batch", "v1", "jobs")
PODS = kmock.resource("", "v1", "pods")
EVENTS = kmock.resource("", "v1", "events")
DEPLOYMENTS = kmock.resource("apps", "v1", "deployments")
STATEFULSETS = kmock.resource("apps", "v1", "statefulsets")

Doc = dict[str, Any]


@functools.cache
def rendered(overlay: str) -> tuple[Doc, ...]:
    return render_objects(overlay)


# --- the emulator -----------------------------------------------------------------------


def _parse_path_with_namespaces(path: str) -> parsing.ParsedPath:
    """kmock 0.8 reads ``/api/v1/namespaces[/NAME]`` as a namespace prefix, not as the
    cluster-scoped Namespace resource (a POST there fails inside the emulator): serve it
    as the resource ``namespaces``, as a real API server does."""
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
        name = parts[3] if len(parts) == 4 else None
        return parsing.ParsedPath(group="", version="v1", plural="namespaces", name=name)
    return _KMOCK_PARSE_PATH(path)


_KMOCK_PARSE_PATH = parsing.parse_path


class Emulator:
    """kmock's KubernetesEmulator served on loopback from its own thread and event loop."""

    def __init__(self) -> None:
        self._started = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)
        self._thread.start()
        assert self._started.wait(10), "the emulator did not start"

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with kmock.KubernetesEmulator() as api, kmock.Server(api) as server:
            api.resources.load_bundled()  # the built-in kinds: lists of none answer []
            self.api, self.url = api, str(server.url).rstrip("/")
            self._started.set()
            await self._stop.wait()

    def call(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the emulator's loop (where its state is safe to change)."""

        async def run() -> None:
            fn()

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(5)

    def put(self, resource: kmock.resource, namespace: str, obj: Doc) -> None:
        """Store ``obj`` as if a controller had made it."""

        def store() -> None:
            self.api.objects[resource, namespace, obj["metadata"]["name"]] = obj

        self.call(store)

    def set_status(self, resource: kmock.resource, namespace: str, name: str, status: Doc) -> None:
        self.call(lambda: self.api.objects[resource, namespace, name].patch({"status": status}))

    def stored(self, resource: kmock.resource, namespace: str | None, name: str) -> Doc:
        return dict(self.api.objects[resource, namespace, name].raw)

    @property
    def requests(self) -> list[kmock.Request]:
        return list(self.api)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    monkeypatch.setattr(parsing, "parse_path", _parse_path_with_namespaces)
    emulator = Emulator()
    yield emulator
    emulator.close()


@pytest.fixture
def kubeconfig(tmp_path: Path, emulator: Emulator) -> Path:
    """A kubeconfig whose current context is the emulator (context ``down``: a closed port)."""
    path = tmp_path / "kubeconfig"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "emulator", "cluster": {"server": emulator.url}},
            {"name": "down", "cluster": {"server": "http://127.0.0.1:9"}},
        ],
        "users": [{"name": "tester", "user": {"token": TOKEN}}],
        "contexts": [
            {"name": "emulator", "context": {"cluster": "emulator", "user": "tester"}},
            {"name": "down", "context": {"cluster": "down", "user": "tester"}},
        ],
        "current-context": "emulator",
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture
def cluster(kubeconfig: Path) -> Iterator[Cluster]:
    with Cluster.from_kubeconfig(kubeconfig=kubeconfig) as connected:
        yield connected


def status_reply(code: int, reason: str, message: str) -> Doc:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["k8s", *args])


# --- manifests and kinds ------------------------------------------------------------------


@pytest.mark.parametrize("overlay", ["demo", "production"])
def test_every_rendered_object_is_of_a_kind_the_launcher_handles(overlay: str) -> None:
    refs = [ref_of(doc) for doc in rendered(overlay)]

    assert len(refs) > 10
    assert all(ref.kind in KINDS.values() for ref in refs)


def test_namespaces_are_applied_first_and_policies_before_workloads() -> None:
    kinds = [doc["kind"] for doc in in_apply_order(rendered("demo"))]

    assert kinds[:3] == ["Namespace"] * 3
    assert max(i for i, k in enumerate(kinds) if k == "NetworkPolicy") < kinds.index("Deployment")
    assert set(kinds) <= set(APPLY_ORDER)


# --- the round Job -------------------------------------------------------------------------


def demo_job(*, name: str = "fedrisk-round-farmer-credit-test", rounds: int | None = None) -> Doc:
    site = superlink_site(rendered("demo"))
    return round_job(site, model="farmer_credit", name=name, timeout_s=600, rounds=rounds)


@pytest.mark.parametrize("rounds", [None, 3])
def test_the_round_job_is_valid_restricted_and_reaches_the_superlink(rounds: int | None) -> None:
    job = demo_job(rounds=rounds)
    (superlink,) = [
        d
        for d in rendered("demo")
        if d["metadata"]["name"] == "fedrisk-superlink" and d["kind"] == "Deployment"
    ]
    pod = job["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    args = pod["containers"][0]["args"]

    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)
    assert template_problems(job["spec"]["template"]) == []
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["ttlSecondsAfterFinished"] > 0
    assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "round"
    assert {c["image"] for c in pod["containers"] + pod["initContainers"]} == {
        superlink["spec"]["template"]["spec"]["containers"][0]["image"]
    }
    assert volumes["state"]["persistentVolumeClaim"]["claimName"] == "fedrisk-coordinator-state"
    assert volumes["tls"]["secret"]["secretName"] == "fedrisk-link-tls"
    assert volumes["tls"]["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    assert args[:3] == ["link", "run", federation_file("farmer-credit", rounds=rounds)]
    assert "--superlink=fedrisk-superlink.fedrisk-coordinator.svc.cluster.local:9093" in args
    assert pod["containers"][0]["volumeMounts"][0]["readOnly"] is (rounds is None)


def test_strict_validation_rejects_a_job_with_an_unknown_field() -> None:
    job = demo_job()
    job["spec"]["backofLimit"] = 0

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)


def test_every_demo_model_maps_to_the_file_fedrisk_demo_writes() -> None:
    for model in VERTICAL_DEMO_MODELS:
        slug = model.replace("_", "-")  # fedrisk demo: f"{slug}-federation.toml"

        assert ROUND_FEDERATIONS[slug] == f"{slug}-federation.toml"
        assert ROUND_FEDERATIONS[f"{slug}-split"] == f"{slug}-split-federation.toml"
    assert federation_file("farmer_credit") == "/var/lib/fedrisk/farmer-credit-federation.toml"


def test_an_unknown_model_is_refused_with_the_known_ones() -> None:
    with pytest.raises(UnknownModelError, match="farmer-credit"):
        federation_file("credit-scoring")


def test_a_job_name_is_a_dns_label() -> None:
    import datetime as dt

    name = job_name("farmer-credit-split", now=dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC))

    assert name == "fedrisk-round-farmer-credit-split-20250102-030405"
    with pytest.raises(ValueError, match="DNS label"):
        demo_job(name="Bad_Name")


def write_bank_gov_federation(root: Path, *, rounds: int = 4) -> Path:
    """A federation of participants ``bank`` and ``gov`` (the demo overlay's)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("bank", "gov"):
        write_rows(root / f"{name}.csv", rows=20, seed=1, id_prefix=name)
    text = (
        '[federation]\nname = "k8s-test"\nmodel = "logistic"\nmode = "horizontal"\n'
        f'privacy = "none"\nrounds = {rounds}\n\n{schema_block()}\n'
        '[[participants]]\nname = "bank"\nfile = "bank.csv"\n\n'
        '[[participants]]\nname = "gov"\nfile = "gov.csv"\n'
    )
    path = root / "federation.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_stage_script_copies_the_ca_and_sets_the_rounds(tmp_path: Path) -> None:
    # Arrange: the Job's init container, run here on local folders.
    federation = write_bank_gov_federation(tmp_path / "state", rounds=4)
    tls, link = tmp_path / "tls", tmp_path / "link"
    tls.mkdir()
    link.mkdir()
    (tls / "ca.crt").write_bytes(b"CA")
    derived = federation.with_name("federation.rounds-7.toml")

    # Act
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            STAGE_SCRIPT,
            str(tls),
            str(link),
            str(federation),
            str(derived),
            "7",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    # Assert
    assert done.returncode == 0, done.stderr
    assert (link / "ca.crt").read_bytes() == b"CA"
    assert load_federation(derived).rounds == 7
    assert load_federation(federation).rounds == 4


def test_the_stage_script_refuses_a_file_without_a_federation_table(tmp_path: Path) -> None:
    tls, link = tmp_path / "tls", tmp_path / "link"
    tls.mkdir()
    link.mkdir()
    (tls / "ca.crt").write_bytes(b"CA")
    bad = tmp_path / "bad.toml"
    bad.write_text("[other]\nrounds = 2\n", encoding="utf-8")

    done = subprocess.run(
        [
            sys.executable,
            "-c",
            STAGE_SCRIPT,
            str(tls),
            str(link),
            str(bad),
            str(tmp_path / "out.toml"),
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert done.returncode != 0
    assert "cannot set rounds = 3" in done.stderr
    assert not (tmp_path / "out.toml").exists()


# --- Secrets -------------------------------------------------------------------------------


def issue_keys(root: Path, *, hosts: tuple[str, ...]) -> KeyFolders:
    """What `fedrisk keys tls` and `fedrisk keys node` (twice) write for bank and gov."""
    federation = write_bank_gov_federation(root / "fed")
    deployment, node_keys = root / "deployment", root / "node-keys"
    issue_link_credentials(deployment, names=hosts, federation="k8s-test")
    for name in ("bank", "gov"):
        key = issue_node_key(node_keys, name)
        shutil.copyfile(key.public, deployment / "nodes" / key.public.name)
    return KeyFolders(
        federation=federation,
        deployment=deployment,
        node_keys=node_keys,
        participants=("bank", "gov"),
    )


@pytest.fixture
def key_folders(tmp_path: Path) -> KeyFolders:
    return issue_keys(tmp_path, hosts=superlink_site(rendered("demo")).names)


def demo_secrets(folders: KeyFolders) -> dict[str, Doc]:
    docs = rendered("demo")
    built = build_secrets(
        secret_references(docs),
        folders=folders,
        superlink_names=superlink_site(docs).names,
        new_password=lambda: "pw-0123",
    )
    return {secret.name: secret.manifest for secret in built}


def decoded(secret: Doc) -> dict[str, bytes]:
    return {key: base64.b64decode(value) for key, value in secret["data"].items()}


def test_the_demo_secrets_are_built_from_the_key_files(key_folders: KeyFolders) -> None:
    secrets = demo_secrets(key_folders)
    tls = decoded(secrets[f"{COORDINATOR}/fedrisk-link-tls"])
    bank = decoded(secrets["fedrisk-participant-bank/fedrisk-node-key"])

    for secret in secrets.values():
        kubernetes_validate.validate(secret, KUBERNETES_VERSION, strict=True)
    # fedrisk-api-secrets is optional in the demo and has no source here.
    assert {name.split("/")[1] for name in secrets} == SECRET_NAMES - {"fedrisk-api-secrets"}
    assert set(tls) == {"ca.crt", "superlink.crt", "superlink.key"}  # never ca.key
    assert tls["superlink.key"] == (key_folders.deployment / "superlink.key").read_bytes()
    assert set(bank) == {"bank.key", "bank.pub", "ca.crt"}
    assert bank["bank.key"] == (key_folders.node_keys / "bank.key").read_bytes()
    assert set(decoded(secrets[f"{COORDINATOR}/fedrisk-node-allowlist"])) == {"bank.pub", "gov.pub"}
    assert decoded(secrets[f"{COORDINATOR}/fedrisk-postgres"])["password"] == b"pw-0123"


def test_a_missing_key_file_is_named_with_the_command_that_makes_it(
    key_folders: KeyFolders,
) -> None:
    (key_folders.node_keys / "gov.key").unlink()

    with pytest.raises(MissingKeyFileError) as caught:
        demo_secrets(key_folders)

    assert str(key_folders.node_keys / "gov.key") in str(caught.value)
    assert "fedrisk keys node" in str(caught.value) and "--participant gov" in str(caught.value)


def test_a_certificate_without_the_service_name_is_refused(tmp_path: Path) -> None:
    folders = issue_keys(tmp_path, hosts=())

    with pytest.raises(
        K8sError, match=r"fedrisk-superlink\.fedrisk-coordinator\.svc\.cluster\.local"
    ):
        demo_secrets(folders)


def test_production_needs_the_api_settings_and_their_keys(tmp_path: Path) -> None:
    docs = rendered("production")
    folders = issue_keys(tmp_path, hosts=superlink_site(docs).names)
    refs = secret_references(docs)
    names = superlink_site(docs).names
    env = tmp_path / "api.env"
    env.write_text("consent-database-url=postgresql+psycopg://u:p@db:5432/fedrisk\n", "utf-8")

    with pytest.raises(MissingKeyFileError, match=r"consent-database-url, participants.*--api-env"):
        build_secrets(refs, folders=folders, superlink_names=names)
    with pytest.raises(K8sError, match="would lack participants"):
        build_secrets(refs, folders=folders, superlink_names=names, api_env=env)
    env.write_text(env.read_text() + 'participants={"bank": "https://bank:8101"}\n', "utf-8")
    built = build_secrets(refs, folders=folders, superlink_names=names, api_env=env)
    (api,) = [b.manifest for b in built if b.manifest["metadata"]["name"] == "fedrisk-api-secrets"]
    kubernetes_validate.validate(api, KUBERNETES_VERSION, strict=True)
    assert decoded(api)["participants"] == b'{"bank": "https://bank:8101"}'


def test_a_dry_run_prints_the_secrets_without_their_values(key_folders: KeyFolders) -> None:
    key = (key_folders.deployment / "superlink.key").read_bytes()

    result = invoke(
        "secrets",
        str(key_folders.federation),
        "--overlay",
        "demo",
        "--dry-run",
        "--credentials",
        str(key_folders.deployment),
        "--node-keys",
        str(key_folders.node_keys),
    )

    assert result.exit_code == 0, result.output
    printed = list(yaml.safe_load_all(result.stdout))
    assert {d["metadata"]["name"] for d in printed} >= {"fedrisk-link-tls", "fedrisk-node-key"}
    assert (
        "PRIVATE KEY" not in result.output and base64.b64encode(key).decode() not in result.output
    )
    assert "<redacted:" in result.stdout
    assert redacted({"data": {"k": base64.b64encode(b"abc").decode()}}) == {
        "data": {"k": "<redacted: 3 bytes>"}
    }


# --- applying, against the emulator --------------------------------------------------------


def test_apply_creates_every_object_namespaces_first(cluster: Cluster, emulator: Emulator) -> None:
    docs = rendered("demo")

    done = apply_objects(cluster, docs)

    posts = [r for r in emulator.requests if r.method == "POST"]
    assert [a.action for a in done] == ["created"] * len(docs)
    assert [r.url.path for r in posts[:3]] == ["/api/v1/namespaces"] * 3
    assert {r.data["metadata"]["name"] for r in posts[:3]} == {
        COORDINATOR,
        "fedrisk-participant-bank",
        "fedrisk-participant-gov",
    }
    assert sorted(map(str, (ref_of(r.data) for r in posts))) == sorted(map(str, map(ref_of, docs)))
    superlink = next(
        r
        for r in posts
        if r.data["metadata"]["name"] == "fedrisk-superlink" and r.data["kind"] == "Deployment"
    )
    assert superlink.url.path == f"/apis/apps/v1/namespaces/{COORDINATOR}/deployments"
    assert superlink.data == next(d for d in docs if ref_of(d) == ref_of(superlink.data))
    assert superlink.params["fieldManager"] == FIELD_MANAGER
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in emulator.requests)


def test_apply_again_patches_each_object_by_server_side_apply(
    cluster: Cluster, emulator: Emulator
) -> None:
    docs = rendered("demo")
    apply_objects(cluster, docs)
    before = len(emulator.requests)

    done = apply_objects(cluster, docs)

    again = emulator.requests[before:]
    patches = [r for r in again if r.method == "PATCH"]
    assert [a.action for a in done] == ["patched"] * len(docs)
    assert [r.method for r in again] == ["POST", "PATCH"] * len(docs)  # 409, then apply
    assert all(r.headers["Content-Type"] == "application/apply-patch+yaml" for r in patches)
    assert all(r.params == {"fieldManager": FIELD_MANAGER, "force": "true"} for r in patches)
    api = next(r for r in patches if r.url.path.endswith("/deployments/fedrisk-api"))
    assert api.url.path == f"/apis/apps/v1/namespaces/{COORDINATOR}/deployments/fedrisk-api"
    assert api.data == next(
        d for d in docs if d["metadata"]["name"] == "fedrisk-api" and d["kind"] == "Deployment"
    )


def test_a_forbidden_create_is_one_line_naming_the_object(
    kubeconfig: Path, emulator: Emulator
) -> None:
    message = 'deployments.apps is forbidden: User "ci" cannot create resource "deployments"'
    (
        emulator.api[f"post /apis/apps/v1/namespaces/{COORDINATOR}/deployments"]
        << 403
        << (status_reply(403, "Forbidden", message))
    )

    result = invoke("apply", "--overlay", "demo", "--kubeconfig", str(kubeconfig))

    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error")]
    first = next(d for d in in_apply_order(rendered("demo")) if d["kind"] == "Deployment")
    assert errors == [f"error: create {ref_of(first)}: 403 Forbidden: {message}"]
    assert "Traceback" not in result.output
    # It stopped at the refusal: nothing after the first Deployment was sent.
    assert not any(r.url.path.endswith("/horizontalpodautoscalers") for r in emulator.requests)


def test_an_invalid_patch_surfaces_what_the_api_said(cluster: Cluster, emulator: Emulator) -> None:
    docs = [
        d
        for d in rendered("demo")
        if d["metadata"]["name"] in (COORDINATOR, "fedrisk-api")
        and d["kind"] in ("Namespace", "Service")
    ]
    apply_objects(cluster, docs)
    message = 'Service "fedrisk-api" is invalid: spec.ports[0].port: Invalid value: 0'
    (
        emulator.api[f"patch /api/v1/namespaces/{COORDINATOR}/services/fedrisk-api"]
        << 422
        << (status_reply(422, "Invalid", message + "\nmore detail"))
    )

    with pytest.raises(ApiError) as caught:
        apply_objects(cluster, docs)

    assert caught.value.status == 422
    assert str(caught.value) == f"apply Service {COORDINATOR}/fedrisk-api: 422 Invalid: {message}"


def test_an_unreachable_api_is_one_line(kubeconfig: Path) -> None:
    pods = KINDS[("v1", "Pod")]
    with (
        Cluster.from_kubeconfig(kubeconfig=kubeconfig, context="down") as down,
        pytest.raises(UnreachableError, match="cannot reach the Kubernetes API at http://127"),
    ):
        down.list_objects(pods, namespace=COORDINATOR)


def test_a_missing_kubeconfig_is_named(tmp_path: Path) -> None:
    result = invoke("status", "--kubeconfig", str(tmp_path / "nope"))

    assert result.exit_code == 1
    assert f"no kubeconfig {tmp_path / 'nope'}" in result.output


# --- readiness ------------------------------------------------------------------------------


def deployment(*, replicas: int, status: Doc, generation: int | None = None) -> Doc:
    meta: Doc = {"name": "x", "namespace": "n"}
    if generation is not None:
        meta["generation"] = generation
    return {"metadata": meta, "spec": {"replicas": replicas}, "status": status}


def test_readiness_follows_rollout_status() -> None:
    ref = ObjectRef(KINDS[("apps/v1", "Deployment")], "x", "n")
    done = {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}

    assert readiness_of(ref, deployment(replicas=2, status=done, generation=2)).ready
    assert not readiness_of(ref, deployment(replicas=2, status=done, generation=3)).ready
    assert not readiness_of(ref, deployment(replicas=2, status={**done, "replicas": 3})).ready
    assert not readiness_of(
        ref, deployment(replicas=2, status={**done, "availableReplicas": 1})
    ).ready
    assert readiness_of(ref, None).summary == "not found"


def test_waiting_ends_when_the_controllers_report_ready(
    cluster: Cluster, emulator: Emulator
) -> None:
    docs = rendered("demo")
    apply_objects(cluster, docs)
    refs = workloads(docs)
    for ref in refs:
        resource = DEPLOYMENTS if ref.kind.kind == "Deployment" else STATEFULSETS
        want = next(d for d in docs if ref_of(d) == ref)["spec"].get("replicas", 1)
        emulator.set_status(
            resource,
            str(ref.namespace),
            ref.name,
            {
                "replicas": want,
                "updatedReplicas": want,
                "readyReplicas": want,
                "availableReplicas": want,
            },
        )
    seen: list[str] = []

    states = wait_ready(
        cluster, refs, timeout_s=5, poll_s=0.02, on_change=lambda s: seen.append(str(s))
    )

    assert all(state.ready for state in states)
    assert len(refs) == 7 and len(seen) == 7
    assert f"Deployment {COORDINATOR}/fedrisk-api: 2/2 available, 2 updated" in seen


def test_a_readiness_timeout_names_what_is_stuck_and_why(
    kubeconfig: Path, emulator: Emulator
) -> None:
    # Arrange: the API's pod cannot pull its image; its volume's Secret is missing.
    emulator.put(
        PODS,
        COORDINATOR,
        {
            "metadata": {
                "name": "fedrisk-api-5d8f-abcde",
                "namespace": COORDINATOR,
                "labels": {
                    "app.kubernetes.io/name": "fedrisk",
                    "app.kubernetes.io/component": "api",
                },
            },
            "status": {
                "phase": "Pending",
                "containerStatuses": [
                    {
                        "name": "api",
                        "state": {
                            "waiting": {
                                "reason": "ImagePullBackOff",
                                "message": 'Back-off pulling image "fedrisk:demo"',
                            }
                        },
                    }
                ],
            },
        },
    )
    emulator.put(
        EVENTS,
        COORDINATOR,
        {
            "metadata": {"name": "ev1", "namespace": COORDINATOR},
            "type": "Warning",
            "reason": "FailedMount",
            "count": 4,
            "lastTimestamp": "2025-01-01T00:00:00Z",
            "message": 'MountVolume.SetUp failed: secret "fedrisk-link-tls" not found',
            "involvedObject": {"kind": "Pod", "name": "fedrisk-superlink-6c9-xyz12"},
        },
    )

    # Act
    result = invoke(
        "apply", "--overlay", "demo", "--timeout", "0.3", "--kubeconfig", str(kubeconfig)
    )

    # Assert
    assert result.exit_code == 1
    out = result.output
    assert "7 of 7 workloads not ready after 0.3 s" in out
    assert f"Deployment {COORDINATOR}/fedrisk-api: 0/2 available" in out
    assert "pod fedrisk-api-5d8f-abcde: Pending; container api waiting: ImagePullBackOff" in out
    assert "event Warning FailedMount (x4) on pod/fedrisk-superlink-6c9-xyz12" in out
    assert f"kubectl -n {COORDINATOR} describe" in out
    assert "fedrisk k8s secrets FEDERATION --overlay demo" in out  # the Secrets do not exist
    assert "Traceback" not in out


# --- status ---------------------------------------------------------------------------------


def test_status_of_a_missing_job_is_a_clear_404(kubeconfig: Path, emulator: Emulator) -> None:
    result = invoke("status", "--job", "fedrisk-round-nope", "--kubeconfig", str(kubeconfig))

    assert result.exit_code == 1
    assert f"no Job fedrisk-round-nope in namespace {COORDINATOR}" in result.output
    (get,) = [r for r in emulator.requests if r.url.path.endswith("/jobs/fedrisk-round-nope")]
    assert get.method == "GET"
    assert get.url.path == f"/apis/batch/v1/namespaces/{COORDINATOR}/jobs/fedrisk-round-nope"


def test_status_before_apply_names_the_missing_namespaces(
    kubeconfig: Path, emulator: Emulator
) -> None:
    result = invoke("status", "--overlay", "demo", "--kubeconfig", str(kubeconfig))

    assert result.exit_code == 1
    assert f"namespace {COORDINATOR}: missing" in result.output
    assert "its namespace does not exist" in result.output
    assert [r.url.path for r in emulator.requests] == [
        f"/api/v1/namespaces/{n}"
        for n in (COORDINATOR, "fedrisk-participant-bank", "fedrisk-participant-gov")
    ]


def test_status_lists_the_workloads_and_recent_rounds(
    cluster: Cluster, kubeconfig: Path, emulator: Emulator
) -> None:
    apply_objects(cluster, rendered("demo"))
    job = demo_job()
    emulator.put(
        JOBS, COORDINATOR, {**job, "status": {"succeeded": 1, "startTime": "2025-01-01T00:00:00Z"}}
    )

    result = invoke("status", "--overlay", "demo", "--kubeconfig", str(kubeconfig))

    assert result.exit_code == 1  # nothing is ready: no controller runs in the emulator
    assert f"NOT READY  Deployment {COORDINATOR}/fedrisk-superlink" in result.output
    assert "Job fedrisk-round-farmer-credit-test (farmer-credit): Succeeded" in result.output


# --- rounds ---------------------------------------------------------------------------------


def job_controller(emulator: Emulator, *, succeeded: bool, log: bytes) -> str:
    """Play the Job controller and kubelet: when a Job is created, give it one pod that
    ran (its log is ``log``) and a final status. Returns the pod's name."""
    job = demo_job()
    name = job["metadata"]["name"]
    pod = f"{name}-x7k2p"

    def on_create() -> None:
        phase = "Succeeded" if succeeded else "Failed"
        emulator.api.objects[PODS, COORDINATOR, pod] = {
            "metadata": {
                "name": pod,
                "namespace": COORDINATOR,
                "labels": {"job-name": name},
                "creationTimestamp": "2025-01-01T00:00:00Z",
            },
            "status": {"phase": phase},
        }
        condition = (
            {"type": "Complete", "status": "True"}
            if succeeded
            else {
                "type": "Failed",
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
            }
        )
        emulator.api.objects[JOBS, COORDINATOR, name].patch(
            {"status": {"conditions": [condition], ("succeeded" if succeeded else "failed"): 1}}
        )

    emulator.api[f"post /apis/batch/v1/namespaces/{COORDINATOR}/jobs"] >> on_create
    emulator.api[f"get /api/v1/namespaces/{COORDINATOR}/pods/{pod}/log"] << log
    return pod


def test_a_round_that_succeeds_returns_its_log(cluster: Cluster, emulator: Emulator) -> None:
    pod = job_controller(emulator, succeeded=True, log=b"round 1: auc 0.71\nround 2: auc 0.74\n")
    job = demo_job()
    lines: list[str] = []

    outcome = run_round(cluster, job, timeout_s=5, poll_s=0.02, on_log=lines.append)

    assert outcome.succeeded and outcome.pod == pod
    assert outcome.log == ("round 1: auc 0.71", "round 2: auc 0.74") == tuple(lines)
    (create,) = [r for r in emulator.requests if r.method == "POST"]
    assert create.url.path == f"/apis/batch/v1/namespaces/{COORDINATOR}/jobs"
    assert create.data == job
    (follow,) = [r for r in emulator.requests if r.url.path.endswith("/log")]
    assert follow.params == {"container": "round", "follow": "true"}


def test_a_round_that_fails_prints_its_log_and_exits_non_zero(
    kubeconfig: Path, emulator: Emulator
) -> None:
    job_controller(emulator, succeeded=False, log=b"error: run 7 ended finished:failed\n")

    result = invoke(
        "round",
        "--model",
        "farmer-credit",
        "--overlay",
        "demo",
        "--timeout",
        "5",
        "--name",
        "fedrisk-round-farmer-credit-test",
        "--kubeconfig",
        str(kubeconfig),
    )

    assert result.exit_code == 1
    assert "error: run 7 ended finished:failed" in result.stdout
    assert (
        f"error: Job {COORDINATOR}/fedrisk-round-farmer-credit-test Failed "
        "(BackoffLimitExceeded: Job has reached the specified backoff limit)"
    ) in result.output


def test_a_round_that_never_starts_times_out_clearly(cluster: Cluster, emulator: Emulator) -> None:
    with pytest.raises(RoundError) as caught:
        run_round(cluster, demo_job(), timeout_s=0.3, poll_s=0.02)

    message = str(caught.value)
    assert (
        f"Job {COORDINATOR}/fedrisk-round-farmer-credit-test did not finish within 0.3 s" in message
    )
    assert "no pod yet" in message and "kubectl -n fedrisk-coordinator logs job/" in message


def test_job_states() -> None:
    assert job_state({}).summary == "Pending"
    assert job_state({"status": {"active": 1}}) == job_state({"status": {"active": 2}})
    assert not job_state({"status": {"active": 1}}).finished
    assert job_state({"status": {"conditions": [{"type": "Complete", "status": "True"}]}}).succeeded
    failed = job_state(
        {
            "status": {
                "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]
            }
        }
    )
    assert failed.finished and not failed.succeeded and "DeadlineExceeded" in failed.summary


def test_the_secrets_command_creates_once_then_patches_and_keeps_the_password(
    kubeconfig: Path, emulator: Emulator, key_folders: KeyFolders
) -> None:
    args = (
        "secrets",
        str(key_folders.federation),
        "--overlay",
        "demo",
        "--kubeconfig",
        str(kubeconfig),
        "--credentials",
        str(key_folders.deployment),
        "--node-keys",
        str(key_folders.node_keys),
    )

    first = invoke(*args)
    password = emulator.stored(kmock.resource("", "v1", "secrets"), COORDINATOR, "fedrisk-postgres")
    second = invoke(*args)

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert f"created Secret {COORDINATOR}/fedrisk-link-tls" in first.output
    assert f"patched Secret {COORDINATOR}/fedrisk-link-tls" in second.output
    assert f"kept Secret {COORDINATOR}/fedrisk-postgres" in second.output
    patched = {r.url.path for r in emulator.requests if r.method == "PATCH"}
    assert f"/api/v1/namespaces/{COORDINATOR}/secrets/fedrisk-postgres" not in patched
    assert f"/api/v1/namespaces/{COORDINATOR}/secrets/fedrisk-link-tls" in patched
    assert (
        emulator.stored(kmock.resource("", "v1", "secrets"), COORDINATOR, "fedrisk-postgres")
        == password
    )
    posted = [r.data for r in emulator.requests if r.method == "POST"]
    assert posted[0]["kind"] == "Namespace"
