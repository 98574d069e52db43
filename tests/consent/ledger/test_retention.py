"""Behaviour 13: negative credit information (scoring decisions, review requests) leaves the
ledger after five years, and the ledger stays provable: the tree, signed heads and every
remaining entry's proofs are unchanged, the purge is itself evidenced, and nothing else can
remove a body unnoticed. On SQLite and on PostgreSQL."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from consent.cli import app as consent_cli
from consent.errors import PurgedEvidenceError, UnknownEvidenceError
from consent.ledger import EvidenceLog, merkle
from consent.ledger.certificate import make_certificate, verify_certificate
from consent.ledger.entries import review_request_entry, scoring_decision_entry
from consent.ledger.retention import cutoff_for, purge_expired
from tests.consent.ledger.databases import LedgerDatabase

NOW = datetime(2031, 6, 1, 12, tzinfo=UTC)


def _decision(at: datetime, n: int) -> dict[str, object]:
    return scoring_decision_entry(
        request_hash=f"{n:064x}",
        subject_pseudonym=f"{n + 1:064x}",
        model="demo-farmer-credit",
        model_version="v1",
        score=0.8,
        grant_id=f"g-{n}",
        app="farmer-app",
        outcome="scored",
        reason=None,
        at=at,
    )


def _consent_like(at: datetime, n: int) -> dict[str, object]:
    return {"kind": "consent_event", "event": "granted", "grant_id": f"g-{n}", "at": at.isoformat()}


def _ledger(log: EvidenceLog) -> dict[str, list[str]]:
    """Old and recent decisions, a review request of an old one, consent events between."""
    old, recent = NOW - timedelta(days=5 * 365 + 30), NOW - timedelta(days=400)
    ids: dict[str, list[str]] = {"old": [], "recent": [], "consent": []}
    for n in range(6):
        ids["consent"].append(log.append(_consent_like(old, n)).evidence_id)
        ids["old"].append(log.append(_decision(old + timedelta(minutes=n), n)).evidence_id)
    first = ids["old"][0]
    review = review_request_entry(decision=first, app="farmer-app", at=old + timedelta(hours=1))
    ids["old"].append(log.append(review).evidence_id)
    for n in range(6, 10):
        ids["recent"].append(log.append(_decision(recent, n)).evidence_id)
    return ids


def test_the_cutoff_is_five_calendar_years() -> None:
    assert cutoff_for(NOW) == datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert cutoff_for(datetime(2028, 2, 29, tzinfo=UTC)) == datetime(2023, 2, 28, tzinfo=UTC)


def test_old_decisions_go_and_everything_else_stays_provable(database: LedgerDatabase) -> None:
    with database.open() as log:
        ids = _ledger(log)
        before = log.sign_head()
        recent_certificate = make_certificate(log, ids["recent"][0])

        report = purge_expired(log, now=NOW)

        assert (report.purged, report.kept) == (len(ids["old"]), len(ids["recent"]))
        for evidence in ids["old"]:
            with pytest.raises(PurgedEvidenceError, match="retention"):
                log.find(evidence)
        for evidence in ids["recent"] + ids["consent"]:
            assert log.find(evidence).body["kind"] in ("scoring_decision", "consent_event")
        record = log.find(str(report.record)).body
        assert record["kind"] == "retention_purge" and record["count"] == len(ids["old"])
        assert "5 years" in record["policy"]
        # The tree did not change under the purge: the old head is a prefix of the new one.
        after = log.sign_head()
        assert log.root(before.tree_size).hex() == before.root_hash
        proof = log.consistency_proof(before.tree_size, after.tree_size)
        assert merkle.verify_consistency(
            old_size=before.tree_size,
            new_size=after.tree_size,
            old_root=bytes.fromhex(before.root_hash),
            new_root=bytes.fromhex(after.root_hash),
            proof=proof,
        )
        # A certificate issued before the purge still checks; so do new ones.
        assert verify_certificate(recent_certificate).ok
        assert verify_certificate(make_certificate(log, ids["recent"][1])).ok
        assert log.verify().ok
        # Running again purges nothing more and records nothing.
        again = purge_expired(log, now=NOW)
        assert (again.purged, again.record) == (0, None)
    with database.open(read_only=True) as reader:
        assert reader.verify().ok


def test_a_dry_run_changes_nothing(database: LedgerDatabase) -> None:
    with database.open() as log:
        ids = _ledger(log)
        size = log.size
        report = purge_expired(log, now=NOW, dry_run=True)
        assert report.purged == len(ids["old"]) and report.record is None
        assert log.size == size
        assert log.find(ids["old"][0]).body["kind"] == "scoring_decision"


def test_a_purged_id_with_a_wrong_hash_is_just_unknown(database: LedgerDatabase) -> None:
    with database.open() as log:
        ids = _ledger(log)
        purge_expired(log, now=NOW)
        index = ids["old"][0].split("-")[1]
        with pytest.raises(UnknownEvidenceError) as raised:
            log.find(f"ev-{index}-{'0' * 16}")
        assert not isinstance(raised.value, PurgedEvidenceError)


def test_the_database_refuses_to_delete_a_body_no_purge_covers(database: LedgerDatabase) -> None:
    with database.open() as log:
        ids = _ledger(log)
        purge_expired(log, now=NOW)
    recent = ids["recent"][0].split("-")[1]
    with pytest.raises(DBAPIError, match="append-only"):
        database.execute(f"DELETE FROM ledger_entries WHERE idx = {recent}")


@pytest.mark.parametrize(
    ("attack", "found"),
    [
        # Record a purge of a recent decision, as if by the rule, then delete its body.
        (
            "INSERT INTO ledger_purges (idx, purge_entry) VALUES ({recent}, {record})",
            "without a purge record naming it",
        ),
        # Delete a purge record's own body (it is not purgeable).
        ("DELETE FROM ledger_entries WHERE idx = {record}", "no purge covers it"),
    ],
)
def test_a_body_removed_outside_the_rule_is_found(
    database: LedgerDatabase, attack: str, found: str
) -> None:
    with database.open() as log:
        ids = _ledger(log)
        report = purge_expired(log, now=NOW)
    recent, record = ids["recent"][0].split("-")[1], str(report.record).split("-")[1]
    database.tamper(attack.format(recent=recent, record=record))
    if attack.startswith("INSERT"):
        database.tamper(f"DELETE FROM ledger_entries WHERE idx = {recent}")

    with database.open(read_only=True) as reader:
        result = reader.verify()
    assert any(found in p for p in result.problems), result.problems


def test_a_ledger_made_before_purges_existed_learns_them(tmp_path: Path) -> None:
    with EvidenceLog.in_folder(tmp_path) as log:
        ids = _ledger(log)
    with sqlite3.connect(tmp_path / "ledger.db") as db:  # the trigger as it used to be
        db.execute("DROP TRIGGER ledger_entries_no_delete")
        db.execute(
            "CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries "
            "BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only'); END"
        )

    with EvidenceLog.in_folder(tmp_path) as log:
        assert purge_expired(log, now=NOW).purged == len(ids["old"])
        assert log.verify().ok
    recent = ids["recent"][0].split("-")[1]
    with sqlite3.connect(tmp_path / "ledger.db") as db, pytest.raises(sqlite3.DatabaseError):
        db.execute(f"DELETE FROM ledger_entries WHERE idx = {recent}")


def test_fedrisk_ledger_purge(tmp_path: Path) -> None:
    folder = tmp_path / "ledger"
    with EvidenceLog.in_folder(folder) as log:
        log.append(_decision(datetime.now(UTC) - timedelta(days=6 * 365), 1))
        log.append(_decision(datetime.now(UTC) - timedelta(days=10), 2))
    runner = CliRunner()

    dry = runner.invoke(consent_cli, ["ledger", "purge", "--ledger", str(folder), "--dry-run"])
    assert dry.exit_code == 0 and "would purge 1 entries" in dry.output
    done = runner.invoke(consent_cli, ["ledger", "purge", "--ledger", str(folder)])
    assert done.exit_code == 0 and "purged 1 entries" in done.output, done.output
    again = runner.invoke(consent_cli, ["ledger", "purge", "--ledger", str(folder)])
    assert "nothing to purge" in again.output
    checked = runner.invoke(consent_cli, ["ledger", "verify", "--ledger", str(folder)])
    assert checked.exit_code == 0 and "ledger OK: 3 entries" in checked.output
    proved = runner.invoke(
        consent_cli, ["ledger", "prove", "ev-0-0000000000000000", "--ledger", str(folder)]
    )
    assert proved.exit_code == 1
