"""Whether Deployments and StatefulSets are ready, waiting for them, and what to say when
they are not: their conditions, their pods' waiting reasons and their latest events.

Ready means what ``kubectl rollout status`` waits for: the controller has seen the latest
spec (``observedGeneration``), every replica runs it and is available (Deployments) or
ready (StatefulSets), and no replica of an older spec is left.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .cluster import Cluster
from .errors import NotReadyError
from .resources import KINDS, ObjectRef, ref_of

__all__ = [
    "Readiness",
    "WORKLOAD_KINDS",
    "check_ready",
    "diagnose",
    "latest_events",
    "pod_problems",
    "readiness_of",
    "wait_ready",
    "workloads",
]

WORKLOAD_KINDS = ("Deployment", "StatefulSet")
POD = KINDS[("v1", "Pod")]
EVENT = KINDS[("v1", "Event")]
#: How many pods and events a diagnosis names per workload.
DIAGNOSED_PODS = 3
DIAGNOSED_EVENTS = 3


@dataclass(frozen=True)
class Readiness:
    """One workload's state: ready or not, in a few words, and its telling conditions."""

    ref: ObjectRef
    ready: bool
    summary: str
    conditions: tuple[str, ...] = ()

    def __str__(self) -> str:
        tail = f"; {'; '.join(self.conditions)}" if self.conditions else ""
        return f"{self.ref}: {self.summary}{tail}"


def workloads(docs: Iterable[dict[str, Any]]) -> list[ObjectRef]:
    """The Deployments and StatefulSets among ``docs``."""
    return [ref_of(doc) for doc in docs if doc.get("kind") in WORKLOAD_KINDS]


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _conditions(status: dict[str, Any]) -> tuple[str, ...]:
    """Conditions worth reading: those not true, and a failed replica set."""
    found = []
    for condition in status.get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") != "ReplicaFailure":
            continue
        why = ": ".join(str(x) for x in (condition.get("reason"), condition.get("message")) if x)
        found.append(
            f"{condition.get('type')}={condition.get('status')}" + (f" ({why})" if why else "")
        )
    return tuple(found)


def readiness_of(ref: ObjectRef, obj: dict[str, Any] | None) -> Readiness:
    """How ready the live object ``obj`` of ``ref`` is (``None``: it does not exist)."""
    if obj is None:
        return Readiness(ref, False, "not found")
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    want = spec.get("replicas", 1)
    want = want if isinstance(want, int) else 1
    generation = (obj.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    conditions = _conditions(status)
    if isinstance(generation, int) and (not isinstance(observed, int) or observed < generation):
        return Readiness(ref, False, "waiting for its controller", conditions)
    updated = _int(status.get("updatedReplicas"))
    total = _int(status.get("replicas"))
    if ref.kind.kind == "StatefulSet":
        ready = _int(status.get("readyReplicas"))
        done = ready >= want and updated >= want
        return Readiness(ref, done, f"{ready}/{want} ready, {updated} updated", conditions)
    available = _int(status.get("availableReplicas"))
    done = available >= want and updated >= want and total <= updated
    summary = f"{available}/{want} available, {updated} updated"
    if total > updated:
        summary += f", {total - updated} old"
    return Readiness(ref, done, summary, conditions)


def check_ready(cluster: Cluster, refs: Sequence[ObjectRef]) -> list[Readiness]:
    """The readiness of every workload in ``refs``, now."""
    return [readiness_of(ref, cluster.find(ref)) for ref in refs]


def wait_ready(
    cluster: Cluster,
    refs: Sequence[ObjectRef],
    *,
    timeout_s: float,
    poll_s: float = 2.0,
    on_change: Callable[[Readiness], None] | None = None,
    hint: str = "",
) -> list[Readiness]:
    """Wait until every workload in ``refs`` is ready; call ``on_change`` whenever one's
    state changes. After ``timeout_s`` raise :class:`NotReadyError` naming those that are
    not, with their conditions, pods and latest events, and what to check next."""
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    if poll_s <= 0:
        raise ValueError(f"poll_s must be > 0, got {poll_s}")
    deadline = time.monotonic() + timeout_s
    seen: dict[ObjectRef, Readiness] = {}
    while True:
        for state in check_ready(cluster, [r for r in refs if not _is_ready(seen.get(r))]):
            if seen.get(state.ref) != state and on_change is not None:
                on_change(state)
            seen[state.ref] = state
        waiting = [seen[r] for r in refs if not seen[r].ready]
        if not waiting:
            return [seen[r] for r in refs]
        if time.monotonic() >= deadline:
            raise NotReadyError(_not_ready_message(cluster, waiting, len(refs), timeout_s, hint))
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))


