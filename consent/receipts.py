"""Consent receipts in the Kantara Initiative Consent Receipt Specification v1.1 format.

Every grant yields a receipt (../shared/REFERENCE.md, consent behaviour 9) that the bank's
channel hands to the subject. A receipt is a pure function of the grant and of the data
controller's description (:class:`Controller`), so it is rebuilt on request rather than
stored; its SHA-256 is written to the evidence ledger with the grant, which lets anyone check
later that a receipt shown to them is the one issued.

Financial-account categories (``bank.*``) are sensitive personal information under PIPL
Art. 28 and are marked ``sensitive`` with their own ``spiCat``; categories held by another
controller than the grantee (``gov.*``, ``iot.*`` used by a bank) are an onward provision and
set ``thirdPartyDisclosure`` (consent behaviour 4).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Final

from consent.grants import Grant
from consent.ledger.entries import sha256_hex
from consent.ledger.log import canonical_json

__all__ = [
    "RECEIPT_VERSION",
    "SENSITIVE_PREFIXES",
    "Controller",
    "receipt_for",
    "receipt_hash",
]

RECEIPT_VERSION: Final = "KI-CR-v1.1.0"
#: Category prefixes that are sensitive personal information (financial accounts).
SENSITIVE_PREFIXES: Final = ("bank.",)
#: Who holds each category family, for thirdPartyDisclosure and thirdPartyName.
_HOLDERS: Final = {
    "bank": "the lending bank",
    "gov": "the government data platform",
    "iot": "the factory's edge node",
}
_PURPOSE_TEXT: Final = {
    "credit_scoring": "Score the subject's credit risk for a loan decision",
    "model_training": "Train a federated risk model on the subject's data at the data holder",
    "marketing": "Offer the subject credit products",
}
_PURPOSE_CATEGORY: Final = {
    "credit_scoring": "Core Function",
    "model_training": "Improve Performance",
    "marketing": "Marketing",
}
_NAMESPACE: Final = uuid.UUID("6f1c2a3e-2d0b-4c59-9a55-5b7f0e3a9c11")


@dataclass(frozen=True)
class Controller:
    """The data controller a receipt names (the institution the subject granted)."""

    name: str
    contact: str
    email: str
    address: str = ""
    phone: str = ""
    url: str = ""
    policy_url: str = "https://example.invalid/privacy"
    jurisdiction: str = "CN"
    language: str = "zh-CN"


def _receipt_id(grant: Grant) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{grant.grant_id}"))


def _holder(category: str) -> str:
    return category.split(".", 1)[0]


def receipt_for(grant: Grant, controller: Controller, *, recorded_at_s: int) -> dict[str, Any]:
    """The Kantara v1.1 receipt of ``grant``; ``recorded_at_s`` is when consent was given
    (Unix seconds, the spec's ``consentTimestamp``)."""
    categories = sorted(grant.categories)
    sensitive = [c for c in categories if c.startswith(SENSITIVE_PREFIXES)]
    grantee_family = "bank"  # every grantee institution in fedrisk is a lender
    foreign = sorted({_holder(c) for c in categories} - {grantee_family})
    termination = (
        f"On withdrawal, or at {grant.expires_at.isoformat()}"
        if grant.expires_at is not None
        else "On withdrawal"
    )
    return {
        "version": RECEIPT_VERSION,
        "jurisdiction": controller.jurisdiction,
        "consentTimestamp": int(recorded_at_s),
        "collectionMethod": grant.channel,
        "consentReceiptID": _receipt_id(grant),
        "language": controller.language,
        "piiPrincipalId": grant.subject_id,
        "piiControllers": [
            {
                "piiController": controller.name,
                "contact": controller.contact,
                "address": controller.address,
                "email": controller.email,
                "phone": controller.phone,
                "piiControllerUrl": controller.url,
                "onBehalf": False,
            }
        ],
        "policyUrl": controller.policy_url,
        "services": [
            {
                "service": f"{grant.institution}: {grant.purpose}",
                "purposes": [
                    {
                        "purpose": _PURPOSE_TEXT.get(grant.purpose, grant.purpose),
                        "purposeCategory": [_PURPOSE_CATEGORY.get(grant.purpose, "Other")],
                        "consentType": "EXPLICIT",
                        "piiCategory": categories,
                        "primaryPurpose": True,
                        "termination": termination,
                        "thirdPartyDisclosure": bool(foreign),
                        "thirdPartyName": ", ".join(_HOLDERS.get(f, f) for f in foreign),
                    }
                ],
            }
        ],
        "sensitive": bool(sensitive),
        "spiCat": sensitive,
        "fedrisk": {
            "grantId": grant.grant_id,
            "institution": grant.institution,
            "startsAt": grant.starts_at.isoformat(),
            "expiresAt": None if grant.expires_at is None else grant.expires_at.isoformat(),
            "agreementHash": grant.evidence_hash,
        },
    }


def receipt_hash(receipt: dict[str, Any]) -> str:
    """SHA-256 (hex) of the receipt's canonical JSON: what the ledger records."""
    return sha256_hex(canonical_json(receipt))
