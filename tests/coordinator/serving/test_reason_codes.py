"""Reason codes speak per feature as a loan officer reads it: a categorical (the farmer's main
crop, one-hot encoded in the model) is occluded as a whole and phrased once, naming the
subject's own category, through the single and the batch scoring routes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from models.federation import FederationSpec, load_federation
from models.registry import ModelRegistry
from models.schema import TabularSchema
from models.specs import CROPS, ID_COLUMN, LABEL_COLUMN, get_spec, one_hot_name
from models.vertical_parts import PartRef, PartScorer, combiner_graph, lr_part_graph
from participants.demo.toml_text import toml_feature, toml_strings
from participants.vertical_state import part_dir
from tests.support.serving import INSTITUTION, Service, grant_body, service

MODEL = "farmer-reasons"
EXPORT_ID = "run-1"
ROWS = 400
#: Every category the farmer-credit parties declare (a grant must cover them all).
CATEGORIES = {
    "bank": ["bank.loans", "bank.transactions"],
    "gov": ["gov.agri", "gov.registry"],
}
#: Subject 0 grows fruit (forced below); being a fruit farmer pushes the score up.
FRUIT_FARMER = "F00000"


def _tables(rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    spec = get_spec("farmer_credit")
    ids = [f"F{i:05d}" for i in range(ROWS)]
    crops = rng.choice(CROPS, size=ROWS)
    crops[0] = "fruit"
    tables = {}
    for party in ("bank", "gov"):
        columns: dict[str, object] = {ID_COLUMN: ids}
        if party == "bank":
            columns[LABEL_COLUMN] = rng.integers(0, 2, size=ROWS)
        for feature in spec.party_schema(party).features:
            if feature.name.startswith("main_crop_"):
                level = feature.name.removeprefix("main_crop_")
                columns[feature.name] = (crops == level).astype(int)
            elif feature.type == "bool":
                columns[feature.name] = rng.integers(0, 2, size=ROWS)
            elif feature.type == "int":
                columns[feature.name] = rng.integers(0, 10, size=ROWS)
            else:
                columns[feature.name] = rng.uniform(0, 100, size=ROWS).round(2)
        tables[party] = pd.DataFrame(columns)
    return tables


def _federation_file(folder: Path) -> Path:
    spec = get_spec("farmer_credit")
    lines = [
        "[federation]",
        f'name = "{MODEL}"',
        'model = "farmer_credit"',
        'mode = "vertical"',
        'privacy = "none"',
        "rounds = 1",
    ]
    for party in ("bank", "gov"):
        schema = spec.party_schema(party)
        features = ", ".join(toml_feature(f.name, f.type, f.min, f.max) for f in schema.features)
        label = f', label = "{LABEL_COLUMN}"' if schema.label else ""
        lines += [
            "",
            "[[participants]]",
            f'name = "{party}"',
            f'file = "{party}.csv"',
            f"categories = {toml_strings(CATEGORIES[party])}",
            f'schema = {{ id = "{ID_COLUMN}"{label}, features = [{features}] }}',
        ]
    path = folder / "federation.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _weights(schema: TabularSchema) -> np.ndarray:
    """Fruit raises the risk and every other crop lowers it: occluding any one crop column
    of a fruit farmer would raise a "main crop: <that crop>" reason on its own."""
    weights = []
    for name in schema.feature_names:
        if name == one_hot_name("main_crop", "fruit"):
            weights.append(2.0)
        elif name.startswith("main_crop_"):
            weights.append(-1.0)
        else:
            weights.append(-0.2 if name in ("planted_area_mu", "deposit_balance_cny") else 0.05)
    return np.array(weights)


def publish_without_training(folder: Path) -> FederationSpec:
    """A farmer-credit model of known weights: each party's LR part filed on its node, the
    combiner and the card in the registry (what a vertical federation ends with)."""
    rng = np.random.default_rng(7)
    for party, table in _tables(rng).items():
        table.to_csv(folder / f"{party}.csv", index=False)
    spec = load_federation(_federation_file(folder))
    schemas = {p.name: p.schema for p in spec.participants if p.schema is not None}
    refs = []
    for party, schema in schemas.items():
        x = pd.read_csv(folder / f"{party}.csv")[list(schema.feature_names)].to_numpy(float)
        part = lr_part_graph(
            party=party,
            mean=x.mean(axis=0),
            scale=np.maximum(x.std(axis=0), 1e-6),
            weights=_weights(schema),
            clip_norm=1e6,
            bias=-3.0 if party == "bank" else 0.0,
        )
        path = part_dir(MODEL, party, EXPORT_ID) / "part.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(part.SerializeToString())
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        refs.append(PartRef(party, EXPORT_ID, digest, schema.feature_names))
    ModelRegistry(spec.output_dir / "registry").register_vertical(
        name=MODEL,
        spec_name="farmer_credit",
        combiner=combiner_graph(parties=list(schemas), bias=0.0),
        parts=refs,
        schemas=schemas,
        participants=dict.fromkeys(schemas, ROWS),
        rounds=1,
        strategy="vertical-lr",
        privacy_mode="none",
        data_categories=CATEGORIES,
    )
    return spec


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, TestClient]]:
    folder = tmp_path_factory.mktemp("reasons")
    mp = pytest.MonkeyPatch()
    mp.setenv("FEDRISK_HOME", str(folder / "home"))
    spec = publish_without_training(folder)
    svc = service(folder, spec)
    with TestClient(svc.app) as client:  # type: ignore[arg-type]
        yield svc, client
    mp.undo()


@pytest.fixture(autouse=True)
def node_home() -> None:
    """The module's parts live in the module's node home: keep it (overrides the suite's)."""


def _headers(svc: Service, client: TestClient) -> dict[str, str]:
    name = f"lender-{len(svc.state.apps.list())}"
    secret = svc.state.apps.add(
        name,
        institution=INSTITUTION,
        scopes=[f"score:{MODEL}", "consent:write"],
        rate_per_s=1000.0,
        burst=1000,
    )
    form = {"grant_type": "client_credentials", "client_id": name, "client_secret": secret}
    token = client.post("/v1/oauth/token", data=form).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _consent(client: TestClient, headers: dict[str, str], subject: str) -> None:
    categories = sorted(c for cs in CATEGORIES.values() for c in cs)
    body = grant_body(subject, categories=categories)
    assert client.post("/v1/consents", json=body, headers=headers).status_code == 201


def _crop_reasons(codes: list[dict[str, object]]) -> list[dict[str, object]]:
    return [c for c in codes if str(c["text"]).startswith("main crop")]


def test_a_categorical_gives_one_reason_naming_the_subjects_own_category(served) -> None:  # type: ignore[no-untyped-def]
    svc, client = served
    headers = _headers(svc, client)
    _consent(client, headers, FRUIT_FARMER)

    answer = client.post(
        f"/v1/models/{MODEL}/score", json={"subject_id": FRUIT_FARMER}, headers=headers
    )

    assert answer.status_code == 200, answer.text
    codes = answer.json()["reason_codes"]
    (crop,) = _crop_reasons(codes)
    assert crop["text"] == "main crop: fruit"
    assert crop["feature"] == "main_crop" and crop["party"] == "gov"
    assert len({c["feature"] for c in codes}) == len(codes)
    assert not [c for c in codes if str(c["feature"]).startswith("main_crop_")]


def test_batch_reason_codes_occlude_the_categorical_as_a_whole_too(served) -> None:  # type: ignore[no-untyped-def]
    svc, client = served
    headers = _headers(svc, client)
    crops = pd.read_csv(svc.spec.path.parent / "gov.csv").set_index(ID_COLUMN)
    subjects = [FRUIT_FARMER, *(f"F{i:05d}" for i in range(1, 40))]
    for subject in subjects:
        _consent(client, headers, subject)

    answer = client.post(
        f"/v1/models/{MODEL}/score/batch",
        json={"subject_ids": subjects, "reason_codes": True},
        headers=headers,
    )

    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["subject_id"] for r in results] == subjects
    for result in results:
        row = crops.loc[result["subject_id"]]
        own = next(level for level in CROPS if row[one_hot_name("main_crop", level)] == 1)
        reasons = _crop_reasons(result["reason_codes"])
        assert len(reasons) <= 1, result
        assert all(r["text"] == f"main crop: {own}" for r in reasons), (own, reasons)
    fruit = results[0]["reason_codes"]
    single = client.post(
        f"/v1/models/{MODEL}/score", json={"subject_id": FRUIT_FARMER}, headers=headers
    ).json()
    assert fruit == single["reason_codes"]


