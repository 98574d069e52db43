"""Running a round Job: create it, follow its pod's log, wait for it to succeed or fail.

A Job has finished when its ``Complete`` (or ``SuccessCriteriaMet``) or ``Failed`` (or
``FailureTarget``) condition is true, or, with ``backoffLimit: 0``, when one pod
succeeded or failed. Kubernetes labels a Job's pods ``job-name=NAME``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .cluster import Cluster
from .errors import ApiError, RoundError
from .readiness import latest_events, pod_problems
from .resources import KINDS, ObjectRef, ref_of
from .round_job import ROUND_COMPONENT

__all__ = ["JobState", "RoundOutcome", "job_pod", "job_state", "run_round"]

POD = KINDS[("v1", "Pod")]
_STARTED = ("Running", "Succeeded", "Failed")


@dataclass(frozen=True)
class JobState:
    """Where a Job stands: finished or not, succeeded or not, in a few words."""

    finished: bool
    succeeded: bool
    summary: str


def job_state(job: dict[str, Any]) -> JobState:
    """The state of the live Job ``job``."""
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        why = ": ".join(str(x) for x in (condition.get("reason"), condition.get("message")) if x)
        if condition.get("type") in ("Complete", "SuccessCriteriaMet"):
            return JobState(True, True, "Succeeded")
        if condition.get("type") in ("Failed", "FailureTarget"):
            return JobState(True, False, "Failed" + (f" ({why})" if why else ""))
    if (status.get("succeeded") or 0) >= 1:
        return JobState(True, True, "Succeeded")
    if (status.get("failed") or 0) >= 1:
        return JobState(True, False, "Failed")
    if (status.get("active") or 0) >= 1:
        return JobState(False, False, "Running")
    return JobState(False, False, "Pending")


@dataclass(frozen=True)
class RoundOutcome:
    """How a round Job ended: its state, its pod and the log lines it printed."""

    job: ObjectRef
    state: JobState
    pod: str | None
    log: tuple[str, ...]
    seconds: float

    @property
    def succeeded(self) -> bool:
        return self.state.succeeded


def job_pod(cluster: Cluster, job: ObjectRef) -> dict[str, Any] | None:
    """The newest pod of ``job`` (``None`` before the Job controller made one)."""
    pods = cluster.list_objects(POD, namespace=job.namespace, labels={"job-name": job.name})
    pods.sort(key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""))
    return pods[-1] if pods else None


def _log(
    cluster: Cluster, namespace: str, pod: str, *, timeout_s: float, on_log: Callable[[str], None]
) -> list[str]:
    """The round container's log as it comes; the init container's when the round
    container never started (its log is then refused with 400)."""
    lines: list[str] = []
    try:
        for line in cluster.follow_log(
            namespace=namespace, pod=pod, container=ROUND_COMPONENT, timeout_s=timeout_s
        ):
            lines.append(line)
            on_log(line)
    except ApiError as exc:
        if exc.status != 400:
            raise
        text = cluster.read_log(namespace=namespace, pod=pod, container="stage")
        for line in text.splitlines():
            lines.append(line)
            on_log(line)
    return lines


def run_round(
    cluster: Cluster,
    job: dict[str, Any],
    *,
    timeout_s: float,
    poll_s: float = 2.0,
    on_log: Callable[[str], None] | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> RoundOutcome:
    """Create ``job``, follow its pod's log (``on_log`` per line) and return how it ended;
    :class:`RoundError` when it has not ended after ``timeout_s``."""
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    if poll_s <= 0:
        raise ValueError(f"poll_s must be > 0, got {poll_s}")
    say = on_progress or (lambda _: None)
    emit = on_log or (lambda _: None)
    started = time.monotonic()
    deadline = started + timeout_s
    ref = ref_of(job)
    namespace = str(ref.namespace)
    cluster.create(job)
    say(f"created {ref}")
    log: list[str] = []
    followed: str | None = None
    last = ""
    while True:
        state = job_state(cluster.get(ref))
        pod = job_pod(cluster, ref)
        name = str((pod.get("metadata") or {}).get("name")) if pod else None
        phase = (pod.get("status") or {}).get("phase") if pod else None
        progress = f"{ref}: {state.summary}" + (f", pod {name} {phase}" if pod else "")
        if progress != last:
            say(progress)
            last = progress
        if name is not None and followed != name and phase in _STARTED:
            followed = name
            remaining = max(1.0, deadline - time.monotonic())
            log += _log(cluster, namespace, name, timeout_s=remaining, on_log=emit)
            continue
        if state.finished:
            return RoundOutcome(ref, state, followed, tuple(log), time.monotonic() - started)
        if time.monotonic() >= deadline:
            raise RoundError(_timeout_message(cluster, ref, state, pod, timeout_s))
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))


def _timeout_message(
    cluster: Cluster,
    ref: ObjectRef,
    state: JobState,
    pod: dict[str, Any] | None,
    timeout_s: float,
) -> str:
    namespace = str(ref.namespace)
    lines = [f"{ref} did not finish within {timeout_s:g} s ({state.summary})"]
    if pod is None:
        lines.append("  no pod yet")
        names: set[str] = set()
    else:
        name = str((pod.get("metadata") or {}).get("name"))
        names = {name}
        problems = pod_problems(pod)
        phase = (pod.get("status") or {}).get("phase", "Unknown")
        lines.append(f"  pod {name}: {phase}" + (f"; {'; '.join(problems)}" if problems else ""))
    lines += [
        f"  {e}" for e in latest_events(cluster, namespace=namespace, owner=ref.name, names=names)
    ]
    lines.append(
        f"It is stopped at its activeDeadlineSeconds. Next: kubectl -n {namespace} logs "
        f"job/{ref.name}; kubectl -n {namespace} describe job/{ref.name}"
    )
    return "\n".join(lines)
