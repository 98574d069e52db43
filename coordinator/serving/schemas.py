"""Request and response bodies of the scoring and consent APIs (OpenAPI from these)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

__all__ = [
    "AlertBody",
    "AlertList",
    "ChangeEventBody",
    "BatchItem",
    "BatchRefusal",
    "BatchRequest",
    "BatchResponse",
    "ConsentGrantRequest",
    "ConsentGrantResponse",
    "ConsentState",
    "DecisionReason",
    "DecisionRequest",
    "DecisionResponse",
    "ErrorBody",
    "ModelInfo",
    "ReasonCode",
    "ScoreRequest",
    "ScoreResponse",
    "TokenResponse",
    "WebhookRequest",
    "WebhookResponse",
    "WithdrawResponse",
]

SubjectIdField = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
MAX_BATCH = 100_000


class ErrorBody(BaseModel):
    detail: dict[str, Any]


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    scope: str


class ModelInfo(BaseModel):
    name: str
    version: str
    mode: str
    parties: list[str]
    data_categories: list[str]


class ScoreRequest(BaseModel):
    subject_id: SubjectIdField
    #: The app's own reference for this request (recorded only as part of a hash).
    request_id: Annotated[str | None, Field(max_length=128)] = None


class ReasonCode(BaseModel):
    feature: str
    text: str
    party: str
    contribution: float = Field(description="how much this feature raised the probability")


class ScoreResponse(BaseModel):
    subject_id: str
    model: str
    model_version: str
    score: float = Field(description="probability of default or overdue within 12 months")
    risk_band: str
    reason_codes: list[ReasonCode]
    grant_id: str
    evidence_id: str
    human_review: str = Field(
        default="The subject may ask for a human review of this decision (PIPL Art. 24): "
        "POST /v1/evidence/{evidence_id}/review.",
    )


class BatchRequest(BaseModel):
    subject_ids: list[SubjectIdField] = Field(min_length=1, max_length=MAX_BATCH)
    reason_codes: bool = False
    request_id: Annotated[str | None, Field(max_length=128)] = None


class BatchItem(BaseModel):
    subject_id: str
    score: float
    risk_band: str
    grant_id: str
    evidence_id: str
    reason_codes: list[ReasonCode] = []


class BatchRefusal(BaseModel):
    subject_id: str
    reason: str
    evidence_id: str | None = None


class BatchResponse(BaseModel):
    model: str
    model_version: str
    results: list[BatchItem]
    refused: list[BatchRefusal]
    unknown: list[str] = Field(
        default_factory=list, description="consented, but no node holds them"
    )


class ConsentGrantRequest(BaseModel):
    subject_id: SubjectIdField
    purpose: Annotated[str, Field(pattern=r"^(credit_scoring|model_training|marketing)$")]
    categories: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=64
    )
    starts_at: datetime
    expires_at: datetime | None = None
    evidence_hash: Annotated[str, Field(min_length=16, max_length=128)]
    channel: Annotated[str, Field(min_length=1, max_length=64)]


class ConsentGrantResponse(BaseModel):
    grant_id: str
    evidence_id: str
    receipt: dict[str, Any]


class WithdrawResponse(BaseModel):
    grant_id: str
    withdrawn_at: datetime
    evidence_id: str


class ConsentState(BaseModel):
    grant_id: str
    purpose: str
    categories: list[str]
    starts_at: datetime
    expires_at: datetime | None
    withdrawn_at: datetime | None
    status: str


FigureName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$")]
Amount = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class DecisionRequest(BaseModel):
    """One application: a new applicant asks for an amount; an existing customer has a
    limit and the score of its last review. ``figures`` holds the figures the model's
    decision policy checks (indicators such as ``payment_delay_days``)."""

    subject_id: SubjectIdField
    request_id: Annotated[str | None, Field(max_length=128)] = None
    requested_amount: Amount | None = None
    current_limit: Amount | None = None
    previous_score: Annotated[float | None, Field(ge=0, le=1)] = None
    figures: dict[FigureName, Annotated[float, Field(allow_inf_nan=False)]] = Field(
        default_factory=dict, max_length=64
    )


class DecisionReason(BaseModel):
    code: str
    text: str


class DecisionResponse(BaseModel):
    subject_id: str
    outcome: str = Field(description="approve | refer | decline (new); increase | keep | refer")
    limit: float = Field(description="the credit limit after this decision (0: none granted)")
    previous_limit: float | None = None
    currency: str
    score: float
    risk_band: str
    reasons: list[DecisionReason] = Field(description="the policy's reasons, with figures")
    reason_codes: list[ReasonCode] = Field(description="the model's reasons for its score")
    model: str
    model_version: str
    policy: str
    policy_version: str
    policy_digest: str
    grant_id: str
    scoring_evidence_id: str
    evidence_id: str = Field(description="the decision's entry in the evidence ledger")


class ChangeEventBody(BaseModel):
    """A factory node's change event (``participants.monitoring.ChangeEvent``): aggregates
    only, never a reading."""

    model_config = {"extra": "forbid"}

    event_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    factory: str = Field(min_length=1, max_length=128)
    subject_id: str = Field(min_length=1, max_length=64)
    indicator: str = Field(min_length=1, max_length=64)
    detector: str = Field(min_length=1, max_length=64)
    detected_at: datetime
    since: date
    before: float
    after: float
    change: float
    unit: str = Field(max_length=64)
    text: str = Field(max_length=1_000)
    score_before: float | None = Field(default=None, ge=0, le=1)
    score_after: float | None = Field(default=None, ge=0, le=1)
    model_version: str | None = Field(default=None, max_length=64)


class AlertBody(BaseModel):
    """A post-loan alert: what changed at the factory, since when, by how much; its id is
    the evidence id of its ledger entry."""

    alert_id: str
    event_id: str
    loan_id: str
    subject_id: str
    factory: str
    model: str
    indicator: str
    detector: str
    since: str
    detected_at: str
    before: float
    after: float
    change: float
    unit: str
    text: str
    score_before: float | None = None
    score_after: float | None = None
    model_version: str | None = None
    received_at: str
    duplicate: bool = False


class AlertList(BaseModel):
    alerts: list[AlertBody]
    #: Pass as ``after`` for the next page (``None``: no alert yet).
    last: str | None


class WebhookRequest(BaseModel):
    url: str = Field(min_length=8, max_length=2_048)


class WebhookResponse(BaseModel):
    url: str
    #: The signing secret (Standard Webhooks ``whsec_...``), shown once.
    secret: str
