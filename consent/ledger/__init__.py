"""The evidence ledger: an append-only RFC 6962 Merkle log with signed tree heads.

Consent events, training rounds and scoring decisions go in as hash-and-pseudonym entries
(:mod:`consent.ledger.entries`); :class:`EvidenceLog` stores them and answers roots and
inclusion and consistency proofs; an evidence certificate
(:mod:`consent.ledger.certificate`) lets a third party check one entry against a published
tree head alone.
"""

from __future__ import annotations

from consent.ledger.log import Entry, EvidenceLog, VerifyReport, canonical_json, evidence_id
from consent.ledger.signing import LedgerSigner, TreeHead, verify_head

__all__ = [
    "Entry",
    "EvidenceLog",
    "LedgerSigner",
    "TreeHead",
    "VerifyReport",
    "canonical_json",
    "evidence_id",
    "verify_head",
]
