"""What can go wrong when the launcher talks to a cluster: one root, one class per cause."""

from __future__ import annotations

__all__ = [
    "ApiError",
    "K8sError",
    "ManifestError",
    "MissingKeyFileError",
    "NotReadyError",
    "RoundError",
    "UnknownModelError",
    "UnknownOverlayError",
    "UnreachableError",
]


class K8sError(Exception):
    """The launcher could not do what was asked; the message says what and what to do."""


class ManifestError(K8sError):
    """The manifests could not be rendered, or hold something the launcher cannot handle."""


class UnknownOverlayError(ManifestError, ValueError):
    """No overlay of that name under deploy/k8s/overlays."""


class UnknownModelError(K8sError, ValueError):
    """No federation file is known for that model."""


class MissingKeyFileError(K8sError):
    """A key or certificate a Secret needs is not where ``fedrisk keys`` writes it."""


class UnreachableError(K8sError):
    """The Kubernetes API did not answer (wrong kubeconfig or context, cluster down)."""


class ApiError(K8sError):
    """The Kubernetes API refused a request (4xx) or failed (5xx)."""

    def __init__(self, message: str, *, status: int, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class NotReadyError(K8sError):
    """Workloads did not become ready within the timeout."""


class RoundError(K8sError):
    """A round Job failed or did not finish within the timeout."""
