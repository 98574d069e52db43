"""The participant's partial-inference service (FastAPI): partial results, never features.

``POST /v1/partial/{model}`` answers the node's part output for the subjects asked, only
after verifying the coordinator's signed consent assertion (``Authorization: Bearer``,
:mod:`consent.assertions`): issued for this node, unexpired, unused, for ``credit_scoring``
with this model, covering this node's data categories and naming every subject asked. A
refused assertion is a 403 with the machine-readable reason, and no row is read. The
assertion is examined before the request's body: a request without a valid one learns
nothing of the body's schema.

No postponed annotations here: FastAPI reads the guard's and the routes' signatures.
"""

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from consent.api_app import api_app
from consent.assertions import AssertionRefusedError, AssertionVerifier, ConsentAssertion
from consent.route_guard import RouteGuard
from participants.serving.parts import ServedPart

__all__ = ["PartialRequest", "PartialResponse", "create_participant_app"]

logger = logging.getLogger(__name__)

MAX_SUBJECTS = 10_000
SCORING_PURPOSE = "credit_scoring"
#: ``POST /v1/directory/{model}``: HMAC-SHA-256 under the caller's fresh key of every id
#: this node holds, so the coordinator routes a subject to its node without ever sending a
#: subject's id to a node that does not hold it.
DIRECTORY_PURPOSE = "directory_lookup"


class PartialRequest(BaseModel):
    subject_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=MAX_SUBJECTS
    )
    explain: bool = False


class PartialResponse(BaseModel):
    """``occluded`` is keyed by occlusion group (a feature's name, or a categorical's such
    as ``main_crop`` for all its one-hot columns at once; :mod:`models.occlusion`), and
    ``levels`` names each explained subject's own category of each categorical. Both are
    additions a client that does not know them can ignore: a feature alone is keyed by its
    name as before."""

    party: str
    model: str
    version: str
    output_kind: str
    outputs: dict[str, list[float]]
    occluded: dict[str, dict[str, list[float]]] = {}
    levels: dict[str, dict[str, str]] = {}
    missing: list[str] = []


class DirectoryRequest(BaseModel):
    key: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class DirectoryResponse(BaseModel):
    pseudonyms: list[str]


_bearer_scheme = HTTPBearer(
    scheme_name="consent_assertion",
    description="the coordinator's signed consent assertion (consent.assertions), per request",
    auto_error=False,
)


@dataclass(frozen=True)
class Admitted:
    """A request's model and part, and its assertion once admitted (not yet spent)."""

    model: str
    purpose: str
    part: ServedPart
    assertion: ConsentAssertion


class _AssertionGuard(RouteGuard):
    """Admits a request for ``purpose`` before its body is read: the model is served here
    (404) and the bearer assertion is the coordinator's, for this party, unexpired, unused,
    for ``purpose`` with this model and covering the part's categories (401, 403). Which
    subjects it names is checked, and the assertion spent, once the body is read."""

    def __init__(
        self, *, parts: Mapping[str, ServedPart], verifier: AssertionVerifier, purpose: str
    ) -> None:
        self._parts = parts
        self._verifier = verifier
        self._purpose = purpose

    async def decide(self, request: Request) -> Admitted:
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            raise HTTPException(
                status_code=401,
                detail={
                    "reason": "no_assertion",
                    "message": "a signed consent assertion is required",
                },
                headers={"WWW-Authenticate": "Bearer"},
            )
        model = str(request.path_params["model"])
        part = self._parts.get(model)
        if part is None:
            raise HTTPException(status_code=404, detail={"reason": "unknown_model"})
        token = authorization.removeprefix("Bearer ").strip()
        with _refusals(self._purpose, model):
            admitted = self._verifier.admit(
                token, purpose=self._purpose, categories=part.categories, model=model
            )
        return Admitted(model=model, purpose=self._purpose, part=part, assertion=admitted)

    async def __call__(  # type: ignore[override]
        self,
        request: Request,
        _documented: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
    ) -> Admitted:
        admitted: Admitted = await self.decided(request)
        return admitted


@contextmanager
def _refusals(purpose: str, model: str) -> Iterator[None]:
    """A refused assertion as a 403 with its reason (and a log line without subjects)."""
    try:
        yield
    except AssertionRefusedError as exc:
        logger.warning("refused a %s request for %s: %s", purpose, model, exc.reason)
        raise HTTPException(
            status_code=403, detail={"reason": exc.reason, "message": str(exc)}
        ) from None


def create_participant_app(
    *, party: str, parts: Mapping[str, ServedPart], verifier: AssertionVerifier
) -> FastAPI:
    """The service of node ``party`` over its loaded ``parts`` (by model name)."""
    app = api_app(
        title=f"fedrisk participant {party}: partial inference", description=__doc__ or ""
    )
    scoring = _AssertionGuard(parts=parts, verifier=verifier, purpose=SCORING_PURPOSE)
    lookup = _AssertionGuard(parts=parts, verifier=verifier, purpose=DIRECTORY_PURPOSE)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> dict[str, Any]:
        return {"status": "ready", "models": {m: p.version for m, p in parts.items()}}

    def settled(admitted: Admitted, subject_ids: list[str]) -> None:
        with _refusals(admitted.purpose, admitted.model):
            verifier.settle(admitted.assertion, subject_ids=subject_ids)

    @app.post(
        "/v1/partial/{model}",
        response_model=PartialResponse,
        responses={401: {}, 403: {}, 404: {}},
    )
    async def partial(
        model: Annotated[str, Path(max_length=128)],
        request: PartialRequest,
        admitted: Annotated[Admitted, Depends(scoring)],
    ) -> PartialResponse:
        # On the event loop: a verify and an ONNX run over a few rows cost less than the
        # hop to a worker thread would (a portfolio's chunks are bounded by MAX_SUBJECTS).
        settled(admitted, request.subject_ids)
        part = admitted.part
        result = part.infer(request.subject_ids, explain=request.explain)
        return PartialResponse(
            party=party,
            model=model,
            version=part.version,
            output_kind=part.output_kind,
            outputs=result.outputs,
            occluded=result.occluded,
            levels=result.levels,
            missing=result.missing,
        )

    @app.post(
        "/v1/directory/{model}",
        response_model=DirectoryResponse,
        responses={401: {}, 403: {}, 404: {}},
    )
    def directory(
        model: Annotated[str, Path(max_length=128)],
        request: DirectoryRequest,
        admitted: Annotated[Admitted, Depends(lookup)],
    ) -> DirectoryResponse:
        settled(admitted, [])
        return DirectoryResponse(pseudonyms=admitted.part.pseudonyms(bytes.fromhex(request.key)))

    return app
