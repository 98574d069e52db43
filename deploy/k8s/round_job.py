"""The batch/v1 Job that runs one training run (``fedrisk link run``) against the SuperLink.

Which federation file a model trains from. The coordinator's state volume
(``/var/lib/fedrisk``) holds the steward's federation files under the names ``fedrisk
demo`` gives them, so a model maps to a file name; a vertical model's split-network
variant is ``MODEL-split``::

    iot-risk             iot-federation.toml
    farmer-credit        farmer-credit-federation.toml
    farmer-credit-split  farmer-credit-split-federation.toml
    sme-risk             sme-risk-federation.toml
    sme-risk-split       sme-risk-split-federation.toml

Model names are accepted with ``_`` or ``-`` (``farmer_credit`` is ``farmer-credit``).

The Job copies what the SuperLink's pod promises: the same image, uid 10001, read-only
root filesystem, no privilege escalation, every capability dropped, seccomp
``RuntimeDefault``, requests and limits, no service account token. It mounts the
coordinator's state volume (read-only unless ``--rounds`` writes a derived federation
file) and only ``ca.crt`` of the SuperLink's TLS Secret (never its private key). Its label
``app.kubernetes.io/component: round`` is what the coordinator's NetworkPolicies let reach
the SuperLink. ``backoffLimit: 0``: a failed run is reported, not retried behind the
steward's back.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ManifestError, UnknownModelError

__all__ = [
    "ROUND_COMPONENT",
    "ROUND_FEDERATIONS",
    "STAGE_SCRIPT",
    "STATE_DIR",
    "SuperlinkSite",
    "federation_file",
    "job_name",
    "model_slug",
    "round_job",
    "superlink_site",
]

STATE_DIR = "/var/lib/fedrisk"
LINK_DIR = "/var/run/fedrisk/link"
TLS_DIR = "/etc/fedrisk/tls"
ROUND_COMPONENT = "round"
ROUND_FEDERATIONS = {
    "iot-risk": "iot-federation.toml",
    "farmer-credit": "farmer-credit-federation.toml",
    "farmer-credit-split": "farmer-credit-split-federation.toml",
    "sme-risk": "sme-risk-federation.toml",
    "sme-risk-split": "sme-risk-split-federation.toml",
}
#: Finished round Jobs stay a day (``fedrisk k8s status`` lists them), then go.
TTL_AFTER_FINISHED_S = 24 * 3600
#: ``link run`` gives up this much before the Job's deadline, so it stops the run itself.
LINK_GRACE_S = 60.0
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")

# The init container: ``link run`` writes its flwr connection beside ca.crt, so ca.crt is
# copied from the read-only Secret into an emptyDir; with --rounds, a copy of the
# federation file with [federation].rounds replaced is written beside the original (so
# its relative paths still hold). argv: TLS_DIR LINK_DIR [SOURCE TARGET ROUNDS].
STAGE_SCRIPT = """\
import pathlib, re, shutil, sys, tomllib
shutil.copyfile(pathlib.Path(sys.argv[1]) / "ca.crt", pathlib.Path(sys.argv[2]) / "ca.crt")
if len(sys.argv) > 3:
    src, dst, rounds = pathlib.Path(sys.argv[3]), pathlib.Path(sys.argv[4]), int(sys.argv[5])
    text = src.read_text(encoding="utf-8")
    new, n = re.subn(r"(?m)^rounds[ \\t]*=.*$", f"rounds = {rounds}", text, count=1)
    if n == 0:
        new = re.sub(r"(?m)^\\[federation\\][ \\t]*$", f"[federation]\\nrounds = {rounds}", text)
    if tomllib.loads(new).get("federation", {}).get("rounds") != rounds:
        sys.exit(f"cannot set rounds = {rounds} in the [federation] table of {src}")
    dst.write_text(new, encoding="utf-8")
"""


def model_slug(model: str) -> str:
    """``model`` as a key of :data:`ROUND_FEDERATIONS` (else :class:`UnknownModelError`)."""
    slug = model.strip().lower().replace("_", "-")
    if slug not in ROUND_FEDERATIONS:
        raise UnknownModelError(
            f"no federation file is known for model {model!r}: use one of "
            f"{', '.join(ROUND_FEDERATIONS)}"
        )
    return slug


def federation_file(model: str, *, rounds: int | None = None) -> str:
    """The path, on the coordinator's state volume, of the file ``model`` trains from
    (with ``rounds``: the derived copy the Job writes)."""
    name = ROUND_FEDERATIONS[model_slug(model)]
    if rounds is not None:
        name = name.removesuffix(".toml") + f".rounds-{rounds}.toml"
    return f"{STATE_DIR}/{name}"


def job_name(model: str, *, now: dt.datetime) -> str:
    """``fedrisk-round-MODEL-YYYYMMDD-HHMMSS`` (UTC; at most 63 characters)."""
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"fedrisk-round-{model_slug(model)}-{stamp}"


@dataclass(frozen=True)
class SuperlinkSite:
    """What a round Job copies from the rendered SuperLink Deployment and Service."""

    namespace: str
    image: str
    address: str
    pod_security: dict[str, Any]
    container_security: dict[str, Any]
    state_claim: str
    tls_secret: str

    @property
    def names(self) -> tuple[str, ...]:
        """The DNS names the SuperLink's certificate must carry."""
        host = self.address.rsplit(":", 1)[0]
        return (host, host.removesuffix(".cluster.local"))


