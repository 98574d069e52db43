"""Federation files: parsing, validation errors naming file and key, and round trips."""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from models.errors import FederationFileError, ModelsError
from models.federation import (
    NO_PRIVACY_WARNING,
    FederationSpec,
    PrivacyMode,
    dump_federation,
    load_federation,
)
from models.schema import FeatureSpec, TabularSchema

FEDERATION = """\
[federation]
name = "credit-homo"
model = "logistic"
mode = "horizontal"
privacy = "dp+he"
strategy = "fedavg"
rounds = 10
min_participants = 2
local_epochs = 1
batch_size = 64
learning_rate = 0.05
seed = 42
consent_purpose = "model_training"
consent_as_of = "2026-06-30T00:00:00Z"

[privacy.dp]
target_epsilon = 3.0
delta = 1e-5
max_grad_norm = 1.0
accountant = "rdp"

[privacy.he]
poly_modulus_degree = 8192
coeff_mod_bit_sizes = [60, 40, 40, 60]
global_scale_bits = 40

[schema]
id = "id"
label = "y"
features = [
  { name = "x0", type = "float", min = -10.0, max = 10.0 },
  { name = "x1", type = "int" },
]

[evaluation]
file = "test.csv"

[[participants]]
name = "guest"
file = "guest.csv"
categories = ["bank.transactions"]
consent_db = "bank/consent.db"

[[participants]]
name = "host"
file = "data/host.csv"
subject_column = "customer"
"""


