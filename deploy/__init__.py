"""Deployment tooling beside the fedrisk packages: the Kubernetes launcher (:mod:`deploy.k8s`)
and the Flower App definition (``deploy/flower``).

Imports ``models`` only, never ``coordinator``, ``participants``, ``consent`` or ``privacy``:
it drives the deployed processes from outside, through the Kubernetes API."""

from __future__ import annotations

__all__: list[str] = []
