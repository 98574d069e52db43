"""``fedrisk decide run | replay | check`` as a user runs them (a subprocess each)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd

from coordinator.decisions.policy import DEFAULT_POLICIES
from tests.support.decisions import applications, grant, make_root

POLICY = DEFAULT_POLICIES / "iot.toml"


def _fedrisk(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fedrisk", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_decide_run_then_replay_from_the_ledger_then_a_tampered_ledger_fails(
    tmp_path: Path,
) -> None:
    root = make_root(tmp_path / "root")
    apps = applications(tmp_path / "apps.csv", rows=30)
    with root.consent() as consent:
        for subject in pd.read_csv(apps, dtype={"subject_id": str})["subject_id"][::2]:
            grant(consent, subject)

    ran = _fedrisk("decide", "run", POLICY, "--applications", apps,
                   "--output", tmp_path / "out.csv", "--root", root.root)  # fmt: skip
    replayed = _fedrisk("decide", "replay", "--root", root.root)

    assert ran.returncode == 0, ran.stderr
    assert "30 decisions with demo-iot" in ran.stderr and "15 without consent" in ran.stderr
    assert len(pd.read_csv(tmp_path / "out.csv")) == 30
    assert replayed.returncode == 0, replayed.stderr
    assert "30 of 30 decisions reproduced exactly (100.00%)" in replayed.stderr

    with sqlite3.connect(root.root / "runs" / "ledger" / "ledger.db") as db:
        db.execute("DROP TRIGGER IF EXISTS ledger_entries_no_update")
        db.execute(
            'UPDATE ledger_entries SET body = replace(body, \'"outcome":"refer"\', '
            "'\"outcome\":\"approve\"') WHERE kind = 'lending_decision'"
        )
    tampered = _fedrisk("decide", "replay", "--root", root.root)
    assert tampered.returncode == 1
    assert "not reproduced" in tampered.stderr


def test_decide_errors_are_one_line_naming_what_to_fix(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    bad = tmp_path / "bad.csv"
    bad.write_text("subject_id,requested_amount\nF1,lots\n")

    no_file = _fedrisk("decide", "run", POLICY, "--applications", bad,
                       "--output", tmp_path / "o.csv", "--root", root.root)  # fmt: skip
    no_ledger = _fedrisk("decide", "replay", "--root", tmp_path / "empty")
    checked = _fedrisk("decide", "check", POLICY)

    assert no_file.returncode == 1
    assert f"{bad}, row 2, column 'requested_amount'" in no_file.stderr
    assert "Traceback" not in no_file.stderr
    assert no_ledger.returncode == 1 and "no ledger" in no_ledger.stderr
    assert (
        checked.returncode == 0 and "iot-working-capital 2026.12.1 for demo-iot" in checked.stdout
    )