def _fruit_answers(svc: Service) -> tuple[dict[str, Any], dict[str, dict[str, list[float]]]]:
    """The parties' outputs for the fruit farmer and, keyed by one-hot column as a node
    running an older fedrisk answers, the gov part occluded column by column."""
    gov = pd.read_csv(svc.spec.path.parent / "gov.csv").set_index(ID_COLUMN)
    bank = pd.read_csv(svc.spec.path.parent / "bank.csv").set_index(ID_COLUMN)
    card = ModelRegistry(svc.spec.output_dir / "registry").latest(MODEL).card
    refs = {p["party"]: p for p in card.architecture["parts"]}
    scorers = {p: PartScorer(part_dir(MODEL, p, EXPORT_ID) / "part.onnx") for p in refs}
    rows = {
        "bank": bank.loc[FRUIT_FARMER, list(refs["bank"]["features"])].to_numpy(np.float32),
        "gov": gov.loc[FRUIT_FARMER, list(refs["gov"]["features"])].to_numpy(np.float32),
    }
    outputs = {p: scorers[p].score(rows[p]).tolist() for p in rows}
    means = gov[list(refs["gov"]["features"])].to_numpy(np.float32).mean(axis=0)
    per_column = {}
    for j, feature in enumerate(refs["gov"]["features"]):
        x = rows["gov"].copy()
        x[j] = means[j]
        per_column[feature] = scorers["gov"].score(x).tolist()
    return outputs, {"gov": per_column}


def test_an_older_nodes_per_column_answer_still_gives_one_reason_per_categorical(served) -> None:  # type: ignore[no-untyped-def]
    svc, _ = served
    model = svc.state.catalog.get(MODEL)
    outputs, occluded = _fruit_answers(svc)
    score = float(model.combine({p: np.array([v]) for p, v in outputs.items()})[0])

    reasons = model.explain(outputs, occluded, score=score)

    crops = [r for r in reasons if r.feature == "main_crop"]
    assert len(crops) == 1 and not [r for r in reasons if r.feature.startswith("main_crop_")]
    # Without the node naming the category, the phrase names none rather than a wrong one.
    assert crops[0].text == "unusual value of main crop"


def test_a_category_the_card_does_not_list_is_not_echoed(served) -> None:  # type: ignore[no-untyped-def]
    svc, _ = served
    model = svc.state.catalog.get(MODEL)
    outputs, occluded = _fruit_answers(svc)
    score = float(model.combine({p: np.array([v]) for p, v in outputs.items()})[0])
    levels = {"gov": {"main_crop": "<b>durian</b>"}}

    reasons = model.explain(outputs, occluded, score=score, levels=levels)

    assert all("durian" not in r.text for r in reasons)
    assert [r.text for r in reasons if r.feature == "main_crop"] == ["unusual value of main crop"]
