"""The persisted Merkle log: roots and proofs agree with RFC 6962, tampering is found.

Every test that is not about the SQLite file itself runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError

from consent.errors import LedgerError, UnknownEvidenceError
from consent.ledger import EvidenceLog, LedgerSigner, canonical_json, merkle
from tests.consent.ledger.databases import TABLES, LedgerDatabase


def _bodies(n: int, *, start: int = 0) -> list[dict[str, object]]:
    return [{"kind": "test", "n": i, "note": f"entry {i}"} for i in range(start, start + n)]


def test_roots_and_proofs_match_a_direct_computation_after_reopening(
    database: LedgerDatabase,
) -> None:
    bodies = _bodies(45)
    with database.open() as log:
        log.append_many(bodies[:20])
        for body in bodies[20:]:
            log.append(body)

    with database.open() as log:
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


def test_an_intact_log_verifies_with_its_published_key(database: LedgerDatabase) -> None:
    with database.open() as log:
        log.append_many(_bodies(10))
        log.sign_head()
        log.append_many(_bodies(7, start=10))
        head = log.sign_head()
        key = log.verify().root_hash

    with database.open(read_only=True) as reader:
        report = reader.verify(public_key=LedgerSigner.in_folder(database.folder).public_key)

    assert report.ok, report.problems
    assert (report.entries, report.heads) == (17, 2)
    assert report.root_hash == head.root_hash == key


@pytest.mark.parametrize(
    ("attack", "found"),
    [
        ("UPDATE ledger_entries SET body = replace(body, 'entry 3', 'entry 9') WHERE idx = 3",
         "differ from the entries"),
        ("UPDATE ledger_nodes SET hash = :zeros WHERE level = 2 AND idx = 0",
         "differ from the entries"),
        ("DELETE FROM ledger_entries WHERE idx >= 8", "entry 8 is missing"),
        ("DELETE FROM ledger_nodes WHERE level = 0 AND idx >= 8", "beyond the tree's"),
        ("INSERT INTO ledger_purges (idx, purge_entry) VALUES (4, 10)", "recorded as purged"),
        ("DELETE FROM ledger_entries WHERE idx = 4", "entry 4 is missing"),
        ("UPDATE ledger_heads SET timestamp = '2020-01-01T00:00:00.000Z'", "invalid signature"),
        ("UPDATE ledger_heads SET root_hash = replace(root_hash, substr(root_hash, 1, 1), 'x')",
         "does not match"),
    ],
)  # fmt: skip
def test_tampering_with_any_stored_row_is_found(
    database: LedgerDatabase, attack: str, found: str
) -> None:
    with database.open() as log:
        log.append_many(_bodies(11))
        log.sign_head()
    database.tamper(attack, **({"zeros": bytes(32)} if ":zeros" in attack else {}))

    with database.open(read_only=True) as reader:
        report = reader.verify()

    assert not report.ok
    assert any(found in p for p in report.problems), report.problems


def test_heads_signed_by_another_key_are_refused(database: LedgerDatabase, tmp_path: Path) -> None:
    with database.open() as log:
        log.append_many(_bodies(3))
        log.sign_head()
    stranger = LedgerSigner.in_folder(tmp_path / "stranger").public_key

    with database.open(read_only=True) as reader:
        assert reader.verify().ok
        report = reader.verify(public_key=stranger)

    assert any("invalid signature" in p for p in report.problems)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entries SET body = '{}'",
        "DELETE FROM ledger_entries",  # a body goes only by a recorded purge
        "DELETE FROM ledger_nodes WHERE level = 0",
        "UPDATE ledger_heads SET timestamp = '2020-01-01T00:00:00.000Z'",
    ],
)
def test_the_database_refuses_updates_and_deletes(database: LedgerDatabase, statement: str) -> None:
    with database.open() as log:
        log.append(_bodies(1)[0])
        log.sign_head()

    with pytest.raises(DBAPIError, match="append-only"):
        database.execute(statement)
    with database.open() as log:
        assert log.size == 1 and log.verify().ok


@pytest.mark.postgres
def test_postgresql_refuses_truncate(postgres_url: str, tmp_path: Path) -> None:
    database = LedgerDatabase(tmp_path, postgres_url)
    with database.open() as log:
        log.append(_bodies(1)[0])

    for table in TABLES:
        with pytest.raises(DBAPIError, match="append-only"):
            database.execute(f"TRUNCATE {table}")


def test_two_writers_on_one_database_interleave_without_losing_entries(
    database: LedgerDatabase,
) -> None:
    first = database.open()
    second = database.open()
    for i in range(6):
        (first if i % 2 else second).append({"kind": "test", "n": i})
    first.close()
    second.close()

    with database.open() as log:
        assert sorted(e.body["n"] for e in log.entries()) == list(range(6))
        assert log.verify().ok


def test_appends_survive_a_crash(database: LedgerDatabase) -> None:
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from consent.ledger import EvidenceLog, LedgerSigner\n"
        "folder, url = Path(sys.argv[1]), sys.argv[2]\n"
        "log = (EvidenceLog(url, signer=LedgerSigner.in_folder(folder)) if url\n"
        "       else EvidenceLog.in_folder(folder))\n"
        "for i in range(3): log.append({'kind': 'test', 'n': i})\n"
        "os._exit(9)\n"  # no close, no flush at exit
    )
    command = [sys.executable, "-c", script, str(database.folder), database.postgres_url or ""]
    done = subprocess.run(command, check=False)
    assert done.returncode == 9

    with database.open() as log:
        assert log.size == 3 and log.verify().ok


def test_evidence_ids_find_their_entry_and_nothing_else(database: LedgerDatabase) -> None:
    with database.open() as log:
        entries = log.append_many(_bodies(4))
        assert log.find(entries[2].evidence_id).body == _bodies(4)[2]
        forged = f"ev-2-{entries[1].leaf_hash.hex()[:16]}"
        for bad in (forged, "ev-99-0000000000000000", "ev-2", "not-an-id"):
            with pytest.raises(UnknownEvidenceError):
                log.find(bad)


def test_bad_appends_and_read_only_writes_are_refused(database: LedgerDatabase) -> None:
    with database.open() as log:
        with pytest.raises(LedgerError, match="kind"):
            log.append({"n": 1})
        log.append({"kind": "test"})
    with (
        database.open(read_only=True) as reader,
        pytest.raises(LedgerError, match="read-only"),
    ):
        reader.append({"kind": "test"})


def test_a_folder_without_a_ledger_is_refused_read_only(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no ledger"):
        EvidenceLog.in_folder(tmp_path / "absent", read_only=True)
