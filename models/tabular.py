"""Loading participant tables (CSV or Parquet) against a :class:`TabularSchema`.

Every check is vectorised: each column yields the index of its first offending cell
(``numpy.argmax`` over a boolean mask) and the earliest offence in the file is reported as
one :class:`DataError` naming the file, the row and the column. Row numbers follow
:class:`DataError`'s convention: the header is row 1, the first data row is row 2.
"""

from __future__ import annotations

import csv
import logging
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from models.errors import DataError, SchemaError
from models.schema import FeatureSpec, TabularSchema

__all__ = ["SUPPORTED_SUFFIXES", "TabularData", "infer_schema", "load_table", "write_table"]

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES: Final = (".csv", ".parquet")
#: Cell texts read as missing values in CSV files (the id column treats only "" so).
_NA_TEXTS: Final = (
    "",
    "NA",
    "N/A",
    "n/a",
    "NaN",
    "nan",
    "-NaN",
    "-nan",
    "NULL",
    "null",
    "None",
    "#N/A",
    "<NA>",
)
_BOOL_TEXTS: Final = {"0": 0.0, "1": 1.0, "0.0": 0.0, "1.0": 1.0, "false": 0.0, "true": 1.0}
_HEADER_ROWS: Final = 1
_CSV_LINE = re.compile(r"line (\d+)")


@dataclass(frozen=True, eq=False)
class TabularData:
    """A validated table: ids, a float32 feature matrix in schema order, optional labels.

    ``labels`` holds float32 zeros and ones, or is ``None`` for tables without labels.
    ``source`` names where the rows came from (the file path) for messages and cards.
    The arrays are shared, not copied: treat them as read-only.
    """

    ids: np.ndarray
    features: np.ndarray
    labels: np.ndarray | None
    source: str
    schema: TabularSchema

    def __post_init__(self) -> None:
        n = len(self.ids)
        expected = (n, len(self.schema.features))
        if self.features.shape != expected:
            raise DataError(
                file=self.source,
                row=None,
                column=None,
                reason=f"features have shape {self.features.shape}, expected {expected}",
            )
        if self.labels is not None and self.labels.shape != (n,):
            raise DataError(
                file=self.source,
                row=None,
                column=None,
                reason=f"labels have shape {self.labels.shape}, expected ({n},)",
            )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return len(self.ids)

    def subset(self, mask: np.ndarray | Sequence[bool] | Sequence[int]) -> TabularData:
        """Rows selected by a boolean mask of length ``n_rows`` or by integer positions."""
        index = np.asarray(mask)
        if index.dtype == bool and index.shape != (self.n_rows,):
            raise DataError(
                file=self.source,
                row=None,
                column=None,
                reason=f"mask has shape {index.shape}, expected ({self.n_rows},)",
            )
        if index.dtype != bool and index.size and not np.issubdtype(index.dtype, np.integer):
            raise DataError(
                file=self.source,
                row=None,
                column=None,
                reason=f"subset takes a bool mask or int positions, got {index.dtype}",
            )
        if index.size == 0:
            index = np.zeros(0, dtype=np.intp)
        return TabularData(
            ids=self.ids[index],
            features=self.features[index],
            labels=None if self.labels is None else self.labels[index],
            source=self.source,
            schema=self.schema,
        )


@dataclass(frozen=True)
class _Issue:
    index: int
    column: str | None
    reason: str


