"""The registry: every grant has a Kantara receipt and evidence; decisions read the log now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from consent.ledger.certificate import make_certificate, verify_certificate
from consent.ledger.log import EvidenceLog
from consent.receipts import Controller, receipt_hash
from consent.registry import ConsentRegistry
from consent.store import SQLiteConsentStore

T = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
BANK = Controller(
    name="Demo Rural Bank", contact="Data Protection Officer", email="dpo@bank.example"
)
#: ../shared/REFERENCE.md, consent behaviour 9.
KANTARA_FIELDS = {
    "version", "jurisdiction", "consentTimestamp", "collectionMethod", "consentReceiptID",
    "piiPrincipalId", "piiControllers", "policyUrl", "services", "sensitive", "spiCat",
}  # fmt: skip
PURPOSE_FIELDS = {"purposeCategory", "consentType", "piiCategory", "termination",
                  "thirdPartyDisclosure"}  # fmt: skip


def _registry(folder: Path) -> ConsentRegistry:
    return ConsentRegistry.in_folder(folder, controller=BANK)


def _grant(registry: ConsentRegistry, **overrides: object):  # type: ignore[no-untyped-def]
    fields: dict[str, object] = {
        "subject_id": "F100000001", "institution": "demo-bank", "purpose": "credit_scoring",
        "categories": ["bank.loans", "gov.agri"], "starts_at": T,
        "expires_at": T + timedelta(days=365), "evidence_hash": "ab" * 32, "channel": "branch",
        "recorded_at": T,
    }  # fmt: skip
    fields.update(overrides)
    return registry.grant(**fields)  # type: ignore[arg-type]


def test_every_grant_has_a_kantara_receipt_whose_hash_is_in_the_ledger(tmp_path: Path) -> None:
    with _registry(tmp_path) as registry:
        recorded = _grant(registry)
        receipt = registry.receipt(recorded.event.grant_id)
        entry = registry.ledger.find(recorded.evidence_id)

    assert receipt == recorded.receipt
    assert set(receipt) >= KANTARA_FIELDS
    (purpose,) = receipt["services"][0]["purposes"]
    assert set(purpose) >= PURPOSE_FIELDS
    assert receipt["version"] == "KI-CR-v1.1.0"
    assert receipt["consentTimestamp"] == int(T.timestamp())
    assert receipt["sensitive"] is True and receipt["spiCat"] == ["bank.loans"]
    assert purpose["thirdPartyDisclosure"] is True  # gov.agri is another controller's data
    assert entry.body["receipt_hash"] == receipt_hash(receipt)
    assert "F100000001" not in str(entry.body)


def test_a_receipt_of_bank_data_only_names_no_third_party(tmp_path: Path) -> None:
    with _registry(tmp_path) as registry:
        recorded = _grant(registry, categories=["bank.kyc_public"], expires_at=None)
    receipt = recorded.receipt
    assert receipt is not None
    (purpose,) = receipt["services"][0]["purposes"]
    assert receipt["sensitive"] is True  # bank.* is financial-account data
    assert purpose["thirdPartyDisclosure"] is False and purpose["termination"] == "On withdrawal"


def test_withdrawal_is_one_call_takes_effect_at_once_and_is_evidenced(tmp_path: Path) -> None:
    with _registry(tmp_path) as registry:
        grant_id = _grant(registry).event.grant_id

        def ask(days: int):  # type: ignore[no-untyped-def]
            return registry.decide("F100000001", purpose="credit_scoring",
                                   categories=["bank.loans"], institution="demo-bank",
                                   at=T + timedelta(days=days))  # fmt: skip

        before = ask(2)
        withdrawn = registry.withdraw(grant_id, at=T + timedelta(days=3))
        after, earlier = ask(3), ask(2)
        certificate = make_certificate(registry.ledger, withdrawn.evidence_id)

    assert before.allowed and before.grant_id == grant_id
    assert not after.allowed and after.reason == "withdrawn"
    assert earlier.allowed  # not retroactive
    assert verify_certificate(certificate).ok
    assert certificate["entry"]["body"]["event"] == "withdrawn"


def test_events_a_crash_kept_out_of_the_ledger_are_appended_on_opening(tmp_path: Path) -> None:
    with _registry(tmp_path) as registry:
        _grant(registry)
    # A crash between the store's commit and the ledger's: the store has an event more.
    with SQLiteConsentStore(tmp_path / "consent.db") as store:
        store.grant(subject_id="F100000002", institution="demo-bank", purpose="credit_scoring",
                    categories=["bank.loans"], starts_at=T, expires_at=None,
                    evidence_hash="cd" * 32, channel="app", recorded_at=T)  # fmt: skip

    with _registry(tmp_path) as registry:
        logged = registry.ledger.bodies_of_kind("consent_event")
        assert registry.reconcile() == 0  # nothing twice

    assert len(logged) == 2
    with EvidenceLog.in_folder(tmp_path / "ledger", read_only=True) as ledger:
        assert ledger.verify().ok
