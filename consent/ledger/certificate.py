"""Evidence certificates: one ledger entry, its inclusion proof and a signed tree head.

A third party (an auditor, a court) checks a certificate with nothing but the ledger's
published public key: the entry's canonical body hashes to its leaf, the audit path leads
from that leaf to the head's root (RFC 9162 §2.1.3.2), and the head's Ed25519 signature is
valid. Nothing in a certificate is personal data: entries hold hashes and pseudonyms.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from consent.errors import LedgerError
from consent.ledger import merkle
from consent.ledger.log import EvidenceLog, canonical_json, evidence_id
from consent.ledger.signing import TreeHead, verify_head

__all__ = [
    "FORMAT",
    "CertificateCheck",
    "certificate_text",
    "make_certificate",
    "verify_certificate",
]

FORMAT: Final = "fedrisk-evidence-certificate/1"


@dataclass(frozen=True)
class CertificateCheck:
    """The outcome of checking a certificate; ``ok`` only if nothing failed."""

    problems: tuple[str, ...]
    key_checked: bool

    @property
    def ok(self) -> bool:
        return not self.problems


def make_certificate(log: EvidenceLog, evidence: str) -> dict[str, Any]:
    """The certificate of ``evidence`` against the first signed head that includes it (a
    new head is signed if none does yet)."""
    entry = log.find(evidence)
    head = log.head_covering(entry.index)
    return {
        "format": FORMAT,
        "evidence_id": entry.evidence_id,
        "hashing": "RFC 6962 (SHA-256, 0x00 leaf / 0x01 node prefixes)",
        "entry": {"index": entry.index, "body": entry.body, "leaf_hash": entry.leaf_hash.hex()},
        "inclusion_proof": [h.hex() for h in log.inclusion_proof(entry.index, head.tree_size)],
        "tree_head": head.to_dict(),
    }


def verify_certificate(
    certificate: dict[str, Any], *, public_key: str | None = None
) -> CertificateCheck:
    """Check ``certificate``; pass the ledger's published ``public_key`` (hex) to check who
    signed it, not only that it is internally consistent."""
    problems: list[str] = []
    try:
        if certificate.get("format") != FORMAT:
            raise LedgerError(f"not a {FORMAT} document")
        entry = certificate["entry"]
        index = int(entry["index"])
        head = TreeHead.from_dict(certificate["tree_head"])
        path = [bytes.fromhex(h) for h in certificate["inclusion_proof"]]
        claimed_leaf = bytes.fromhex(entry["leaf_hash"])
        root = bytes.fromhex(head.root_hash)
    except (LedgerError, KeyError, TypeError, ValueError) as exc:
        return CertificateCheck((f"malformed certificate: {exc}",), public_key is not None)
    leaf = merkle.leaf_hash(canonical_json(entry["body"]))
    if leaf != claimed_leaf:
        problems.append("the entry's body does not hash to its leaf hash (altered entry)")
    if certificate.get("evidence_id") != evidence_id(index, leaf):
        problems.append("the evidence id does not name this entry")
    if not merkle.verify_inclusion(leaf, index=index, size=head.tree_size, path=path, root=root):
        problems.append("the inclusion proof does not lead to the tree head's root")
    if not verify_head(head, public_key=public_key):
        problems.append(
            "the tree head's signature is not valid"
            + (" under the published key" if public_key else "")
        )
    return CertificateCheck(tuple(problems), public_key is not None)


def certificate_text(certificate: dict[str, Any], check: CertificateCheck) -> str:
    """The certificate for a reader: what was recorded, where, and whether it checks."""
    entry, head = certificate["entry"], certificate["tree_head"]
    lines = [
        f"Evidence certificate {certificate['evidence_id']}",
        "",
        f"Entry {entry['index']} of the fedrisk evidence ledger ({entry['body'].get('kind')}):",
    ]
    lines += [
        f"  {k}: {json.dumps(v, ensure_ascii=False)}" for k, v in sorted(entry["body"].items())
    ]
    lines += [
        "",
        f"Leaf hash      {entry['leaf_hash']}",
        f"Tree head      {head['tree_size']} entries, root {head['root_hash']}",
        f"Signed at      {head['timestamp']} by Ed25519 key {head['public_key']}",
        f"Audit path     {len(certificate['inclusion_proof'])} hashes (RFC 6962)",
        "",
    ]
    if check.ok:
        verdict = "VALID: the entry is in the signed log"
        if not check.key_checked:
            verdict += " (signature checked against the key in the certificate: compare it with "
            verdict += "the ledger's published key)"
        lines.append(verdict)
    else:
        lines.append("INVALID:")
        lines += [f"  - {p}" for p in check.problems]
    return "\n".join(lines)