def load_table(path: Path, schema: TabularSchema, *, require_label: bool = True) -> TabularData:
    """Read and validate a CSV or Parquet table (chosen by suffix) against ``schema``.

    Extra columns are ignored. The label column is read whenever the schema names one
    and the file holds it; ``require_label`` makes its absence an error. Raises
    :class:`DataError` for the first problem found, naming file, row and column.
    """
    path = Path(path)
    started = time.perf_counter()
    if require_label and schema.label is None:
        raise SchemaError("require_label=True but the schema has no label column")
    header = _read_header(path)
    wanted = [schema.id, *([schema.label] if schema.label else []), *schema.feature_names]
    missing = [c for c in wanted if c not in header and (c != schema.label or require_label)]
    if missing:
        raise DataError(
            file=str(path),
            row=_HEADER_ROWS,
            column=None,
            reason="missing columns " + ", ".join(repr(c) for c in missing),
        )
    extra = [c for c in header if c not in wanted]
    if extra:
        logger.debug("%s: ignoring %d extra columns", path, len(extra))
    present = [c for c in wanted if c in header]
    frame = _read_frame(path, header, id_column=schema.id, columns=present)
    if frame.empty:
        raise DataError(
            file=str(path), row=None, column=None, reason="file has a header but no data rows"
        )
    has_label = schema.label is not None and schema.label in frame.columns
    issues: list[_Issue | None] = []
    if path.suffix.lower() == ".csv":  # blank lines first: they would read as missing ids
        blank = frame.isna().to_numpy().all(axis=1)
        issues.append(_earliest(None, [(blank, lambda i: "blank line")]))
    ids, id_issue = _ids(frame[schema.id], schema.id)
    issues.append(id_issue)
    labels = None
    if has_label and schema.label is not None:
        labels, issue = _labels(frame[schema.label], schema.label)
        issues.append(issue)
    features = np.empty((len(frame), len(schema.features)), dtype=np.float32)
    for j, spec in enumerate(schema.features):
        values, issue = _feature(frame[spec.name], spec)
        features[:, j] = values
        issues.append(issue)
    _raise_first(path, [i for i in issues if i is not None])
    logger.info(
        "loaded %d rows x %d features from %s in %.3f s",
        len(ids),
        features.shape[1],
        path,
        time.perf_counter() - started,
    )
    return TabularData(ids=ids, features=features, labels=labels, source=str(path), schema=schema)


def infer_schema(
    path: Path, *, id_column: str, label_column: str | None, ranges: bool = True
) -> TabularSchema:
    """Propose a schema for a table: every other column a ``float`` feature.

    Ranges are the observed minimum and maximum (finite values only) when ``ranges``
    is true; widen them by hand before using the schema on data not seen here.
    Non-numeric columns are refused rather than silently dropped.
    """
    path = Path(path)
    header = _read_header(path)
    for column in (id_column, label_column):
        if column is not None and column not in header:
            raise DataError(
                file=str(path), row=_HEADER_ROWS, column=column, reason="column not in the header"
            )
    frame = _read_frame(path, header, id_column=id_column)
    specs = []
    for name in header:
        if name in (id_column, label_column):
            continue
        values, bad, _ = _numeric(frame[name])
        if (index := _first(bad)) is not None:
            raise DataError(
                file=str(path),
                row=index + _HEADER_ROWS + 1,
                column=name,
                reason=f"value {_show(frame[name].iloc[index])} is not numeric; "
                "drop or encode this column before inferring a schema",
            )
        finite = values[np.isfinite(values)]
        low, high = (
            (float(finite.min()), float(finite.max())) if ranges and finite.size else (None, None)
        )
        specs.append(FeatureSpec(name=name, type="float", min=low, max=high))
    return TabularSchema(id=id_column, label=label_column, features=tuple(specs))


def write_table(path: Path, data: TabularData) -> None:
    """Write ``data`` as CSV or Parquet (by suffix) with the schema's column names.

    Int and bool features are written as integers, labels as 0/1; floats are written so
    that :func:`load_table` reads back the same float32 values.
    """
    path = Path(path)
    suffix = _check_suffix(path)
    columns: dict[str, np.ndarray] = {data.schema.id: data.ids.astype(str)}
    if data.labels is not None and data.schema.label is not None:
        columns[data.schema.label] = data.labels.astype(np.int8)
    for j, spec in enumerate(data.schema.features):
        column = data.features[:, j]
        columns[spec.name] = column if spec.type == "float" else column.astype(np.int64)
    frame = pd.DataFrame(columns)
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    logger.info("wrote %d rows to %s", len(frame), path)


# --- reading ---------------------------------------------------------------------------


def _check_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DataError(
            file=str(path),
            row=None,
            column=None,
            reason=f"unsupported file type {path.suffix!r}; use " + " or ".join(SUPPORTED_SUFFIXES),
        )
    return suffix


