"""Loading tables against a schema: every failure names file, row and column.

Row numbers follow DataError's convention: the header is row 1, so the first data row is
row 2 (the CSV line number).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from models.errors import DataError, SchemaError
from models.schema import FeatureSpec, TabularSchema
from models.tabular import TabularData, infer_schema, load_table, write_table

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
HOMO_GUEST = SHARED_DATA / "credit" / "default_credit_homo_guest.csv"
HEADER = "id,y,a,b,c"


def _schema(*, label: str | None = "y") -> TabularSchema:
    return TabularSchema(
        id="id",
        label=label,
        features=(
            FeatureSpec(name="a", type="float", min=-10.0, max=10.0),
            FeatureSpec(name="b", type="int", min=0, max=100),
            FeatureSpec(name="c", type="bool"),
        ),
    )


def _csv(tmp_path: Path, *rows: str, header: str = HEADER, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _good_rows() -> list[str]:
    return ["1,0,0.5,3,true", "2,1,-1.25,7,0", "3,0,9.5,0,False"]


def _load_error(path: Path, schema: TabularSchema | None = None) -> DataError:
    with pytest.raises(DataError) as caught:
        load_table(path, schema or _schema())
    return caught.value


def _assert_names(error: DataError, path: Path, row: int | None, column: str | None) -> None:
    message = str(error)
    assert (error.file, error.row, error.column) == (str(path), row, column)
    assert message.startswith(str(path))
    if row is not None:
        assert f"row {row}" in message
    if column is not None:
        assert f"column {column!r}" in message


# --- good files ------------------------------------------------------------------------


def test_loads_csv_in_schema_order_ignoring_extra_columns(tmp_path: Path) -> None:
    path = _csv(tmp_path, "x,3,true,1,0.5,0", "z,7,0,0,-1.25,1", header="extra,b,c,id,a,y")

    data = load_table(path, _schema())

    assert data.ids.tolist() == ["1", "0"]
    assert data.features.dtype == np.float32
    np.testing.assert_array_equal(data.features, [[0.5, 3, 1], [-1.25, 7, 0]])
    assert data.labels is not None
    assert data.labels.dtype == np.float32
    np.testing.assert_array_equal(data.labels, [0, 1])
    assert data.source == str(path)
    assert len(data) == data.n_rows == 2


def test_ids_are_strings_that_keep_leading_zeros(tmp_path: Path) -> None:
    path = _csv(tmp_path, "007,0,1,1,1", "0070,1,1,1,1")

    data = load_table(path, _schema())

    assert data.ids.tolist() == ["007", "0070"]


def test_bool_column_accepts_0_1_true_false_in_any_case(tmp_path: Path) -> None:
    path = _csv(tmp_path, "1,0,1,1,TRUE", "2,0,1,1,false", "3,0,1,1,1", "4,0,1,1,0.0")

    data = load_table(path, _schema())

    np.testing.assert_array_equal(data.features[:, 2], [1, 0, 1, 0])


def test_label_is_optional_when_not_required(tmp_path: Path) -> None:
    path = _csv(tmp_path, "1,0.5,3,1", header="id,a,b,c")

    data = load_table(path, _schema(), require_label=False)

    assert data.labels is None


def test_require_label_with_unlabelled_schema_is_a_schema_error(tmp_path: Path) -> None:
    path = _csv(tmp_path, *_good_rows())

    with pytest.raises(SchemaError, match="no label column"):
        load_table(path, _schema(label=None))


def test_loads_parquet(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pd.DataFrame({"id": [10, 11], "y": [1, 0], "a": [0.5, 1.5], "b": [1, 2],
                  "c": [True, False]}).to_parquet(path)  # fmt: skip

    data = load_table(path, _schema())

    assert data.ids.tolist() == ["10", "11"]
    np.testing.assert_array_equal(data.features, [[0.5, 1, 1], [1.5, 2, 0]])


# --- file-level errors -----------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"

    error = _load_error(path)

    _assert_names(error, path, None, None)
    assert "file not found" in str(error)


@pytest.mark.parametrize("name", ["t.csv", "t.parquet"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")

    error = _load_error(path)

    _assert_names(error, path, None, None)
    assert "file is empty" in str(error)


def test_header_without_rows(tmp_path: Path) -> None:
    path = _csv(tmp_path)

    error = _load_error(path)

    assert "no data rows" in str(error)


def test_unsupported_suffix(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    path.write_text("id\n1\n")

    error = _load_error(path)

    _assert_names(error, path, None, None)
    assert "unsupported file type '.xlsx'" in str(error)


def test_unreadable_parquet(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    path.write_bytes(b"not parquet at all")

    error = _load_error(path)

    assert "not a readable Parquet file" in str(error)


def test_missing_columns_are_all_named_at_the_header_row(tmp_path: Path) -> None:
    path = _csv(tmp_path, "1,0.5", header="id,a")

    error = _load_error(path)

    _assert_names(error, path, 1, None)
    assert "missing columns 'y', 'b', 'c'" in str(error)


def test_duplicate_header_column(tmp_path: Path) -> None:
    path = _csv(tmp_path, "1,0,1,1,1,1", header="id,y,a,b,c,a")

    error = _load_error(path)

    _assert_names(error, path, 1, "a")
    assert "appears twice" in str(error)


def test_undecodable_bytes_name_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"id,y,a,b,c\n1,0,1,1,1\n2,0,1,\xff\xfe,1\n")

    error = _load_error(path)

    _assert_names(error, path, 3, "b")
    assert "not valid UTF-8" in str(error)


def test_ragged_row_names_the_line(tmp_path: Path) -> None:
    path = _csv(tmp_path, "1,0,1,1,1", "2,0,1,1,1", "3,0,1,1,1,9")

    error = _load_error(path)

    _assert_names(error, path, 4, None)
    assert "row has 6 fields but the header has 5" in str(error)


def test_blank_line_names_the_line(tmp_path: Path) -> None:
    path = _csv(tmp_path, "1,0,1,1,1", "", "3,0,1,1,1")

    error = _load_error(path)

    _assert_names(error, path, 3, None)
    assert "blank line" in str(error)


# --- cell-level errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "column", "fragment"),
    [
        ("2,0,abc,1,1", "a", "value 'abc' is not a float"),
        ("2,0,,1,1", "a", "missing value (empty cell or NaN)"),
        ("2,0,NaN,1,1", "a", "missing value"),
        ("2,0,1,1,", "c", "missing value"),
        ("2,0,inf,1,1", "a", "value inf is not finite"),
        ("2,0,-inf,1,1", "a", "value -inf is not finite"),
        ("2,0,-10.5,1,1", "a", "value -10.5 is below the minimum -10.0"),
        ("2,0,11,1,1", "a", "value 11.0 is above the maximum 10.0"),
        ("2,0,1,2.5,1", "b", "value 2.5 is not an integer"),
        ("2,0,1,x,1", "b", "value 'x' is not an integer"),
        ("2,0,1,101,1", "b", "above the maximum 100.0"),
        ("2,0,1,1,yes", "c", "value 'yes' is not a bool (expected 0, 1, true or false)"),
        ("2,0,1,1,2", "c", "value '2' is not a bool"),
        ("2,2,1,1,1", "y", "label '2' is not 0 or 1"),
        ("2,maybe,1,1,1", "y", "label 'maybe' is not 0 or 1"),
        ("2,,1,1,1", "y", "missing label"),
        (",0,1,1,1", "id", "missing id"),
    ],
)
def test_bad_cell_names_file_row_and_column(
    tmp_path: Path, row: str, column: str, fragment: str
) -> None:
    path = _csv(tmp_path, "1,0,1,1,1", row, "3,0,1,1,1")

    error = _load_error(path)

    _assert_names(error, path, 3, column)
    assert fragment in str(error)


def test_non_numeric_message_reads_naturally(tmp_path: Path) -> None:
    path = _csv(tmp_path, "1,0,1,1,1", "2,0,abc,1,1", name="indicators.csv")

    error = _load_error(path)

    assert str(error) == f"{path}, row 3, column 'a': value 'abc' is not a float"


def test_float_too_large_for_float32(tmp_path: Path) -> None:
    schema = TabularSchema(id="id", label=None, features=(FeatureSpec(name="a", type="float"),))
    path = _csv(tmp_path, "1,1e39", header="id,a")

    with pytest.raises(DataError, match="does not fit in float32") as caught:
        load_table(path, schema, require_label=False)

    _assert_names(caught.value, path, 2, "a")


def test_duplicate_id_names_both_rows_but_not_the_id(tmp_path: Path) -> None:
    path = _csv(tmp_path, "s-41,0,1,1,1", "s-42,0,1,1,1", "s-41,1,1,1,1")

    error = _load_error(path)

    _assert_names(error, path, 4, "id")
    assert "same id as row 2" in str(error)
    assert "s-41" not in str(error)


def test_earliest_row_wins_across_columns(tmp_path: Path) -> None:
    path = _csv(tmp_path, "1,0,1,1,1", "2,0,1,1,yes", "3,0,abc,1,1")

    error = _load_error(path)

    _assert_names(error, path, 3, "c")


def test_parquet_rows_are_numbered_like_csv_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pd.DataFrame({"id": ["1", "2", "3"], "y": [0, 1, 0], "a": [1.0, 2.0, 99.0],
                  "b": [1, 2, 3], "c": [1, 0, 1]}).to_parquet(path)  # fmt: skip

    error = _load_error(path)

    _assert_names(error, path, 4, "a")
    assert "above the maximum" in str(error)


def test_parquet_missing_and_text_values(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pd.DataFrame({"id": ["1", "2"], "y": [0, 1], "a": ["1.5", "oops"], "b": [1, 2],
                  "c": [1, 0]}).to_parquet(path)  # fmt: skip

    error = _load_error(path)

    _assert_names(error, path, 3, "a")
    assert "value 'oops' is not a float" in str(error)


# --- TabularData -----------------------------------------------------------------------


def _data(tmp_path: Path) -> TabularData:
    return load_table(_csv(tmp_path, *_good_rows()), _schema())


def test_subset_by_mask_and_by_positions(tmp_path: Path) -> None:
    data = _data(tmp_path)

    by_mask = data.subset(np.array([True, False, True]))
    by_index = data.subset([2])

    assert by_mask.ids.tolist() == ["1", "3"]
    assert by_mask.labels is not None
    assert by_mask.labels.tolist() == [0, 0]
    assert by_index.features.tolist() == [[9.5, 0, 0]]
    assert data.subset(np.zeros(3, dtype=bool)).n_rows == 0


def test_subset_rejects_a_mask_of_the_wrong_length(tmp_path: Path) -> None:
    data = _data(tmp_path)

    with pytest.raises(DataError, match="mask has shape"):
        data.subset(np.array([True, False]))


def test_tabular_data_checks_shapes() -> None:
    with pytest.raises(DataError, match="features have shape"):
        TabularData(ids=np.array(["1"]), features=np.zeros((1, 2), np.float32), labels=None,
                    source="mem", schema=_schema())  # fmt: skip


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_table_round_trips(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(7)
    n = 50
    columns = {
        "id": [f"0{i}" for i in range(n)],
        "y": rng.integers(0, 2, n),
        "a": rng.uniform(-10, 10, n),
        "b": rng.integers(0, 100, n),
        "c": rng.integers(0, 2, n),
    }
    source = tmp_path / "source.csv"
    pd.DataFrame(columns).to_csv(source, index=False)
    data = load_table(source, _schema())
    target = tmp_path / f"copy{suffix}"

    write_table(target, data)
    again = load_table(target, _schema())

    assert again.ids.tolist() == data.ids.tolist()
    np.testing.assert_array_equal(again.features, data.features)
    assert again.labels is not None and data.labels is not None
    np.testing.assert_array_equal(again.labels, data.labels)


def test_write_table_refuses_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unsupported file type"):
        write_table(tmp_path / "t.json", _data(tmp_path))


# --- infer_schema ----------------------------------------------------------------------


def test_infer_schema_proposes_float_features_with_observed_ranges(tmp_path: Path) -> None:
    path = _csv(tmp_path, "1,0,0.5,3,1", "2,1,-2.0,7,0", header="id,y,a,b,c")

    schema = infer_schema(path, id_column="id", label_column="y")

    assert schema.id == "id"
    assert schema.label == "y"
    assert schema.features == (
        FeatureSpec(name="a", type="float", min=-2.0, max=0.5),
        FeatureSpec(name="b", type="float", min=3.0, max=7.0),
        FeatureSpec(name="c", type="float", min=0.0, max=1.0),
    )
    assert load_table(path, schema).n_rows == 2


def test_infer_schema_without_ranges_or_label(tmp_path: Path) -> None:
    path = _csv(tmp_path, "1,0.5", header="id,a")

    schema = infer_schema(path, id_column="id", label_column=None, ranges=False)

    assert schema.features == (FeatureSpec(name="a", type="float"),)
    assert schema.label is None


def test_infer_schema_refuses_text_columns(tmp_path: Path) -> None:
    path = _csv(tmp_path, "1,0,0.5,north", "2,1,0.7,south", header="id,y,a,region")

    with pytest.raises(DataError, match="not numeric") as caught:
        infer_schema(path, id_column="id", label_column="y")

    _assert_names(caught.value, path, 2, "region")


def test_infer_schema_needs_the_id_column(tmp_path: Path) -> None:
    path = _csv(tmp_path, "1,0.5", header="key,a")

    with pytest.raises(DataError, match="not in the header") as caught:
        infer_schema(path, id_column="id", label_column=None)

    _assert_names(caught.value, path, 1, "id")


# --- speed -----------------------------------------------------------------------------


def test_loads_100k_rows_quickly(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 100_000
    frame = pd.DataFrame(rng.normal(size=(n, 22)), columns=[f"x{i}" for i in range(22)])
    frame.insert(0, "y", rng.integers(0, 2, n))
    frame.insert(0, "id", np.arange(n))
    path = tmp_path / "big.csv"
    pa_csv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), path)  # fast writer
    schema = infer_schema(path, id_column="id", label_column="y")

    started = time.perf_counter()
    data = load_table(path, schema)
    elapsed = time.perf_counter() - started

    assert data.features.shape == (n, 22)
    # About 0.2 s on a 2-core machine; the bound leaves room for slow CI runners.
    assert elapsed < 3.0


# --- real data -------------------------------------------------------------------------


def _need_shared_data() -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is missing (see ../shared/data/README.md)")


@pytest.mark.shared_data
def test_real_homo_guest_loads_with_an_inferred_schema() -> None:
    _need_shared_data()

    schema = infer_schema(HOMO_GUEST, id_column="id", label_column="y")
    data = load_table(HOMO_GUEST, schema)

    assert schema.feature_names == tuple(f"x{i}" for i in range(23))
    assert data.features.shape == (8000, 23)
    assert data.labels is not None
    assert set(np.unique(data.labels).tolist()) == {0.0, 1.0}
    assert len(set(data.ids.tolist())) == 8000


@pytest.mark.shared_data
def test_real_homo_test_set_fails_observed_ranges_with_a_precise_message() -> None:
    _need_shared_data()
    schema = infer_schema(HOMO_GUEST, id_column="id", label_column="y")
    test_file = HOMO_GUEST.with_name("default_credit_homo_test.csv")

    with pytest.raises(DataError) as caught:
        load_table(test_file, schema)

    error = caught.value
    assert error.file == str(test_file)
    assert error.row is not None and error.row >= 2
    assert error.column in schema.feature_names
    assert "minimum" in error.reason or "maximum" in error.reason
