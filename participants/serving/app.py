"""The participant's partial-inference service (FastAPI): partial results, never features.

``POST /v1/partial/{model}`` answers the node's part output for the subjects asked, only
after verifying the coordinator's signed consent assertion (``Authorization: Bearer``,
:mod:`consent.assertions`): issued for this node, unexpired, unused, for ``credit_scoring``
with this model, covering this node's data categories and naming every subject asked. A
refused assertion is a 403 with the machine-readable reason, and no row is read.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Path
from pydantic import BaseModel, Field

from consent.assertions import AssertionRefusedError, AssertionVerifier
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


async def _bearer(authorization: Annotated[str | None, Header()] = None) -> str:
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(
            status_code=401,
            detail={"reason": "no_assertion", "message": "a signed consent assertion is required"},
            headers={"WWW-Authenticate": "Bearer"},
        )
    return authorization.removeprefix("Bearer ").strip()


def create_participant_app(
    *, party: str, parts: Mapping[str, ServedPart], verifier: AssertionVerifier
) -> FastAPI:
    """The service of node ``party`` over its loaded ``parts`` (by model name)."""
    app = FastAPI(
        title=f"fedrisk participant {party}: partial inference",
        version="1",
        description=__doc__,
    )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> dict[str, Any]:
        return {"status": "ready", "models": {m: p.version for m, p in parts.items()}}

    def checked_part(model: str, token: str, *, subject_ids: list[str], purpose: str) -> ServedPart:
        """The part of ``model``, once the assertion allows ``purpose`` for these subjects."""
        part = parts.get(model)
        if part is None:
            raise HTTPException(status_code=404, detail={"reason": "unknown_model"})
        try:
            verifier.verify(
                token,
                subject_ids=subject_ids,
                purpose=purpose,
                categories=part.categories,
                model=model,
            )
        except AssertionRefusedError as exc:
            logger.warning("refused a %s request for %s: %s", purpose, model, exc.reason)
            raise HTTPException(
                status_code=403, detail={"reason": exc.reason, "message": str(exc)}
            ) from None
        return part

    @app.post(
        "/v1/partial/{model}",
        response_model=PartialResponse,
        responses={401: {}, 403: {}, 404: {}},
    )
    async def partial(
        model: Annotated[str, Path(max_length=128)],
        request: PartialRequest,
        token: Annotated[str, Depends(_bearer)],
    ) -> PartialResponse:
        # On the event loop: a verify and an ONNX run over a few rows cost less than the
        # hop to a worker thread would (a portfolio's chunks are bounded by MAX_SUBJECTS).
        part = checked_part(model, token, subject_ids=request.subject_ids, purpose=SCORING_PURPOSE)
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
        token: Annotated[str, Depends(_bearer)],
    ) -> DirectoryResponse:
        part = checked_part(model, token, subject_ids=[], purpose=DIRECTORY_PURPOSE)
        return DirectoryResponse(pseudonyms=part.pseudonyms(bytes.fromhex(request.key)))

    return app
