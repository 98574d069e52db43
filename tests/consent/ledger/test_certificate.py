"""Evidence certificates: checkable with the published key alone; any change fails them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from consent.cli import app
from consent.ledger import EvidenceLog, LedgerSigner
from consent.ledger.certificate import certificate_text, make_certificate, verify_certificate


def _ledger(folder: Path, n: int = 13) -> list[str]:
    with EvidenceLog.in_folder(folder) as log:
        entries = log.append_many([{"kind": "test", "n": i} for i in range(n)])
        log.sign_head()
        log.append({"kind": "test", "n": n})  # after the head: a later head must cover it
        return [e.evidence_id for e in entries]


def _certificate(folder: Path, evidence: str) -> dict[str, Any]:
    with EvidenceLog.in_folder(folder) as log:
        return make_certificate(log, evidence)


def test_a_certificate_verifies_with_the_published_key(tmp_path: Path) -> None:
    ids = _ledger(tmp_path)
    key = LedgerSigner.in_folder(tmp_path).public_key

    certificate = _certificate(tmp_path, ids[5])
    check = verify_certificate(json.loads(json.dumps(certificate)), public_key=key)

    assert check.ok and check.key_checked
    assert certificate["tree_head"]["tree_size"] == 13
    assert "VALID" in certificate_text(certificate, check)


def test_an_entry_after_the_last_head_gets_a_new_head(tmp_path: Path) -> None:
    _ledger(tmp_path)
    with EvidenceLog.in_folder(tmp_path) as log:
        last = log.entry(13).evidence_id
        certificate = make_certificate(log, last)
    assert certificate["tree_head"]["tree_size"] == 14
    assert verify_certificate(certificate).ok


def _bend_body(c: dict[str, Any]) -> None:
    c["entry"]["body"]["n"] = 99


def _bend_path(c: dict[str, Any]) -> None:
    c["inclusion_proof"][0] = "00" * 32


def _bend_size(c: dict[str, Any]) -> None:
    c["tree_head"]["tree_size"] += 1


def _bend_index(c: dict[str, Any]) -> None:
    c["entry"]["index"] += 1


def _bend_signature(c: dict[str, Any]) -> None:
    c["tree_head"]["signature"] = "00" * 64


@pytest.mark.parametrize(
    ("bend", "problem"),
    [
        (_bend_body, "does not hash to its leaf"),
        (_bend_path, "inclusion proof"),
        (_bend_size, "signature"),
        (_bend_index, "evidence id"),
        (_bend_signature, "signature"),
    ],
)
def test_any_change_to_a_certificate_fails_it(tmp_path: Path, bend: Any, problem: str) -> None:
    ids = _ledger(tmp_path)
    certificate = copy.deepcopy(_certificate(tmp_path, ids[6]))
    bend(certificate)

    check = verify_certificate(certificate)

    assert not check.ok
    assert any(problem in p for p in check.problems), check.problems
    assert "INVALID" in certificate_text(certificate, check)


def test_a_certificate_from_another_ledger_fails_under_this_ones_key(tmp_path: Path) -> None:
    ids = _ledger(tmp_path / "other")
    ours = LedgerSigner.in_folder(tmp_path / "ours").public_key
    check = verify_certificate(_certificate(tmp_path / "other", ids[0]), public_key=ours)
    assert not check.ok and any("published key" in p for p in check.problems)


def test_malformed_documents_are_refused_not_crashed_on() -> None:
    for document in ({}, {"format": "fedrisk-evidence-certificate/1"}, {"format": "x"}):
        assert not verify_certificate(document).ok


def test_cli_proves_checks_and_verifies(tmp_path: Path) -> None:
    ids = _ledger(tmp_path / "ledger")
    runner = CliRunner()
    out = tmp_path / "cert.json"

    proved = runner.invoke(
        app, ["ledger", "prove", ids[3], "--ledger", str(tmp_path / "ledger"), "--output", str(out)]
    )
    key = (tmp_path / "ledger" / "ledger-signing-key.pem.pub").read_text().strip()
    checked = runner.invoke(app, ["ledger", "check", str(out), "--public-key", key])
    verified = runner.invoke(app, ["ledger", "verify", "--ledger", str(tmp_path / "ledger")])

    assert proved.exit_code == 0 and f"Evidence certificate {ids[3]}" in proved.output
    assert checked.exit_code == 0 and "VALID" in checked.output
    assert verified.exit_code == 0 and "ledger OK: 14 entries" in verified.output

    document = json.loads(out.read_text())
    document["entry"]["body"]["n"] = 7
    out.write_text(json.dumps(document))
    refused = runner.invoke(app, ["ledger", "check", str(out), "--public-key", key])
    unknown = runner.invoke(app, ["ledger", "prove", "ev-1-0000000000000000",
                                  "--ledger", str(tmp_path / "ledger")])  # fmt: skip
    assert refused.exit_code == 1 and "INVALID" in refused.output
    assert unknown.exit_code == 1
