"""Where an applied overlay stands: its namespaces, the readiness of the coordinator's and
the participants' workloads, and the recent round Jobs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .cluster import Cluster
from .errors import K8sError
from .readiness import Readiness, readiness_of, workloads
from .resources import KINDS, ObjectRef
from .round_job import ROUND_COMPONENT
from .rounds import JobState, job_state

__all__ = ["OverlayStatus", "RoundSummary", "overlay_status", "round_status"]

NAMESPACE = KINDS[("v1", "Namespace")]
JOB = KINDS[("batch/v1", "Job")]
RECENT_ROUNDS = 5


@dataclass(frozen=True)
class RoundSummary:
    """One round Job: its name, model, state and start time."""

    name: str
    model: str
    state: JobState
    started: str

    def __str__(self) -> str:
        return f"Job {self.name} ({self.model}): {self.state.summary}, started {self.started}"


@dataclass(frozen=True)
class OverlayStatus:
    """The namespaces an overlay lacks, its workloads' readiness and its recent rounds."""

    missing_namespaces: tuple[str, ...]
    workloads: tuple[Readiness, ...]
    rounds: tuple[RoundSummary, ...]

    @property
    def ready(self) -> bool:
        return not self.missing_namespaces and all(w.ready for w in self.workloads)


def _summary(job: dict[str, Any]) -> RoundSummary:
    meta = job.get("metadata") or {}
    status = job.get("status") or {}
    return RoundSummary(
        name=str(meta.get("name")),
        model=str((meta.get("labels") or {}).get("fedrisk.io/model", "?")),
        state=job_state(job),
        started=str(status.get("startTime") or meta.get("creationTimestamp") or "not yet"),
    )


def overlay_status(
    cluster: Cluster,
    docs: Sequence[dict[str, Any]],
    *,
    coordinator: str,
    recent: int = RECENT_ROUNDS,
) -> OverlayStatus:
    """The state of the rendered ``docs`` in the cluster; round Jobs from ``coordinator``."""
    namespaces = [str(d["metadata"]["name"]) for d in docs if d.get("kind") == "Namespace"]
    missing = tuple(name for name in namespaces if cluster.find(ObjectRef(NAMESPACE, name)) is None)
    states = tuple(
        Readiness(ref, False, "its namespace does not exist")
        if ref.namespace in missing
        else readiness_of(ref, cluster.find(ref))
        for ref in workloads(docs)
    )
    rounds: tuple[RoundSummary, ...] = ()
    if coordinator not in missing:
        jobs = cluster.list_objects(
            JOB, namespace=coordinator, labels={"app.kubernetes.io/component": ROUND_COMPONENT}
        )
        summaries = sorted((_summary(job) for job in jobs), key=lambda s: (s.started, s.name))
        rounds = tuple(summaries[-recent:])
    return OverlayStatus(missing, states, rounds)


def round_status(cluster: Cluster, *, namespace: str, name: str) -> RoundSummary:
    """The round Job ``name`` in ``namespace`` (:class:`K8sError` when there is none)."""
    job = cluster.find(ObjectRef(JOB, name, namespace))
    if job is None:
        raise K8sError(
            f"no Job {name} in namespace {namespace} (finished rounds are deleted after a "
            "day): list the recent ones with `fedrisk k8s status`"
        )
    return _summary(job)