def _component(docs: Iterable[dict[str, Any]], kind: str, component: str) -> dict[str, Any]:
    found = [
        doc
        for doc in docs
        if doc.get("kind") == kind
        and ((doc.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/component")
        == component
    ]
    if len(found) != 1:
        raise ManifestError(
            f"expected one {kind} labelled component={component}, found {len(found)}"
        )
    return found[0]


def superlink_site(docs: Sequence[dict[str, Any]]) -> SuperlinkSite:
    """The SuperLink's image, security contexts, volumes and Service address in ``docs``."""
    deployment = _component(docs, "Deployment", "superlink")
    service = _component(docs, "Service", "superlink")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "superlink"]
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    try:
        claim = volumes["state"]["persistentVolumeClaim"]["claimName"]
        tls = volumes["tls"]["secret"]["secretName"]
    except KeyError as exc:
        raise ManifestError(f"the SuperLink Deployment has no {exc} volume as expected") from exc
    meta = service["metadata"]
    port = next(p["port"] for p in service["spec"]["ports"] if p.get("name") == "superlink")
    return SuperlinkSite(
        namespace=meta["namespace"],
        image=container["image"],
        address=f"{meta['name']}.{meta['namespace']}.svc.cluster.local:{port}",
        pod_security=dict(pod.get("securityContext") or {}),
        container_security=dict(container.get("securityContext") or {}),
        state_claim=claim,
        tls_secret=tls,
    )


def _labels(slug: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "fedrisk",
        "app.kubernetes.io/component": ROUND_COMPONENT,
        "app.kubernetes.io/part-of": "fedrisk",
        "app.kubernetes.io/managed-by": "fedrisk-launcher",
        "fedrisk.io/model": slug,
    }


def round_job(
    site: SuperlinkSite,
    *,
    model: str,
    name: str,
    timeout_s: float,
    rounds: int | None = None,
) -> dict[str, Any]:
    """The Job running ``fedrisk link run`` for ``model``'s federation file, stopped by
    Kubernetes after ``timeout_s`` (``link run`` itself gives up a little earlier)."""
    slug = model_slug(model)
    if not _DNS_LABEL.fullmatch(name):
        raise ValueError(f"a Job name must be a DNS label of at most 63 characters, got {name!r}")
    if timeout_s < 1:
        raise ValueError(f"timeout_s must be >= 1, got {timeout_s}")
    if rounds is not None and rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    source = federation_file(slug)
    federation = federation_file(slug, rounds=rounds)
    stage_args = [TLS_DIR, LINK_DIR] + (
        [source, federation, str(rounds)] if rounds is not None else []
    )
    link_timeout_s = max(1.0, timeout_s - min(LINK_GRACE_S, timeout_s / 10))
    mounts = [
        {"name": "state", "mountPath": STATE_DIR, "readOnly": rounds is None},
        {"name": "link", "mountPath": LINK_DIR},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    labels = _labels(slug)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": site.namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED_S,
            "activeDeadlineSeconds": math.ceil(timeout_s),
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": site.pod_security,
                    "initContainers": [
                        {
                            "name": "stage",
                            "image": site.image,
                            "command": ["python", "-c", STAGE_SCRIPT, *stage_args],
                            "securityContext": site.container_security,
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "64Mi"},
                                "limits": {"cpu": "200m", "memory": "128Mi"},
                            },
                            "volumeMounts": [
                                *mounts,
                                {"name": "tls", "mountPath": TLS_DIR, "readOnly": True},
                            ],
                        }
                    ],
                    "containers": [
                        {
                            "name": ROUND_COMPONENT,
                            "image": site.image,
                            "args": [
                                "link",
                                "run",
                                federation,
                                f"--superlink={site.address}",
                                f"--credentials={LINK_DIR}",
                                f"--timeout={link_timeout_s:g}",
                            ],
                            "securityContext": site.container_security,
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "256Mi"},
                                "limits": {"cpu": "1", "memory": "1Gi"},
                            },
                            "volumeMounts": mounts,
                        }
                    ],
                    "volumes": [
                        {"name": "state", "persistentVolumeClaim": {"claimName": site.state_claim}},
                        {
                            "name": "tls",
                            "secret": {
                                "secretName": site.tls_secret,
                                "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                "defaultMode": 0o440,
                            },
                        },
                        {"name": "link", "emptyDir": {"sizeLimit": "16Mi"}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
                    ],
                },
            },
        },
    }
