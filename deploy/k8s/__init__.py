"""The Kubernetes launcher: renders deploy/k8s with kustomize, builds the Secrets the
manifests use from the files ``fedrisk keys`` writes, applies everything through the
Kubernetes API (create, else server-side apply), waits for readiness and runs training
rounds as Jobs. ``fedrisk k8s ...`` is its command line (:mod:`deploy.k8s.cli`).

Imports ``models`` only (tests/test_architecture.py).
"""

from __future__ import annotations

from models._exports import lazy_exports

# Public name -> submodule, imported on first use (PEP 562; see models/_exports.py).
_EXPORTS = {
    "ApiError": "errors",
    "Applied": "apply",
    "BuiltSecret": "secrets",
    "Cluster": "cluster",
    "JobState": "rounds",
    "K8sError": "errors",
    "KeyFolders": "secrets",
    "ManifestError": "errors",
    "MissingKeyFileError": "errors",
    "NotReadyError": "errors",
    "ObjectRef": "resources",
    "OverlayStatus": "status",
    "ROUND_FEDERATIONS": "round_job",
    "Readiness": "readiness",
    "RoundError": "errors",
    "RoundOutcome": "rounds",
    "SecretRef": "secret_refs",
    "SuperlinkSite": "round_job",
    "UnknownModelError": "errors",
    "UnknownOverlayError": "errors",
    "UnreachableError": "errors",
    "apply_objects": "apply",
    "build_secrets": "secrets",
    "overlay_status": "status",
    "readiness_of": "readiness",
    "render_objects": "render",
    "round_job": "round_job",
    "run_round": "rounds",
    "secret_references": "secret_refs",
    "superlink_site": "round_job",
    "wait_ready": "readiness",
}

__all__ = [
    "ApiError",
    "Applied",
    "BuiltSecret",
    "Cluster",
    "JobState",
    "K8sError",
    "KeyFolders",
    "ManifestError",
    "MissingKeyFileError",
    "NotReadyError",
    "ObjectRef",
    "OverlayStatus",
    "ROUND_FEDERATIONS",
    "Readiness",
    "RoundError",
    "RoundOutcome",
    "SecretRef",
    "SuperlinkSite",
    "UnknownModelError",
    "UnknownOverlayError",
    "UnreachableError",
    "apply_objects",
    "build_secrets",
    "overlay_status",
    "readiness_of",
    "render_objects",
    "round_job",
    "run_round",
    "secret_references",
    "superlink_site",
    "wait_ready",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
