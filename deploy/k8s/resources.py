"""The kinds of object the launcher handles, and where each lives in the Kubernetes API.

A fixed table rather than API discovery: the launcher applies only what deploy/k8s renders
and what it builds itself (Secrets, round Jobs), so every kind is known in advance, and
one request per object (no discovery round trips) keeps the traffic easy to follow.
``tests/test_k8s_launcher.py`` checks that every rendered kind is in the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ManifestError

__all__ = ["KINDS", "Kind", "ObjectRef", "kind_of", "ref_of"]


@dataclass(frozen=True)
class Kind:
    """One kind of object: its group/version, its name in URLs and its scope."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    def collection(self, namespace: str | None) -> str:
        """The URL path of this kind's collection (in ``namespace`` when namespaced)."""
        root = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if not self.namespaced:
            return f"{root}/{self.plural}"
        if not namespace:
            raise ManifestError(f"{self.kind} objects are namespaced; no namespace given")
        return f"{root}/namespaces/{namespace}/{self.plural}"


KINDS: dict[tuple[str, str], Kind] = {
    (k.api_version, k.kind): k
    for k in (
        Kind("v1", "Namespace", "namespaces", namespaced=False),
        Kind("v1", "ServiceAccount", "serviceaccounts"),
        Kind("v1", "Secret", "secrets"),
        Kind("v1", "ConfigMap", "configmaps"),
        Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
        Kind("v1", "Service", "services"),
        Kind("v1", "Pod", "pods"),
        Kind("v1", "Event", "events"),
        Kind("apps/v1", "Deployment", "deployments"),
        Kind("apps/v1", "StatefulSet", "statefulsets"),
        Kind("batch/v1", "Job", "jobs"),
        Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
        Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
        Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    )
}


def kind_of(api_version: str, kind: str) -> Kind:
    """The table's entry for ``kind`` (else :class:`ManifestError`)."""
    try:
        return KINDS[(api_version, kind)]
    except KeyError:
        raise ManifestError(
            f"the launcher does not handle {kind} ({api_version}): apply it with "
            "`kubectl apply -f`, or add it to deploy/k8s/resources.py"
        ) from None


@dataclass(frozen=True)
class ObjectRef:
    """One object: its kind, namespace (``None`` when cluster-scoped) and name."""

    kind: Kind
    name: str
    namespace: str | None = None

    @property
    def path(self) -> str:
        """The object's URL path."""
        return f"{self.kind.collection(self.namespace)}/{self.name}"

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind.kind} {where}{self.name}"


def ref_of(doc: dict[str, Any]) -> ObjectRef:
    """The reference of a manifest (``apiVersion``, ``kind``, ``metadata``)."""
    meta = doc.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise ManifestError(f"a {doc.get('kind', 'document')} without metadata.name")
    kind = kind_of(str(doc.get("apiVersion")), str(doc.get("kind")))
    namespace = meta.get("namespace") if kind.namespaced else None
    if kind.namespaced and not namespace:
        raise ManifestError(f"{kind.kind} {name} has no metadata.namespace")
    return ObjectRef(kind=kind, name=str(name), namespace=namespace)
