"""Idempotent create-or-patch of manifests.

Each object is created; when it exists (409 AlreadyExists) it is patched by **server-side
apply** (``application/apply-patch+yaml``, field manager ``fedrisk-launcher``, ``force``),
not by a strategic-merge patch, because:

- the API server records which fields the launcher set, so a field that a later version of
  the manifests drops is removed from the live object (a strategic merge leaves it there);
- it merges lists by their keys for every kind, custom resources included (strategic merge
  knows only the built-in types' patch keys);
- ``force`` takes over fields another manager changed by hand (``kubectl edit``): the
  rendered manifests are the source of truth for what they set, and fields they do not set
  stay as they are. (The API Deployment sets ``replicas``, so an apply resets them until
  its autoscaler scales again, as ``kubectl apply`` does.)

Generated Secrets (the consent store's password) are created only, never replaced: a new
password would lock the running database out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from .cluster import Cluster
from .errors import ApiError
from .render import in_apply_order
from .resources import ObjectRef, ref_of

__all__ = ["Applied", "apply_object", "apply_objects"]

Action = Literal["created", "patched", "kept"]


@dataclass(frozen=True)
class Applied:
    """What applying one object did."""

    ref: ObjectRef
    action: Action


def apply_object(cluster: Cluster, doc: dict[str, Any], *, replace: bool = True) -> Applied:
    """Create ``doc``; when it exists, server-side apply it (or keep it when not ``replace``)."""
    ref = ref_of(doc)
    try:
        cluster.create(doc)
    except ApiError as exc:
        if exc.status != 409:
            raise
    else:
        return Applied(ref, "created")
    if not replace:
        return Applied(ref, "kept")
    cluster.apply(doc)
    return Applied(ref, "patched")


def apply_objects(
    cluster: Cluster,
    docs: Iterable[dict[str, Any]],
    *,
    on_applied: Callable[[Applied], None] | None = None,
) -> list[Applied]:
    """Apply every document, namespaces first (:data:`~deploy.k8s.render.APPLY_ORDER`);
    stop at the first refusal (an :class:`ApiError` naming the object)."""
    done = []
    for doc in in_apply_order(docs):
        applied = apply_object(cluster, doc)
        done.append(applied)
        if on_applied is not None:
            on_applied(applied)
    return done