def _write(tmp_path: Path, text: str = FEDERATION, name: str = "federation.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _edit(old: str, new: str, text: str = FEDERATION) -> str:
    assert old in text, f"test setup: {old!r} not in the federation text"
    return text.replace(old, new, 1)


def _load_error(tmp_path: Path, text: str) -> FederationFileError:
    path = _write(tmp_path, text)
    with pytest.raises(FederationFileError) as caught:
        load_federation(path)
    assert caught.value.file == str(path)
    assert str(caught.value).startswith(str(path))
    return caught.value


# --- a good file -----------------------------------------------------------------------


def test_parses_the_documented_example(tmp_path: Path) -> None:
    path = _write(tmp_path)

    spec = load_federation(path)

    assert spec.path == path.resolve()
    assert (spec.name, spec.model, spec.mode) == ("credit-homo", "logistic", "horizontal")
    assert spec.privacy is PrivacyMode.DP_HE
    assert (spec.strategy, spec.proximal_mu) == ("fedavg", None)
    assert (spec.rounds, spec.min_participants, spec.local_epochs) == (10, 2, 1)
    assert (spec.batch_size, spec.learning_rate, spec.seed) == (64, 0.05, 42)
    assert spec.hidden is None
    assert spec.consent_purpose == "model_training"
    assert spec.consent_as_of == datetime(2026, 6, 30, tzinfo=UTC)
    assert spec.warnings == ()


def test_privacy_sections_and_defaults(tmp_path: Path) -> None:
    spec = load_federation(_write(tmp_path))

    assert spec.dp is not None
    assert (spec.dp.target_epsilon, spec.dp.delta, spec.dp.max_grad_norm) == (3.0, 1e-5, 1.0)
    assert spec.dp.accountant == "rdp"
    assert spec.dp.budget_epsilon == 9.0  # default: three times the target
    assert spec.he.poly_modulus_degree == 8192
    assert spec.he.coeff_mod_bit_sizes == (60, 40, 40, 60)
    assert spec.he.global_scale_bits == 40
    assert spec.he.keys_dir == tmp_path.resolve() / "keys"


def test_paths_resolve_against_the_file_directory(tmp_path: Path) -> None:
    spec = load_federation(_write(tmp_path))
    base = tmp_path.resolve()

    guest, host = spec.participants
    assert guest.file == base / "guest.csv"
    assert guest.consent_db == base / "bank" / "consent.db"
    assert host.file == base / "data" / "host.csv"
    assert host.consent_db is None
    assert spec.evaluation_file == base / "test.csv"
    assert spec.output_dir == base / "runs"
    assert all(p.is_absolute() for p in (guest.file, host.file, spec.output_dir))


def test_participants_and_schema(tmp_path: Path) -> None:
    spec = load_federation(_write(tmp_path))

    guest, host = spec.participants
    assert guest.categories == ("bank.transactions",)
    assert host.categories == ()
    assert (guest.subject_column, host.subject_column) == (None, "customer")
    assert spec.schema == TabularSchema(
        id="id",
        label="y",
        features=(FeatureSpec("x0", "float", min=-10.0, max=10.0), FeatureSpec("x1", "int")),
    )
    assert spec.participant("host") is host


def test_unknown_participant_suggests_a_name(tmp_path: Path) -> None:
    spec = load_federation(_write(tmp_path))

    with pytest.raises(KeyError, match="did you mean 'guest'"):
        spec.participant("guets")


def test_participant_may_declare_its_own_schema(tmp_path: Path) -> None:
    declared = 'schema = { id = "id", label = "y", features = [{ name = "x0", type = "float" }] }'
    text = _edit('subject_column = "customer"\n', f'subject_column = "customer"\n{declared}\n')

    spec = load_federation(_write(tmp_path, text))

    host = spec.participant("host")
    assert host.schema is not None
    assert spec.schema is not None
    assert spec.schema.compare(host.schema) == [
        "range of 'x0' differs: [-10.0, 10.0] vs [-inf, inf]",
        "feature 'x1' missing",
    ]


def test_fedprox_gets_a_default_mu(tmp_path: Path) -> None:
    spec = load_federation(_write(tmp_path, _edit('strategy = "fedavg"', 'strategy = "fedprox"')))

    assert spec.proximal_mu == 0.01


def test_mlp_takes_hidden_sizes(tmp_path: Path) -> None:
    text = _edit('model = "logistic"', 'model = "mlp"\nhidden = [32, 16]')

    spec = load_federation(_write(tmp_path, text))

    assert spec.hidden == (32, 16)


def test_product_model_needs_no_schema(tmp_path: Path) -> None:
    start, end = FEDERATION.index("[schema]"), FEDERATION.index("[evaluation]")
    text = _edit('model = "logistic"', 'model = "iot_risk"', FEDERATION[:start] + FEDERATION[end:])

    spec = load_federation(_write(tmp_path, text))

    assert spec.schema is None


def test_privacy_none_is_allowed_but_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    start, end = FEDERATION.index("[privacy.dp]"), FEDERATION.index("[privacy.he]")
    text = _edit('privacy = "dp+he"', 'privacy = "none"', FEDERATION[:start] + FEDERATION[end:])

    spec = load_federation(_write(tmp_path, text))

    assert spec.dp is None
    assert spec.warnings == (NO_PRIVACY_WARNING,)
    assert NO_PRIVACY_WARNING == (
        "privacy mode 'none': the coordinator sees every participant's plain update"
    )
    assert NO_PRIVACY_WARNING in caplog.text


def test_unused_dp_section_is_warned(tmp_path: Path) -> None:
    spec = load_federation(_write(tmp_path, _edit('privacy = "dp+he"', 'privacy = "he"')))

    assert spec.dp is not None
    assert spec.warnings == ("[privacy.dp] is set but privacy mode he does not use DP",)


def test_toml_datetime_literal_is_accepted_and_converted_to_utc(tmp_path: Path) -> None:
    text = _edit('"2026-06-30T00:00:00Z"', "2026-06-30T08:00:00+08:00")

    spec = load_federation(_write(tmp_path, text))

    assert spec.consent_as_of == datetime(2026, 6, 30, tzinfo=UTC)
    assert spec.consent_as_of.tzinfo is UTC


@pytest.mark.parametrize(
    ("mode", "dp", "he"),
    [("none", False, False), ("dp", True, False), ("he", False, True), ("dp+he", True, True)],
)
def test_privacy_mode_helpers(mode: str, dp: bool, he: bool) -> None:
    assert (PrivacyMode(mode).uses_dp, PrivacyMode(mode).uses_he) == (dp, he)


# --- errors, one per key ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "key", "fragment"),
    [
        ('name = "credit-homo"', 'name = "credit homo"', "federation.name", "not a valid name"),
        ('name = "credit-homo"', "name = 7", "federation.name", "must be a string, got integer"),
        ('model = "logistic"', 'model = "logstic"', "federation.model", "did you mean 'logistic'"),
        ('mode = "horizontal"', 'mode = "vertical"', "federation.privacy",
         "vertical logistic regression uses 'he' (CKKS residuals) or 'none'"),
        ('mode = "horizontal"', 'mode = "diagonal"', "federation.mode",
         "must be one of horizontal"),
        ('privacy = "dp+he"', 'privacy = "dp+hee"', "federation.privacy", "did you mean 'dp+he'"),
        ('strategy = "fedavg"', 'strategy = "fedadamw"', "federation.strategy", "must be one of"),
        ('strategy = "fedavg"', 'strategy = "fedavg"\nproximal_mu = 0.1', "federation.proximal_mu",
         "applies only to strategy 'fedprox'"),
        ('strategy = "fedavg"', 'strategy = "fedprox"\nproximal_mu = 0', "federation.proximal_mu",
         "must be > 0"),
        ("rounds = 10", "rounds = 0", "federation.rounds", "must be >= 1, got 0"),
        ("rounds = 10", 'rounds = "10"', "federation.rounds", "must be an integer, got string"),
        ("rounds = 10", "rounds = 10.0", "federation.rounds", "must be an integer, got float"),
        ("rounds = 10", "rounds = true", "federation.rounds", "must be an integer, got boolean"),
        ("rounds = 10", "roundz = 10", "federation.roundz", "unknown key (did you mean 'rounds'?)"),
        ("min_participants = 2", "min_participants = 0", "federation.min_participants", ">= 1"),
        ("min_participants = 2", "min_participants = 3", "federation.min_participants",
         "is 3 but only 2 participant(s) are listed"),
        ("local_epochs = 1", "local_epochs = 0", "federation.local_epochs", ">= 1"),
        ("batch_size = 64", "batch_size = 0", "federation.batch_size", ">= 1"),
        ("learning_rate = 0.05", "learning_rate = 0", "federation.learning_rate", "must be > 0"),
        ("learning_rate = 0.05", "learning_rate = nan", "federation.learning_rate", "finite"),
        ("seed = 42", "seed = -1", "federation.seed", "must be >= 0"),
        ("seed = 42", "seed = 42\nhidden = [8]", "federation.hidden", "only to model 'mlp'"),
        ('consent_purpose = "model_training"', 'consent_purpose = ""', "federation.consent_purpose",
         "must not be empty"),
        ('"2026-06-30T00:00:00Z"', '"yesterday"', "federation.consent_as_of", "not an ISO-8601"),
        ('"2026-06-30T00:00:00Z"', '"2026-06-30T00:00:00"', "federation.consent_as_of",
         "UTC offset"),
        ('"2026-06-30T00:00:00Z"', "2026-06-30", "federation.consent_as_of", "UTC offset"),
    ],
)  # fmt: skip
def test_federation_key_errors(tmp_path: Path, old: str, new: str, key: str, fragment: str) -> None:
    error = _load_error(tmp_path, _edit(old, new))

    assert error.key == key
    assert f": {key}: " in str(error)
    assert fragment in str(error)


