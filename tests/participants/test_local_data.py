"""A participant trains only on rows whose subject holds an active model_training grant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from consent.store import SQLiteConsentStore
from models.federation import load_federation
from participants.local_data import load_eligible
from tests.support.builders import make_federation

AS_OF = datetime(2026, 6, 30, tzinfo=UTC)
CATEGORIES = ("bank.transactions",)


def _grant(store: SQLiteConsentStore, subject: str, **overrides: object) -> str:
    fields: dict[str, object] = {
        "subject_id": subject,
        "institution": "bank",
        "purpose": "model_training",
        "categories": CATEGORIES,
        "starts_at": AS_OF - timedelta(days=30),
        "expires_at": AS_OF + timedelta(days=30),
        "evidence_hash": "sha256:" + "00" * 32,
        "channel": "branch",
    }
    fields.update(overrides)
    return store.grant(**fields).grant_id  # type: ignore[arg-type]


def _federation_with_consent(tmp_path: Path) -> Path:
    path = make_federation(tmp_path, privacy="none", rows=20, participants=2)
    text = path.read_text().replace(
        'name = "p1"\nfile = "p1.csv"\n',
        'name = "p1"\nfile = "p1.csv"\nconsent_db = "p1-consent.db"\n'
        'categories = ["bank.transactions"]\n',
    )
    text = text.replace("seed = 3\n", 'seed = 3\nconsent_as_of = "2026-06-30T00:00:00Z"\n')
    path.write_text(text)
    return path


def test_only_consented_rows_are_used_and_exclusions_are_counted(tmp_path: Path) -> None:
    spec = load_federation(_federation_with_consent(tmp_path))
    store = SQLiteConsentStore(tmp_path / "p1-consent.db")
    for i in range(10):
        _grant(store, f"P1-{i:05d}")
    store.withdraw(_grant(store, "P1-00010"), at=AS_OF - timedelta(days=1))
    _grant(store, "P1-00011", expires_at=AS_OF)  # expiry is exact: refused at expires_at
    _grant(store, "P1-00012", expires_at=AS_OF + timedelta(seconds=1))  # still valid
    _grant(store, "P1-00013", purpose="marketing")
    _grant(store, "P1-00014", categories=("gov.tax",))

    eligible = load_eligible(spec, spec.participant("p1"))

    assert eligible.rows_total == 20
    assert sorted(eligible.data.ids.tolist()) == [f"P1-{i:05d}" for i in (*range(10), 12)]
    assert eligible.excluded == {
        "withdrawn": 1,
        "expired": 1,
        "wrong_purpose": 1,
        "categories_not_covered": 1,
        "never_granted": 5,
    }


def test_without_a_consent_db_every_row_is_used(tmp_path: Path) -> None:
    spec = load_federation(_federation_with_consent(tmp_path))

    eligible = load_eligible(spec, spec.participant("p2"))

    assert eligible.rows_used == eligible.rows_total == 20 and eligible.excluded == {}


def test_a_data_commitment_binds_the_rows_and_hides_them_behind_the_nodes_salt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.schema import FeatureSpec, TabularSchema
    from models.tabular import TabularData
    from participants.local_data import data_commitment

    schema = TabularSchema(id="id", label=None, features=(FeatureSpec("x", "float"),))

    def table(ids: list[str], xs: list[float]) -> TabularData:
        return TabularData(
            ids=np.array(ids, dtype=object),
            features=np.array(xs, dtype=np.float32).reshape(-1, 1),
            labels=None,
            source="t",
            schema=schema,
        )

    base = data_commitment(table(["a", "b"], [1.0, 2.0]))
    assert data_commitment(table(["b", "a"], [2.0, 1.0])) == base  # row order does not matter
    assert data_commitment(table(["a", "b"], [1.0, 2.5])) != base  # a changed value does
    assert data_commitment(table(["a"], [1.0])) != base  # so does a dropped row
    monkeypatch.setenv("FEDRISK_HOME", str(tmp_path / "another-node"))
    assert data_commitment(table(["a", "b"], [1.0, 2.0])) != base  # another node's salt
