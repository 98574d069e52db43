"""The factory node's inbox (participants/inbox.py): each reading stored once, files read
incrementally, half-written files left alone, bad files refused by name."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from participants.inbox import BadValue, Inbox

HEADER = "timestamp,kwh\n"


def _lines(start: int, n: int) -> str:
    return "".join(
        f"2025-01-01T{(k // 4):02d}:{15 * (k % 4):02d},{k}.5\n" for k in range(start, start + n)
    )


def _inbox(tmp_path: Path, *, settle_s: float = 0.0) -> Inbox:
    (tmp_path / "inbox").mkdir(exist_ok=True)
    return Inbox(tmp_path / "inbox", tmp_path / "node.db", kind="meter",
                 columns=("timestamp", "kwh"), key=("timestamp",), settle_s=settle_s)  # fmt: skip


def test_a_file_is_ingested_once_and_an_appended_file_only_for_its_new_rows(tmp_path: Path) -> None:
    inbox = _inbox(tmp_path)
    day = tmp_path / "inbox" / "day1.csv"
    day.write_text(HEADER + _lines(0, 10))

    first = inbox.ingest()
    again = inbox.ingest()
    with day.open("a") as handle:
        handle.write(_lines(10, 5))
    appended = inbox.ingest()

    assert first.ingested == {"day1.csv": 10}
    assert again.unchanged == ["day1.csv"] and again.ingested == {}
    assert appended.ingested == {"day1.csv": 5}
    assert len(inbox.rows()) == 15


def test_the_same_reading_delivered_twice_is_stored_once_and_counted(tmp_path: Path) -> None:
    inbox = _inbox(tmp_path)
    (tmp_path / "inbox" / "a.csv").write_text(HEADER + _lines(0, 8))
    (tmp_path / "inbox" / "b.csv").write_text(HEADER + _lines(5, 8))  # 3 overlap

    report = inbox.ingest()

    assert report.ingested == {"a.csv": 8, "b.csv": 5}
    assert report.duplicates == {"a.csv": 0, "b.csv": 3}
    assert len(inbox.rows()) == 13


def test_half_written_files_are_left_for_a_later_pass(tmp_path: Path) -> None:
    inbox = _inbox(tmp_path, settle_s=5.0)
    (tmp_path / "inbox" / "next.csv.partial").write_text(HEADER + _lines(0, 3))
    growing = tmp_path / "inbox" / "now.csv"
    growing.write_text(HEADER + _lines(0, 4) + "2025-01-01T01:00,3")  # last line unfinished

    fresh = inbox.ingest(now=100.0)
    settled = inbox.ingest(now=106.0)
    with growing.open("a") as handle:
        handle.write(".25\n")
    finished = inbox.ingest(now=200.0), inbox.ingest(now=206.0)

    assert fresh.waiting == ["now.csv"] and fresh.ingested == {}  # changed just now
    assert settled.ingested == {"now.csv": 4}  # complete lines only; .partial never read
    assert finished[1].ingested == {"now.csv": 1}
    assert inbox.rows()["kwh"].tolist()[-1] == "3.25"


def test_state_survives_a_restart(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "a.csv").write_text(HEADER + _lines(0, 6))
    first = _inbox(tmp_path)
    first.ingest()
    first.close()

    reopened = _inbox(tmp_path)
    report = reopened.ingest()

    assert report.unchanged == ["a.csv"] and len(reopened.rows()) == 6


def test_a_rewritten_or_malformed_file_is_refused_by_name_and_the_others_still_go_in(
    tmp_path: Path,
) -> None:
    inbox = _inbox(tmp_path)
    old = tmp_path / "inbox" / "old.csv"
    old.write_text(HEADER + _lines(0, 4))
    inbox.ingest()
    old.write_text(HEADER + _lines(20, 4))  # rewritten in place
    (tmp_path / "inbox" / "bad.csv").write_text(HEADER + _lines(30, 2) + "2025-01-02T00:00,\n")
    (tmp_path / "inbox" / "wrong.csv").write_text("time,kwh\n2025-01-01T00:00,1\n")
    (tmp_path / "inbox" / "good.csv").write_text(HEADER + _lines(40, 3))

    report = inbox.ingest()

    assert "rewritten since it was ingested" in report.refused["old.csv"]
    assert "row 4, column 'kwh': empty value" in report.refused["bad.csv"]
    assert "missing columns ['timestamp']" in report.refused["wrong.csv"]
    assert report.ingested == {"good.csv": 3}
    assert len(inbox.rows()) == 7  # nothing of the refused files


def test_a_kind_that_is_not_an_identifier_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="identifier"):
        Inbox(tmp_path, tmp_path / "db", kind="meter; drop", columns=("a",), key=("a",))


def test_a_parquet_file_is_read_whole_once_its_footer_is_written(tmp_path: Path) -> None:
    inbox = _inbox(tmp_path)
    path = tmp_path / "inbox" / "day.parquet"
    table = pa.table({"timestamp": ["2025-01-01T00:00", "2025-01-01T00:15"], "kwh": [1.5, None]})
    pq.write_table(table, path)
    whole = path.read_bytes()
    path.write_bytes(whole[:-8])  # the footer is not written yet

    unfinished = inbox.ingest()
    path.write_bytes(whole)
    refused = inbox.ingest()
    pq.write_table(table.slice(0, 1), path)  # corrected in place: it was never taken
    corrected = inbox.ingest()
    again = inbox.ingest()
    pq.write_table(table.slice(0, 1).set_column(1, "kwh", pa.array([2.0])), path)
    changed = inbox.ingest()

    assert unfinished.waiting == ["day.parquet"] and unfinished.ingested == {}
    assert refused.refused == {"day.parquet": f"{path}, row 3, column 'kwh': empty value"}
    assert corrected.ingested == {"day.parquet": 1}
    assert again.unchanged == ["day.parquet"]
    assert "cannot be appended to" in changed.refused["day.parquet"]
    assert inbox.rows()["kwh"].tolist() == ["1.5"]


def test_optional_columns_may_be_absent_and_the_kind_check_names_the_bad_value(
    tmp_path: Path,
) -> None:
    def numbers(frame: pd.DataFrame) -> BadValue | None:
        bad = ~frame["kwh"].str.fullmatch(r"\d+(\.\d+)?")
        return BadValue(int(bad.to_numpy().argmax()), "kwh", "not a number") if bad.any() else None

    (tmp_path / "inbox").mkdir()
    inbox = Inbox(
        tmp_path / "inbox",
        tmp_path / "node.db",
        kind="meter",
        columns=("timestamp", "kwh", "note"),
        key=("timestamp",),
        optional=("note",),
        check=numbers,
        settle_s=0,
    )
    (tmp_path / "inbox" / "a.csv").write_text(HEADER + _lines(0, 3))  # no "note" column
    (tmp_path / "inbox" / "b.csv").write_text(HEADER + _lines(3, 2) + "2025-01-02T00:00,1e3\n")

    report = inbox.ingest()

    assert report.ingested == {"a.csv": 3}
    bad = tmp_path / "inbox" / "b.csv"
    assert report.refused == {"b.csv": f"{bad}, row 4, column 'kwh': not a number"}
    assert inbox.rows()["note"].tolist() == ["", "", ""]
    with pytest.raises(ValueError, match="optional columns"):
        Inbox(tmp_path, tmp_path / "db", kind="k", columns=("a",), key=("a",), optional=("b",))