@pytest.mark.parametrize(
    ("old", "new", "key", "fragment"),
    [
        ("target_epsilon = 3.0", "target_epsilon = 0", "privacy.dp.target_epsilon", "must be > 0"),
        ("target_epsilon = 3.0", "target_epsilon = -1.0", "privacy.dp.target_epsilon", "> 0"),
        ("target_epsilon = 3.0", "", "privacy.dp.target_epsilon", "missing (required)"),
        ("target_epsilon = 3.0", "target_epsilion = 3.0", "privacy.dp.target_epsilion",
         "did you mean 'target_epsilon'"),
        ("delta = 1e-5", "delta = 1.5", "privacy.dp.delta", "must be < 1"),
        ("delta = 1e-5", "delta = 0.0", "privacy.dp.delta", "must be > 0"),
        ("max_grad_norm = 1.0", "max_grad_norm = 0", "privacy.dp.max_grad_norm", "must be > 0"),
        ('accountant = "rdp"', 'accountant = "gdp"', "privacy.dp.accountant", "one of rdp, prv"),
        ('accountant = "rdp"', 'accountant = "rdp"\nbudget_epsilon = 1.0',
         "privacy.dp.budget_epsilon", "1.0 is below target_epsilon 3.0"),
        ("poly_modulus_degree = 8192", "poly_modulus_degree = 3000",
         "privacy.he.poly_modulus_degree", "must be one of 1024, 2048"),
        ("[60, 40, 40, 60]", "[60, 60, 60, 60]", "privacy.he.coeff_mod_bit_sizes",
         "total 240 bits exceeds 218 allowed"),
        ("[60, 40, 40, 60]", "[60, 40.5]", "privacy.he.coeff_mod_bit_sizes", "array of integers"),
        ("[60, 40, 40, 60]", "[60]", "privacy.he.coeff_mod_bit_sizes", "needs >= 2 sizes"),
        ("global_scale_bits = 40", "global_scale_bits = 70", "privacy.he.global_scale_bits",
         "must be <= 60"),
        ("global_scale_bits = 40", "global_scale_bits = 40\nkeys_dir = 5", "privacy.he.keys_dir",
         "must be a string"),
        ("[privacy.he]", "[privacy.hee]", "privacy.hee", "did you mean 'he'"),
    ],
)  # fmt: skip
def test_privacy_key_errors(tmp_path: Path, old: str, new: str, key: str, fragment: str) -> None:
    error = _load_error(tmp_path, _edit(old, new))

    assert error.key == key
    assert fragment in str(error)


