"""The scenario is byte-for-byte deterministic for a seed."""

from __future__ import annotations

from pathlib import Path

from consent import SQLiteConsentStore
from tests.participants.test_demo_support import tiny_scenario


def _data_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.suffix in {".csv", ".parquet", ".json"}
    }


def test_same_seed_writes_identical_bytes_and_other_seeds_differ(tmp_path: Path) -> None:
    first = tiny_scenario(tmp_path / "a", seed=11)
    second = tiny_scenario(tmp_path / "b", seed=11)
    other = tiny_scenario(tmp_path / "c", seed=12)

    a, b, c = (_data_files(m.root) for m in (first, second, other))

    assert a.keys() == b.keys() == c.keys()
    assert "factory-01/indicators.csv" in a and "bank/farmers.csv" in a
    assert a == b
    assert a["bank/farmers.csv"] != c["bank/farmers.csv"]
    assert a["factory-01/indicators.csv"] != c["factory-01/indicators.csv"]
    assert (
        a["factory-01/raw/electricity_15min.parquet"]
        != c["factory-01/raw/electricity_15min.parquet"]
    )
    with (
        SQLiteConsentStore(first.root / "bank" / "consent.db") as one,
        SQLiteConsentStore(second.root / "bank" / "consent.db") as two,
    ):
        assert one.events() == two.events()