def _is_ready(state: Readiness | None) -> bool:
    return state is not None and state.ready


def _not_ready_message(
    cluster: Cluster, waiting: list[Readiness], total: int, timeout_s: float, hint: str
) -> str:
    lines = [f"{len(waiting)} of {total} workloads not ready after {timeout_s:g} s:"]
    for state in waiting:
        lines.append(f"  {state}")
        lines.extend(f"    {line}" for line in diagnose(cluster, state.ref))
    first = waiting[0].ref
    lines.append(
        f"Next: kubectl -n {first.namespace} describe {first.kind.kind.lower()}/{first.name}; "
        f"kubectl -n {first.namespace} get events --sort-by=.lastTimestamp"
    )
    if hint:
        lines.append(hint)
    return "\n".join(lines)


def diagnose(cluster: Cluster, ref: ObjectRef) -> list[str]:
    """What holds ``ref`` up: its pods' states and its (and its pods') latest events."""
    obj = cluster.find(ref)
    if obj is None:
        return ["it does not exist"]
    selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    pods = cluster.list_objects(POD, namespace=ref.namespace, labels=selector) if selector else []
    lines = [_pod_line(pod) for pod in pods[:DIAGNOSED_PODS]]
    if selector and not pods:
        lines.append("no pods yet")
    names = {str((p.get("metadata") or {}).get("name")) for p in pods}
    lines.extend(latest_events(cluster, namespace=str(ref.namespace), owner=ref.name, names=names))
    return lines


def latest_events(
    cluster: Cluster, *, namespace: str, owner: str, names: Iterable[str] = ()
) -> list[str]:
    """The latest events about ``owner``, the objects named after it (its ReplicaSets and
    pods: ``OWNER-...``) and ``names``, oldest first."""
    wanted = {owner, *names}
    events = [
        event
        for event in cluster.list_objects(EVENT, namespace=namespace)
        if _involves(event, owner, wanted)
    ]
    events.sort(key=_event_time)
    return [_event_line(event) for event in events[-DIAGNOSED_EVENTS:]]


def _involves(event: dict[str, Any], owner: str, names: set[str]) -> bool:
    name = str((event.get("involvedObject") or {}).get("name") or "")
    return name in names or name.startswith(f"{owner}-")


def _event_time(event: dict[str, Any]) -> str:
    meta = event.get("metadata") or {}
    for key in ("lastTimestamp", "eventTime", "firstTimestamp"):
        if event.get(key):
            return str(event[key])
    return str(meta.get("creationTimestamp") or "")


def _event_line(event: dict[str, Any]) -> str:
    count = event.get("count")
    times = f" (x{count})" if isinstance(count, int) and count > 1 else ""
    target = event.get("involvedObject") or {}
    what = f"{str(target.get('kind', '')).lower()}/{target.get('name', '?')}"
    return (
        f"event {event.get('type', '')} {event.get('reason', '')}{times} on {what}: "
        f"{str(event.get('message', '')).strip()}"
    )


def pod_problems(pod: dict[str, Any]) -> list[str]:
    """Why a pod's containers do not run: waiting reasons, last exits, scheduling."""
    status = pod.get("status") or {}
    problems = []
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            problems.append(f"unschedulable ({condition.get('message', '')})")
    statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    for container in statuses:
        name = container.get("name", "?")
        waiting = (container.get("state") or {}).get("waiting")
        if waiting:
            why = waiting.get("message")
            problems.append(
                f"container {name} waiting: {waiting.get('reason', '?')}"
                + (f" ({why})" if why else "")
            )
        last = (container.get("lastState") or {}).get("terminated")
        if last:
            problems.append(
                f"container {name} last exited {last.get('exitCode', '?')} "
                f"({last.get('reason', '?')}), {container.get('restartCount', 0)} restarts"
            )
    return problems


def _pod_line(pod: dict[str, Any]) -> str:
    name = (pod.get("metadata") or {}).get("name", "?")
    phase = (pod.get("status") or {}).get("phase", "Unknown")
    problems = pod_problems(pod)
    return f"pod {name}: {phase}" + (f"; {'; '.join(problems)}" if problems else "")
