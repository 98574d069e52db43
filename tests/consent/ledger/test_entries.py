"""Ledger entries hold hashes and pseudonyms, never a subject id in the clear."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consent.errors import LedgerError
from consent.grants import Grant, GrantEvent, GrantId, SubjectId
from consent.ledger.entries import (
    Pseudonymizer,
    consent_event_entry,
    scoring_decision_entry,
    sha256_hex,
    training_round_entry,
)

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _grant() -> Grant:
    return Grant(
        grant_id=GrantId("g-1"),
        subject_id=SubjectId("F123456789"),
        institution="bank-a",
        purpose="credit_scoring",
        categories=frozenset({"bank.loans", "gov.agri"}),
        starts_at=AT,
        expires_at=AT + timedelta(days=365),
        evidence_hash=sha256_hex("signed agreement"),
        channel="branch",
    )


def test_pseudonyms_are_keyed_stable_and_kept_private(tmp_path: Path) -> None:
    first = Pseudonymizer.in_folder(tmp_path)
    again = Pseudonymizer.in_folder(tmp_path)
    other = Pseudonymizer.in_folder(tmp_path / "elsewhere")

    assert first("F123456789") == again("F123456789") != first("F123456780")
    assert first("F123456789") != other("F123456789") != sha256_hex("F123456789")
    assert stat.S_IMODE((tmp_path / "pseudonym-key").stat().st_mode) == 0o600
    with pytest.raises(LedgerError):
        Pseudonymizer(b"short")


def test_a_consent_event_names_the_subject_only_by_pseudonym(tmp_path: Path) -> None:
    pseudonym = Pseudonymizer.in_folder(tmp_path)
    granted = consent_event_entry(GrantEvent.granted(_grant(), at=AT), pseudonym=pseudonym)
    withdrawn = consent_event_entry(GrantEvent.withdrawn("g-1", at=AT), pseudonym=pseudonym)

    assert "F123456789" not in json.dumps([granted, withdrawn])
    assert granted["subject"] == pseudonym("F123456789")
    assert granted["categories"] == ["bank.loans", "gov.agri"]
    assert granted["at"] == "2026-03-01T09:30:00.000Z"
    assert withdrawn == {"kind": "consent_event", "event": "withdrawn", "grant_id": "g-1",
                         "at": "2026-03-01T09:30:00.000Z"}  # fmt: skip


def test_round_and_decision_entries() -> None:
    round_entry = training_round_entry(
        federation="demo-farmer-credit", round_number=3, model_hash=sha256_hex(b"model"),
        participants=["gov", "bank"], epsilon={"bank.labels": 2.5},
        data_commitments={"bank": sha256_hex("ids")}, at=AT,
    )  # fmt: skip
    refused = scoring_decision_entry(
        request_hash=sha256_hex("request"), subject_pseudonym="ab" * 32, model="farmer_credit",
        model_version="v3", score=None, grant_id=None, app="farmer-app", outcome="refused",
        reason="no_consent", at=AT,
    )  # fmt: skip

    assert round_entry["participants"] == ["bank", "gov"] and round_entry["round"] == 3
    assert refused["score"] is None and refused["reason"] == "no_consent"
    with pytest.raises(LedgerError, match="outcome"):
        scoring_decision_entry(
            request_hash="x", subject_pseudonym="y", model="m", model_version="v", score=0.1,
            grant_id="g", app="a", outcome="maybe", at=AT,
        )  # fmt: skip
