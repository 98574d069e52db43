"""Farmers and SMEs: the hidden risk needs both the bank's and the government's features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from participants.demo.farmers import simulate_farmers
from participants.demo.smes import simulate_smes
from participants.demo.vertical import VerticalSplit

MARGIN = 0.02


def _design(frame: pd.DataFrame) -> np.ndarray:
    """One-hot categories and log money-like columns, as a modeller would."""
    encoded = pd.get_dummies(frame, dtype=float)
    for column in encoded.columns:
        if encoded[column].max() > 1_000:
            encoded[column] = np.log1p(encoded[column].clip(lower=0))
    return np.asarray(encoded.to_numpy(), dtype=np.float64)


def _auc_bank_only_and_joint(split: VerticalSplit) -> tuple[float, float]:
    joint = split.bank.merge(split.gov, on=split.id_column)
    bank_cols = [c for c in split.bank.columns if c not in (split.id_column, "label")]
    gov_cols = [c for c in split.gov.columns if c != split.id_column]
    y = joint["label"].to_numpy()
    train, test = train_test_split(np.arange(len(joint)), test_size=0.4, random_state=0, stratify=y)
    aucs = []
    for columns in (bank_cols, bank_cols + gov_cols):
        x = _design(joint[columns])
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        model.fit(x[train], y[train])
        aucs.append(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1]))
    return aucs[0], aucs[1]


@pytest.mark.parametrize("population", ["farmers", "smes"])
def test_bank_plus_gov_beats_bank_only(population: str) -> None:
    rng = np.random.default_rng(2026)
    split = (
        simulate_farmers(rng, n_farmers=8000)
        if population == "farmers"
        else simulate_smes(rng, n_smes=8000)
    )

    bank_only, joint = _auc_bank_only_and_joint(split)

    assert joint >= bank_only + MARGIN, (bank_only, joint)
    assert 0.06 <= split.bank["label"].mean() <= 0.2