def test_dp_section_is_required_for_dp_modes(tmp_path: Path) -> None:
    start, end = FEDERATION.index("[privacy.dp]"), FEDERATION.index("[privacy.he]")

    error = _load_error(tmp_path, FEDERATION[:start] + FEDERATION[end:])

    assert error.key == "privacy.dp"
    assert "required when privacy is dp+he" in str(error)


@pytest.mark.parametrize(
    ("old", "new", "key", "fragment"),
    [
        ('label = "y"', 'lable = "y"', "schema.lable", "did you mean 'label'"),
        ('{ name = "x1", type = "int" }', '{ name = "x1", type = "flaot" }', "schema.features[1]",
         "did you mean 'float'"),
        ("min = -10.0, max = 10.0", "min = 10.0, max = -10.0", "schema.features[0]",
         "min 10.0 is above max -10.0"),
        ('{ name = "x1", type = "int" }', '{ name = "x0", type = "int" }', "schema",
         "'x0' appears twice"),
        ('file = "test.csv"', 'path = "test.csv"', "evaluation.path", "unknown key"),
        ('file = "test.csv"', "file = 1", "evaluation.file", "must be a string"),
        ("[evaluation]", "[evaluaton]", "evaluaton", "did you mean 'evaluation'"),
    ],
)  # fmt: skip
def test_schema_and_section_key_errors(
    tmp_path: Path, old: str, new: str, key: str, fragment: str
) -> None:
    error = _load_error(tmp_path, _edit(old, new))

    assert error.key == key
    assert fragment in str(error)


def test_generic_model_needs_a_schema(tmp_path: Path) -> None:
    start, end = FEDERATION.index("[schema]"), FEDERATION.index("[evaluation]")

    error = _load_error(tmp_path, FEDERATION[:start] + FEDERATION[end:])

    assert error.key == "schema"
    assert "model 'logistic' needs a [schema] table" in str(error)


@pytest.mark.parametrize(
    ("old", "new", "key", "fragment"),
    [
        ('name = "host"', 'name = "guest"', "participants[1].name",
         "duplicate participant name 'guest'"),
        ('name = "host"', 'name = "host/1"', "participants[1].name", "not a valid name"),
        ('file = "data/host.csv"', "", "participants[1].file", "missing (required)"),
        ('file = "data/host.csv"', 'fiel = "data/host.csv"', "participants[1].fiel",
         "did you mean 'file'"),
        ('categories = ["bank.transactions"]', 'categories = "bank.transactions"',
         "participants[0].categories", "must be an array of strings, got string"),
        ('categories = ["bank.transactions"]', 'categories = ["bank", ""]',
         "participants[0].categories", "non-empty strings"),
        ('consent_db = "bank/consent.db"', "consent_db = true", "participants[0].consent_db",
         "must be a string, got boolean"),
        ('subject_column = "customer"', 'subject_column = "customer"\nschema = { id = "id" }',
         "participants[1].schema.features", "non-empty list"),
        ('subject_column = "customer"', 'subject_column = "customer"\nschema = "x"',
         "participants[1].schema", "must be a table"),
    ],
)  # fmt: skip
def test_participant_key_errors(
    tmp_path: Path, old: str, new: str, key: str, fragment: str
) -> None:
    error = _load_error(tmp_path, _edit(old, new))

    assert error.key == key
    assert fragment in str(error)