def _read_header(path: Path) -> list[str]:
    """Column names in file order; checks suffix, existence, emptiness and duplicates."""
    suffix = _check_suffix(path)
    if not path.is_file():
        raise DataError(file=str(path), row=None, column=None, reason="file not found")
    if path.stat().st_size == 0:
        raise DataError(file=str(path), row=None, column=None, reason="file is empty")
    if suffix == ".csv":
        try:
            with path.open(encoding="utf-8-sig", newline="") as handle:
                header = next(csv.reader(handle), [])
        except UnicodeDecodeError as exc:
            raise _decode_error(path) from exc
    else:
        try:
            names = pq.read_schema(path).names
            header = [name for name in names if not name.startswith("__index_level_")]
        except (pa.ArrowException, OSError) as exc:
            raise DataError(
                file=str(path), row=None, column=None, reason=f"not a readable Parquet file ({exc})"
            ) from exc
    if not header or header == [""]:
        raise DataError(file=str(path), row=None, column=None, reason="file is empty")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(
                file=str(path),
                row=_HEADER_ROWS,
                column=name,
                reason="column appears twice in the header",
            )
        seen.add(name)
    return header


def _read_frame(
    path: Path, header: list[str], *, id_column: str, columns: list[str] | None = None
) -> pd.DataFrame:
    """The table's cells; Parquet reads only ``columns`` (CSV reads all to catch ragged rows)."""
    if path.suffix.lower() != ".csv":
        try:
            return pd.read_parquet(path, columns=columns)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(
                file=str(path), row=None, column=None, reason=f"not a readable Parquet file ({exc})"
            ) from exc
    na_values = {name: (list(_NA_TEXTS) if name != id_column else [""]) for name in header}
    try:
        with warnings.catch_warnings():  # mixed-type chunks are sorted out by the checks
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            return pd.read_csv(
                path,
                encoding="utf-8",
                dtype={id_column: str},
                keep_default_na=False,
                na_values=na_values,
                skip_blank_lines=False,
            )
    except UnicodeDecodeError as exc:
        raise _decode_error(path) from exc
    except pd.errors.ParserError as exc:
        raise _parser_error(path, exc) from exc


def _parser_error(path: Path, exc: pd.errors.ParserError) -> DataError:
    message = str(exc).strip()
    found = _CSV_LINE.search(message)
    fields = re.search(r"Expected (\d+) fields in line \d+, saw (\d+)", message)
    if fields:
        reason = f"row has {fields.group(2)} fields but the header has {fields.group(1)}"
    else:
        reason = f"cannot parse CSV ({message.removeprefix('Error tokenizing data. ')})"
    row = int(found.group(1)) if found else None
    return DataError(file=str(path), row=row, column=None, reason=reason)


def _decode_error(path: Path) -> DataError:
    """Locate the first byte that is not UTF-8 (only runs on the error path)."""
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        first_line = raw.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace")
        header = next(csv.reader([first_line]), [])
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        field = raw.count(b",", line_start, exc.start)
        return DataError(
            file=str(path),
            row=raw.count(b"\n", 0, exc.start) + 1,
            column=header[field] if field < len(header) else None,
            reason=f"byte 0x{raw[exc.start]:02x} is not valid UTF-8; save the file as UTF-8",
        )
    return DataError(file=str(path), row=None, column=None, reason="file is not valid UTF-8")


# --- validation ------------------------------------------------------------------------


def _first(mask: np.ndarray) -> int | None:
    if not mask.size:
        return None
    index = int(np.argmax(mask))
    return index if mask[index] else None


def _show(value: object) -> str:
    text = str(value)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _earliest(
    column: str | None, checks: list[tuple[np.ndarray, Callable[[int], str]]]
) -> _Issue | None:
    """The first offending row over several masks (earlier checks win ties)."""
    best: _Issue | None = None
    for mask, reason in checks:
        index = _first(mask)
        if index is not None and (best is None or index < best.index):
            best = _Issue(index=index, column=column, reason=reason(index))
    return best


