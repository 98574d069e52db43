"""Deciding a file of applications end to end, and replaying the ledger
(coordinator/decisions/portfolio.py, records.py, replay.py)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from coordinator.decisions import (
    ApplicationError,
    PolicyError,
    decide_file,
    load_policy,
    replay_ledger,
)
from coordinator.decisions.policy import DEFAULT_POLICIES
from coordinator.decisions.records import DECISION_KIND, POLICY_KIND
from tests.support.decisions import DecisionRoot, applications, grant, make_root

EXAMPLES = DEFAULT_POLICIES
POLICY = load_policy(EXAMPLES / "iot.toml")
ROWS = 60


@pytest.fixture
def root(tmp_path: Path) -> DecisionRoot:
    return make_root(tmp_path / "root")


def _run(root: DecisionRoot, apps: Path, out: Path, **options: object) -> object:
    with root.consent() as consent:
        return decide_file(
            policy=options.pop("policy", POLICY),  # type: ignore[arg-type]
            registry=root.registry,
            consent=consent,
            applications=apps,
            output=out,
            institution="demo-bank",
            app="test",
            **options,  # type: ignore[arg-type]
        )


def _granted(root: DecisionRoot, apps: Path, *, skip: int = 5) -> list[str]:
    """Grant every subject but each ``skip``-th; withdraw one grant."""
    ids = pd.read_csv(apps, dtype={"subject_id": str})["subject_id"].tolist()
    with root.consent() as consent:
        grants = [grant(consent, s) for k, s in enumerate(ids) if k % skip]
        consent.withdraw(grants[0])
    return ids


def test_a_portfolio_is_decided_only_where_consent_holds_and_every_decision_replays(
    root: DecisionRoot, tmp_path: Path
) -> None:
    apps = applications(tmp_path / "apps.csv", rows=ROWS)
    ids = _granted(root, apps)

    summary = _run(root, apps, tmp_path / "out.csv")

    out = pd.read_csv(tmp_path / "out.csv", dtype={"subject_id": str})
    assert out["subject_id"].tolist() == ids
    never = out.iloc[::5]
    withdrawn = out.iloc[[1]]
    for refused, code in ((never, "consent_never_granted"), (withdrawn, "consent_withdrawn")):
        assert (refused["outcome"] == "refer").all()
        assert refused["score"].isna().all()  # the model never ran for them
        assert (refused["reasons"] == code).all()
    scored = out.drop(index=[*never.index, 1])
    assert scored["score"].notna().all()
    assert set(scored["outcome"]) <= {"approve", "refer", "decline", "increase", "keep"}
    assert summary.refused_consent == len(never) + 1  # type: ignore[attr-defined]
    with root.consent() as consent:
        assert consent.ledger.count_of_kind(DECISION_KIND) == ROWS
        assert consent.ledger.count_of_kind(POLICY_KIND) == 1
        report = replay_ledger(consent.ledger)
        bodies = consent.ledger.bodies_of_kind(DECISION_KIND)
    assert (report.decisions, report.reproduced, report.share) == (ROWS, ROWS, 1.0)
    assert not any(s in json.dumps(bodies) for s in ids)  # pseudonyms only


def test_a_second_run_reuses_the_policy_entry_and_a_new_version_adds_one(
    root: DecisionRoot, tmp_path: Path
) -> None:
    apps = applications(tmp_path / "apps.csv", rows=10)
    _granted(root, apps)
    _run(root, apps, tmp_path / "a.csv")
    _run(root, apps, tmp_path / "b.csv")
    stricter = replace(POLICY, version="2027.1.0", approve_below=0.02)
    _run(root, apps, tmp_path / "c.csv", policy=stricter)

    with root.consent() as consent:
        report = replay_ledger(consent.ledger)
    assert (report.policies, report.decisions, report.reproduced) == (2, 30, 30)

    same_version = replace(stricter, approve_below=0.03)
    with pytest.raises(PolicyError, match="give the changed policy a new version"):
        _run(root, apps, tmp_path / "d.csv", policy=same_version)


def test_withdrawing_consent_mid_loan_stops_an_automatic_increase(
    root: DecisionRoot, tmp_path: Path
) -> None:
    apps = tmp_path / "apps.csv"
    pd.DataFrame(
        {"subject_id": ["F1"], "receivable_overdue_days": [5.0], "mes_erp_mismatch": [0.05],
         "order_growth": [0.3], "current_limit": [500_000.0], "previous_score": [0.2]}
    ).to_csv(apps, index=False)  # fmt: skip
    with root.consent() as consent:
        grant_id = grant(consent, "F1")
    _run(root, apps, tmp_path / "before.csv")
    with root.consent() as consent:
        consent.withdraw(grant_id)

    _run(root, apps, tmp_path / "after.csv")

    before = pd.read_csv(tmp_path / "before.csv").iloc[0]
    after = pd.read_csv(tmp_path / "after.csv").iloc[0]
    assert (before["outcome"], before["limit"]) == ("increase", 620_000.0)
    assert (after["outcome"], after["limit"], after["reasons"]) == (
        "refer", 500_000.0, "consent_withdrawn"
    )  # fmt: skip


def test_a_model_older_than_the_policy_allows_approves_nothing(tmp_path: Path) -> None:
    old = make_root(tmp_path / "root", created=datetime.now(UTC) - timedelta(days=200))
    apps = applications(tmp_path / "apps.csv", rows=40)
    _granted(old, apps, skip=10**9)

    _run(old, apps, tmp_path / "out.csv")

    out = pd.read_csv(tmp_path / "out.csv")
    assert not out["outcome"].isin(["approve", "increase"]).any()
    scored = out[out["score"].notna()]
    assert len(scored) == 38  # the first has no grant, the second withdrew it
    assert scored["reasons"].str.contains("model_stale").all()


def test_an_altered_decision_or_policy_in_the_ledger_is_not_reproduced(
    root: DecisionRoot, tmp_path: Path
) -> None:
    apps = applications(tmp_path / "apps.csv", rows=8)
    _granted(root, apps, skip=10**9)
    _run(root, apps, tmp_path / "out.csv")
    db = root.root / "runs" / "ledger" / "ledger.db"
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER IF EXISTS ledger_entries_no_update")
        idx, body = conn.execute(
            "SELECT idx, body FROM ledger_entries WHERE kind = ? ORDER BY idx LIMIT 1",
            (DECISION_KIND,),
        ).fetchone()
        record = json.loads(body)
        record["decision"]["limit"] = record["decision"]["limit"] + 1_000_000.0
        conn.execute("UPDATE ledger_entries SET body = ? WHERE idx = ?", (json.dumps(record), idx))

    with root.consent() as consent:
        report = replay_ledger(consent.ledger)
        verified = consent.ledger.verify()

    assert (report.decisions, report.reproduced) == (8, 7)
    assert "recorded" in report.mismatches[0].problem
    assert not verified.ok  # and the ledger's own check sees the edit too

    with sqlite3.connect(db) as conn:
        idx, body = conn.execute(
            "SELECT idx, body FROM ledger_entries WHERE kind = ?", (POLICY_KIND,)
        ).fetchone()
        record = json.loads(body)
        record["policy"]["score"]["approve_below"] = 0.2
        conn.execute("UPDATE ledger_entries SET body = ? WHERE idx = ?", (json.dumps(record), idx))
    with root.consent() as consent:
        report = replay_ledger(consent.ledger)
    assert report.reproduced == 0
    assert "does not match its digest" in report.mismatches[0].problem


@pytest.mark.parametrize(
    ("edit", "row", "column", "words"),
    [
        (lambda f: f.assign(subject_id=[*f.subject_id[:-1], f.subject_id.iloc[0]]), 6,
         "subject_id", "applies twice"),
        (lambda f: f.astype({"order_growth": object}).assign(
            order_growth=["x", *f.order_growth[1:]]), 2, "order_growth", "not a finite number"),
        (lambda f: f.assign(requested_amount=-1.0), 2, "requested_amount", "negative"),
        (lambda f: f.drop(columns="subject_id"), 1, None, "missing id column"),
    ],
)  # fmt: skip
def test_a_malformed_applications_file_names_its_row_and_column_and_decides_nothing(
    root: DecisionRoot, tmp_path: Path, edit: object, row: int, column: str | None, words: str
) -> None:
    apps = applications(tmp_path / "apps.csv", rows=5)
    edit(pd.read_csv(apps, dtype={"subject_id": str})).to_csv(apps, index=False)  # type: ignore[operator]

    with pytest.raises(ApplicationError) as caught:
        _run(root, apps, tmp_path / "out.csv")

    assert (caught.value.row, caught.value.column) == (row, column)
    assert words in str(caught.value) and str(apps) in str(caught.value)
    assert not (tmp_path / "out.csv").exists()
    with root.consent() as consent:
        assert consent.ledger.count_of_kind(DECISION_KIND) == 0


def test_scores_from_a_portfolio_run_are_used_only_for_consented_subjects(
    root: DecisionRoot, tmp_path: Path
) -> None:
    apps = applications(tmp_path / "apps.csv", rows=10)
    ids = _granted(root, apps)
    scores = tmp_path / "scores.csv"
    pd.DataFrame({"subject_id": ids[:-1], "score": 0.01}).to_csv(scores, index=False)

    _run(root, apps, tmp_path / "out.csv", scores=scores)

    out = pd.read_csv(tmp_path / "out.csv")
    assert out["score"].isna().tolist() == [k % 5 == 0 or k in (1, 9) for k in range(10)]
    assert out["reasons"].iloc[-1] == "no_score"

    pd.DataFrame({"subject_id": ids, "score": 1.5}).to_csv(scores, index=False)
    with pytest.raises(ApplicationError, match="not a probability"):
        _run(root, apps, tmp_path / "out.csv", scores=scores)