def test_file_level_errors(tmp_path: Path) -> None:
    no_participants = FEDERATION[: FEDERATION.index("[[participants]]")]
    no_federation = FEDERATION[FEDERATION.index("[privacy.dp]") :]
    cases = [
        (no_participants, "participants", "add at least one [[participants]]"),
        (no_federation, "federation", "missing table [federation]"),
        (FEDERATION + "\n[federation\n", None, "not valid TOML"),
        ("participants = 3\n" + no_participants, "participants", "non-empty array of tables"),
        ("participants = []\n" + no_participants, "participants", "non-empty array of tables"),
        ("title = 'x'\n" + FEDERATION, "title", "unknown key"),
    ]
    for text, key, fragment in cases:
        error = _load_error(tmp_path, text)
        assert (error.key, fragment in str(error)) == (key, True), str(error)


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    with pytest.raises(FederationFileError, match="file not found") as caught:
        load_federation(path)

    assert str(path) in str(caught.value)


def test_errors_belong_to_the_package_and_to_value_error() -> None:
    assert issubclass(FederationFileError, ModelsError)
    assert issubclass(FederationFileError, ValueError)


# --- round trips -----------------------------------------------------------------------


def _round_trip(tmp_path: Path, spec: FederationSpec) -> FederationSpec:
    copy = tmp_path / "elsewhere" / "copy.toml"
    copy.parent.mkdir(exist_ok=True)
    copy.write_text(dump_federation(spec), encoding="utf-8")
    return load_federation(copy)


@pytest.mark.parametrize(
    "edits",
    [
        [],
        [('strategy = "fedavg"', 'strategy = "fedprox"\nproximal_mu = 0.5')],
        [('model = "logistic"', 'model = "mlp"\nhidden = [32, 16]')],
        [('privacy = "dp+he"', 'privacy = "none"'), ('consent_as_of = "2026-06-30T00:00:00Z"', "")],
        [('subject_column = "customer"', 'subject_column = "customer"\n'
          'schema = { id = "id", features = [{ name = "x0", type = "bool" }] }')],
        [('categories = ["bank.transactions"]', 'categories = ["quote\\"d", "tab\\t", "粮食"]')],
    ],
    ids=["example", "fedprox", "mlp", "no-privacy", "participant-schema", "escapes"],
)  # fmt: skip
def test_dump_then_load_gives_the_same_spec(tmp_path: Path, edits: list[tuple[str, str]]) -> None:
    text = FEDERATION
    for old, new in edits:
        text = _edit(old, new, text)
    spec = load_federation(_write(tmp_path, text))

    again = _round_trip(tmp_path, spec)

    assert replace(again, path=spec.path) == spec


def test_dump_is_valid_toml_with_absolute_paths(tmp_path: Path) -> None:
    spec = load_federation(_write(tmp_path))

    data = tomllib.loads(dump_federation(spec))

    assert data["participants"][0]["file"] == str(tmp_path.resolve() / "guest.csv")
    assert data["privacy"]["he"]["keys_dir"] == str(tmp_path.resolve() / "keys")
    assert data["federation"]["consent_as_of"] == "2026-06-30T00:00:00Z"


def test_to_dict_is_json_serialisable_with_string_paths(tmp_path: Path) -> None:
    spec = load_federation(_write(tmp_path))

    data = json.loads(json.dumps(spec.to_dict()))

    assert data["federation"]["privacy"] == "dp+he"
    assert data["privacy"]["dp"]["budget_epsilon"] == 9.0
    assert data["output"]["dir"] == str(tmp_path.resolve() / "runs")
    assert data["schema"] == spec.schema.to_dict() if spec.schema else False
    assert "proximal_mu" not in data["federation"]


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["federation.toml", "split-federation.toml"])
def test_the_vertical_examples_load(name: str) -> None:
    spec = load_federation(Path(__file__).parents[2] / "examples" / "credit-hetero" / name)

    assert spec.vertical is not None and spec.vertical.guest == "guest"
    expected = "split-nn" if name.startswith("split") else "logistic-regression"
    assert spec.vertical.protocol == expected