def _raise_first(path: Path, issues: list[_Issue]) -> None:
    if issues:
        first = min(issues, key=lambda issue: issue.index)
        raise DataError(
            file=str(path),
            row=first.index + _HEADER_ROWS + 1,
            column=first.column,
            reason=first.reason,
        )


def _numeric(series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 values, mask of non-numeric cells and mask of missing cells."""
    nulls = series.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan), np.zeros_like(nulls), nulls
    coerced = pd.to_numeric(series.astype(str).str.strip(), errors="coerce")
    values = coerced.to_numpy(dtype=np.float64, na_value=np.nan)
    return values, np.isnan(values) & ~nulls, nulls


def _bool_values(series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nulls = series.isna().to_numpy()
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=np.float64), np.zeros_like(nulls), nulls
    if pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, ~np.isin(values, (0.0, 1.0)) & ~nulls, nulls
    mapped = series.astype(str).str.strip().str.lower().map(_BOOL_TEXTS)
    values = mapped.to_numpy(dtype=np.float64, na_value=np.nan)
    return values, np.isnan(values) & ~nulls, nulls


def _feature(series: pd.Series, spec: FeatureSpec) -> tuple[np.ndarray, _Issue | None]:
    """float32 values of one feature column and its first problem, if any.

    Ranges are checked on the float32 values the model will see, so a bound inferred from
    float64 data still admits the same data after a float32 round trip.
    """
    if spec.type == "bool":
        values, bad, nulls = _bool_values(series)
        expected = "a bool (expected 0, 1, true or false)"
    else:
        values, bad, nulls = _numeric(series)
        expected = "a float" if spec.type == "float" else "an integer"
    with np.errstate(invalid="ignore", over="ignore"):
        finite = np.isfinite(values)
        narrow = values.astype(np.float32)
        checks: list[tuple[np.ndarray, Callable[[int], str]]] = [
            (nulls, lambda i: "missing value (empty cell or NaN)"),
            (bad, lambda i: f"value {_show(series.iloc[i])} is not {expected}"),
            (~finite & ~nulls & ~bad, lambda i: f"value {_num(values[i])} is not finite"),
            (
                finite & ~np.isfinite(narrow),
                lambda i: f"value {_num(values[i])} does not fit in float32",
            ),
        ]
        if spec.type == "int":
            checks.append(
                (
                    finite & (values != np.round(values)),
                    lambda i: f"value {_num(values[i])} is not an integer",
                )
            )
        if spec.min is not None:
            low = spec.min
            checks.append(
                (
                    narrow < np.float32(low),
                    lambda i: f"value {_num(values[i])} is below the minimum {low!r}",
                )
            )
        if spec.max is not None:
            high = spec.max
            checks.append(
                (
                    narrow > np.float32(high),
                    lambda i: f"value {_num(values[i])} is above the maximum {high!r}",
                )
            )
    return narrow, _earliest(spec.name, checks)


def _num(value: np.floating | float) -> str:
    return repr(float(value))


def _labels(series: pd.Series, name: str) -> tuple[np.ndarray, _Issue | None]:
    values, bad, nulls = _numeric(series)
    if pd.api.types.is_bool_dtype(series):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.zeros_like(nulls)
    checks: list[tuple[np.ndarray, Callable[[int], str]]] = [
        (nulls, lambda i: "missing label"),
        (
            bad | (~nulls & ~np.isin(values, (0.0, 1.0))),
            lambda i: f"label {_show(series.iloc[i])} is not 0 or 1",
        ),
    ]
    return values.astype(np.float32), _earliest(name, checks)


def _ids(series: pd.Series, name: str) -> tuple[np.ndarray, _Issue | None]:
    nulls = series.isna().to_numpy()
    text = series.astype(str).str.strip()
    ids = text.to_numpy(dtype=str)
    empty = nulls | (ids == "")
    duplicated = text.duplicated(keep="first").to_numpy() & ~empty

    def duplicate(index: int) -> str:
        # The id itself is a subject identifier: name the rows, not the value.
        earlier = int(np.flatnonzero(ids == ids[index])[0])
        return f"duplicate id: same id as row {earlier + _HEADER_ROWS + 1}"

    return ids, _earliest(name, [(empty, lambda i: "missing id"), (duplicated, duplicate)])
