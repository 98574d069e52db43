"""Which Secrets the rendered manifests use, read from the manifests themselves.

A pod template can name a Secret as a volume (``secret.secretName``, projected sources),
one key of it as an environment variable (``secretKeyRef``) or all of it as environment
(``envFrom.secretRef``). The launcher builds exactly the Secrets found here, in their
namespaces, with at least the keys the pods read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .resources import ref_of

__all__ = ["SecretRef", "pod_template", "secret_references"]


@dataclass(frozen=True)
class SecretRef:
    """One Secret the manifests use, and how."""

    namespace: str
    name: str
    #: Keys a pod reads by name (``secretKeyRef.key``, a volume's ``items``).
    keys: frozenset[str] = frozenset()
    #: True when every use is marked ``optional``: pods start without it.
    optional: bool = False
    #: The ``--participant`` of the containers that use it (a node key Secret's owner).
    participants: frozenset[str] = frozenset()
    #: The workloads that use it (``Deployment ns/name``).
    users: tuple[str, ...] = field(default=())


def pod_template(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template of a workload (``None`` for other kinds)."""
    spec = doc.get("spec") or {}
    if doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return spec.get("template")
    if doc.get("kind") == "CronJob":
        return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
    return None


def _participants(containers: list[dict[str, Any]]) -> set[str]:
    found = set()
    for container in containers:
        args = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
        for n, arg in enumerate(args):
            if arg.startswith("--participant="):
                found.add(arg.split("=", 1)[1])
            elif arg == "--participant" and n + 1 < len(args):
                found.add(args[n + 1])
    return found


def _uses(pod_spec: dict[str, Any]) -> Iterator[tuple[str, set[str], bool]]:
    """(Secret name, keys read, optional) of every use in one pod spec."""
    for volume in pod_spec.get("volumes") or []:
        secret = volume.get("secret")
        if secret and secret.get("secretName"):
            keys = {item["key"] for item in secret.get("items") or []}
            yield secret["secretName"], keys, bool(secret.get("optional"))
        for source in (volume.get("projected") or {}).get("sources") or []:
            secret = source.get("secret")
            if secret and secret.get("name"):
                keys = {item["key"] for item in secret.get("items") or []}
                yield secret["name"], keys, bool(secret.get("optional"))
    containers = (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or [])
    for container in containers:
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref and ref.get("name"):
                yield ref["name"], {ref["key"]}, bool(ref.get("optional"))
        for env_from in container.get("envFrom") or []:
            ref = env_from.get("secretRef")
            if ref and ref.get("name"):
                yield ref["name"], set(), bool(ref.get("optional"))


def secret_references(docs: Iterable[dict[str, Any]]) -> list[SecretRef]:
    """Every Secret the workloads among ``docs`` use, by namespace and name."""
    merged: dict[tuple[str, str], SecretRef] = {}
    for doc in docs:
        template = pod_template(doc)
        if template is None:
            continue
        owner = ref_of(doc)
        namespace = str(owner.namespace)
        spec = template.get("spec") or {}
        containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
        participants = frozenset(_participants(containers))
        for name, keys, optional in _uses(spec):
            old = merged.get((namespace, name))
            users = (*old.users, str(owner)) if old else (str(owner),)
            merged[(namespace, name)] = SecretRef(
                namespace=namespace,
                name=name,
                keys=frozenset(keys) | (old.keys if old else frozenset()),
                optional=optional and (old.optional if old else True),
                participants=participants | (old.participants if old else frozenset()),
                users=tuple(dict.fromkeys(users)),
            )
    return [merged[key] for key in sorted(merged)]
