"""The persisted Merkle log: roots and proofs agree with RFC 6962, tampering is found."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from consent.errors import LedgerError, UnknownEvidenceError
from consent.ledger import EvidenceLog, LedgerSigner, canonical_json, merkle


def _bodies(n: int, *, start: int = 0) -> list[dict[str, object]]:
    return [{"kind": "test", "n": i, "note": f"entry {i}"} for i in range(start, start + n)]


def _raw(folder: Path, sql: str, *args: object) -> None:
    """What an attacker with write access to the file could do (triggers dropped first)."""
    with sqlite3.connect(folder / "ledger.db") as db:
        for table in ("ledger_entries", "ledger_nodes", "ledger_heads"):
            for op in ("update", "delete"):
                db.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
        db.execute(sql, args)


def test_roots_and_proofs_match_a_direct_computation_after_reopening(tmp_path: Path) -> None:
    bodies = _bodies(45)
    with EvidenceLog.in_folder(tmp_path) as log:
        log.append_many(bodies[:20])
        for body in bodies[20:]:
            log.append(body)

    with EvidenceLog.in_folder(tmp_path) as log:
        data = [canonical_json(b) for b in bodies]
        assert log.size == 45
        for size in (1, 2, 3, 8, 20, 21, 44, 45):
            root = merkle.root_of(data[:size])
            assert log.root(size) == root
            for index in {0, size // 2, size - 1}:
                path = log.inclusion_proof(index, size)
                leaf = merkle.leaf_hash(data[index])
                assert merkle.verify_inclusion(leaf, index=index, size=size, path=path, root=root)
            for old in (0, 1, size // 3, size):
                proof = log.consistency_proof(old, size)
                assert merkle.verify_consistency(
                    old_size=old, new_size=size, old_root=merkle.root_of(data[:old]),
                    new_root=root, proof=proof,
                )  # fmt: skip
        assert log.entries(10, 12)[1].body == bodies[11]


def test_an_intact_log_verifies_with_its_published_key(tmp_path: Path) -> None:
    with EvidenceLog.in_folder(tmp_path) as log:
        log.append_many(_bodies(10))
        log.sign_head()
        log.append_many(_bodies(7, start=10))
        head = log.sign_head()
        key = log.verify().root_hash

    with EvidenceLog.in_folder(tmp_path, read_only=True) as reader:
        report = reader.verify(public_key=LedgerSigner.in_folder(tmp_path).public_key)

    assert report.ok, report.problems
    assert (report.entries, report.heads) == (17, 2)
    assert report.root_hash == head.root_hash == key


@pytest.mark.parametrize(
    ("attack", "found"),
    [
        ("UPDATE ledger_entries SET body = replace(body, 'entry 3', 'entry 9') WHERE idx = 3",
         "differ from the entries"),
        ("UPDATE ledger_nodes SET hash = zeroblob(32) WHERE level = 2 AND idx = 0",
         "differ from the entries"),
        ("DELETE FROM ledger_entries WHERE idx >= 8", "beyond the log"),
        ("DELETE FROM ledger_entries WHERE idx = 4", "entry 4 is missing"),
        ("UPDATE ledger_heads SET timestamp = '2020-01-01T00:00:00.000Z'", "invalid signature"),
        ("UPDATE ledger_heads SET root_hash = replace(root_hash, substr(root_hash, 1, 1), 'x')",
         "does not match"),
    ],
)  # fmt: skip
def test_tampering_with_any_stored_row_is_found(tmp_path: Path, attack: str, found: str) -> None:
    with EvidenceLog.in_folder(tmp_path) as log:
        log.append_many(_bodies(11))
        log.sign_head()
    _raw(tmp_path, attack)

    with EvidenceLog.in_folder(tmp_path, read_only=True) as reader:
        report = reader.verify()

    assert not report.ok
    assert any(found in p for p in report.problems), report.problems


def test_heads_signed_by_another_key_are_refused(tmp_path: Path) -> None:
    with EvidenceLog.in_folder(tmp_path / "a") as log:
        log.append_many(_bodies(3))
        log.sign_head()
    stranger = LedgerSigner.in_folder(tmp_path / "b").public_key

    with EvidenceLog.in_folder(tmp_path / "a", read_only=True) as reader:
        assert reader.verify().ok
        report = reader.verify(public_key=stranger)

    assert any("invalid signature" in p for p in report.problems)


def test_the_database_refuses_updates_and_deletes(tmp_path: Path) -> None:
    with EvidenceLog.in_folder(tmp_path) as log:
        log.append(_bodies(1)[0])
    with sqlite3.connect(tmp_path / "ledger.db") as db, pytest.raises(sqlite3.DatabaseError):
        db.execute("UPDATE ledger_entries SET body = '{}'")


def test_two_writers_on_one_database_interleave_without_losing_entries(tmp_path: Path) -> None:
    first = EvidenceLog.in_folder(tmp_path)
    second = EvidenceLog.in_folder(tmp_path)
    for i in range(6):
        (first if i % 2 else second).append({"kind": "test", "n": i})
    first.close()
    second.close()

    with EvidenceLog.in_folder(tmp_path) as log:
        assert sorted(e.body["n"] for e in log.entries()) == list(range(6))
        assert log.verify().ok


def test_appends_survive_a_crash(tmp_path: Path) -> None:
    script = (
        "import os, sys\n"
        "from consent.ledger import EvidenceLog\n"
        "log = EvidenceLog.in_folder(sys.argv[1])\n"
        "for i in range(3): log.append({'kind': 'test', 'n': i})\n"
        "os._exit(9)\n"  # no close, no flush at exit
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=False)
    assert done.returncode == 9

    with EvidenceLog.in_folder(tmp_path) as log:
        assert log.size == 3 and log.verify().ok


def test_evidence_ids_find_their_entry_and_nothing_else(tmp_path: Path) -> None:
    with EvidenceLog.in_folder(tmp_path) as log:
        entries = log.append_many(_bodies(4))
        assert log.find(entries[2].evidence_id).body == _bodies(4)[2]
        forged = f"ev-2-{entries[1].leaf_hash.hex()[:16]}"
        for bad in (forged, "ev-99-0000000000000000", "ev-2", "not-an-id"):
            with pytest.raises(UnknownEvidenceError):
                log.find(bad)


def test_bad_appends_and_read_only_writes_are_refused(tmp_path: Path) -> None:
    with EvidenceLog.in_folder(tmp_path) as log:
        with pytest.raises(LedgerError, match="kind"):
            log.append({"n": 1})
        log.append({"kind": "test"})
    with (
        EvidenceLog.in_folder(tmp_path, read_only=True) as reader,
        pytest.raises(LedgerError, match="read-only"),
    ):
        reader.append({"kind": "test"})
    with pytest.raises(LedgerError, match="no ledger"):
        EvidenceLog.in_folder(tmp_path / "absent", read_only=True)
