"""The launcher's connection to one cluster: the kubernetes client's ``ApiClient`` configured
from a kubeconfig, and the few requests the launcher makes (get, list, create, apply, logs).

Every error leaves here as a :class:`~deploy.k8s.errors.K8sError` whose message names the
request, the object and what the API said, so that the CLI can print one line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import urllib3

from .errors import ApiError, K8sError, UnreachableError
from .resources import Kind, ObjectRef, ref_of

__all__ = [
    "Cluster",
    "FIELD_MANAGER",
    "REQUEST_TIMEOUT_S",
    "label_selector",
]

logger = logging.getLogger(__name__)

#: The field manager of everything the launcher writes (server-side apply tracks it).
FIELD_MANAGER = "fedrisk-launcher"
REQUEST_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0
_APPLY = "application/apply-patch+yaml"
_JSON = "application/json"


def label_selector(labels: Mapping[str, str]) -> str:
    """``labels`` as a label selector (``k=v,k2=v2``)."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def _has_labels(obj: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    found = (obj.get("metadata") or {}).get("labels") or {}
    return all(found.get(key) == value for key, value in labels.items())


class Cluster:
    """Requests to one Kubernetes API server through a ``kubernetes.client.ApiClient``."""

    def __init__(self, client: Any, *, request_timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        if request_timeout_s <= 0:
            raise ValueError(f"request_timeout_s must be > 0, got {request_timeout_s}")
        self._client = client
        self._timeout_s = request_timeout_s

    @classmethod
    def from_kubeconfig(
        cls, *, kubeconfig: Path | None = None, context: str | None = None
    ) -> Cluster:
        """A connection as ``kubeconfig`` (default: ``$KUBECONFIG``, else ~/.kube/config) and
        its ``context`` (default: its current context) describe it."""
        from kubernetes import config
        from kubernetes.config.config_exception import ConfigException

        if kubeconfig is not None and not Path(kubeconfig).is_file():
            raise K8sError(f"no kubeconfig {kubeconfig}: pass --kubeconfig FILE")
        try:
            client = config.new_client_from_config(
                config_file=str(kubeconfig) if kubeconfig is not None else None,
                context=context,
                persist_config=False,
            )
        except (ConfigException, OSError, ValueError) as exc:
            where = kubeconfig or "$KUBECONFIG or ~/.kube/config"
            raise K8sError(
                f"cannot use the kubeconfig ({where}, context {context or 'current'}): {exc}; "
                "pass --kubeconfig FILE and --context NAME"
            ) from exc
        return cls(client)

    @property
    def host(self) -> str:
        """The API server's URL."""
        return str(self._client.configuration.host)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- objects ----------------------------------------------------------------------

    def get(self, ref: ObjectRef) -> dict[str, Any]:
        """The object ``ref`` (:class:`ApiError` with status 404 when there is none)."""
        return self._json("get", ref, "GET", ref.path)

    def find(self, ref: ObjectRef) -> dict[str, Any] | None:
        """The object ``ref``, or ``None`` when there is none."""
        try:
            return self.get(ref)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list_objects(
        self,
        kind: Kind,
        *,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """The objects of ``kind`` in ``namespace`` that carry every label in ``labels``."""
        query = [("labelSelector", label_selector(labels))] if labels else []
        where = f"{kind.kind} objects" + (f" in {namespace}" if namespace else "")
        found = self._json("list", where, "GET", kind.collection(namespace), query=query)
        items = [item for item in found.get("items") or [] if isinstance(item, dict)]
        # The selector is also applied here: the result does not depend on the server's.
        return [item for item in items if _has_labels(item, labels or {})]

    def create(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Create ``doc`` (:class:`ApiError` with status 409 when it exists)."""
        ref = ref_of(doc)
        query = [("fieldManager", FIELD_MANAGER)]
        return self._json(
            "create", ref, "POST", ref.kind.collection(ref.namespace), query=query, body=doc
        )

    def apply(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply of ``doc`` as :data:`FIELD_MANAGER`, taking over conflicting
        fields (``force``): the manifests are the source of truth for what they set."""
        ref = ref_of(doc)
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        return self._json("apply", ref, "PATCH", ref.path, query=query, body=doc, type_=_APPLY)

    # --- logs -------------------------------------------------------------------------

    def read_log(self, *, namespace: str, pod: str, container: str) -> str:
        """What ``container`` of ``pod`` has logged so far."""
        path = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
        what = f"logs of pod {namespace}/{pod} container {container}"
        response = self._send(what, "GET", path, query=[("container", container)])
        return bytes(response.read()).decode("utf-8", errors="replace")

    def follow_log(
        self, *, namespace: str, pod: str, container: str, timeout_s: float
    ) -> Iterator[str]:
        """The lines of ``container``'s log as they come, until the container ends or no
        line came for ``timeout_s``."""
        path = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
        what = f"logs of pod {namespace}/{pod} container {container}"
        query = [("container", container), ("follow", "true")]
        response = self._send(what, "GET", path, query=query, timeout_s=timeout_s, stream=True)
        raw = response.response
        pending = b""
        try:
            for chunk in raw.stream(4096, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", errors="replace")
        except urllib3.exceptions.ReadTimeoutError:
            logger.info("no log line from %s/%s for %.0f s", namespace, pod, timeout_s)
        except urllib3.exceptions.HTTPError as exc:
            logger.info("the log stream of %s/%s ended: %s", namespace, pod, exc)
        finally:
            raw.release_conn()
        if pending:
            yield pending.decode("utf-8", errors="replace")

    # --- transport --------------------------------------------------------------------

    def _json(
        self,
        verb: str,
        what: ObjectRef | str,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: dict[str, Any] | None = None,
        type_: str = _JSON,
    ) -> dict[str, Any]:
        response = self._send(f"{verb} {what}", method, path, query=query, body=body, type_=type_)
        data = response.read()
        try:
            parsed = json.loads(data) if data else {}
        except ValueError:
            raise K8sError(
                f"{verb} {what}: the API answered with something other than JSON"
            ) from None
        return parsed if isinstance(parsed, dict) else {}

    def _send(
        self,
        what: str,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: dict[str, Any] | None = None,
        type_: str = _JSON,
        timeout_s: float | None = None,
        stream: bool = False,
    ) -> Any:
        request = self._client.param_serialize(
            method,
            path,
            query_params=query or None,
            header_params={"Accept": _JSON, "Content-Type": type_},
            body=body,
            auth_settings=["BearerToken"],
        )
        timeout = (CONNECT_TIMEOUT_S, timeout_s or self._timeout_s)
        logger.debug("%s %s", method, path)
        try:
            response = self._client.call_api(*request, _request_timeout=timeout)
            if stream and 200 <= response.status <= 299:
                return response
            response.read()
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            raise UnreachableError(
                f"{what}: cannot reach the Kubernetes API at {self.host} ({reason}); check "
                "--kubeconfig and --context, and that the cluster is up"
            ) from exc
        if not 200 <= response.status <= 299:
            raise _api_error(what, response.status, response.reason, response.data or b"")
        return response


def _api_error(what: str, status: int, http_reason: str | None, body: bytes) -> ApiError:
    """One line from the API's ``Status`` answer: the request, the code, the message."""
    reason, message = http_reason or "error", ""
    try:
        parsed = json.loads(body)
    except ValueError:
        message = body.decode("utf-8", errors="replace")
    else:
        if isinstance(parsed, dict):
            reason = str(parsed.get("reason") or reason)
            message = str(parsed.get("message") or "")
    lines = message.strip().splitlines()
    first = lines[0][:300] if lines else "no message"
    return ApiError(f"{what}: {status} {reason}: {first}", status=status, reason=reason)
