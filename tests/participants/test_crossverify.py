"""Cross-verification at the factory node (participants/crossverify): flags for declared
activity the plant's energy does not support, and nothing else leaving the node."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.errors import DataError
from participants.crossverify import FactoryActivity, cross_verify, load_activity

DAYS = 150


def _plant(seed: int = 0) -> FactoryActivity:
    """An honest plant: weekday shifts on the meter, output in proportion, invoiced."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2025-01-01", periods=DAYS * 96, freq="15min")
    working = (stamps.dayofweek < 5) & (stamps.hour >= 7) & (stamps.hour < 19)
    kwh = 3.0 + working * rng.uniform(30.0, 50.0, len(stamps))
    energy = pd.Series(kwh, index=stamps)
    daily = energy.groupby(energy.index.normalize()).sum()
    units = ((daily - 300).clip(lower=0) * 0.5 * rng.lognormal(0, 0.05, len(daily))).round()
    rows = [
        (f"INV{k:05d}", day + pd.Timedelta(hours=14), f"C{k % 7}", float(u), round(u * 48.3, 2))
        for k, (day, u) in enumerate(units.items())
        if u > 0
    ]
    invoices = pd.DataFrame(rows, columns=["invoice_id", "date", "customer", "quantity", "amount"])
    return FactoryActivity(energy_kwh=energy, production=units, invoices=invoices)


def _rules(flags: list) -> set[str]:  # type: ignore[type-arg]
    return {f.rule for f in flags}


def test_an_honest_plant_raises_no_flag() -> None:
    assert cross_verify(_plant()) == []


def test_production_declared_during_a_shutdown_is_flagged_by_rule_and_model() -> None:
    plant = _plant()
    quiet = plant.energy_kwh.copy()
    quiet["2025-03-10":"2025-03-14"] = 3.0  # the meter idles a working week; the MES does not

    flags = cross_verify(FactoryActivity(quiet, plant.production, plant.invoices))

    # The month's invoices, too, now exceed what its energy supports.
    assert _rules(flags) == {
        "production_during_shutdown", "declared_output_anomaly", "sales_without_energy"
    }  # fmt: skip
    (shutdown,) = [f for f in flags if f.rule == "production_during_shutdown"]
    assert (shutdown.start, shutdown.end) == ("2025-03-10", "2025-03-14")
    assert shutdown.figures["days"] == 5
    assert "the line looks shut down" in shutdown.text and "kWh" in shutdown.text


def test_a_month_of_sales_without_energy_is_flagged_with_its_figures() -> None:
    plant = _plant()
    april = plant.production["2025-04"]
    extra = pd.DataFrame(
        {"invoice_id": [f"X{k}" for k in range(len(april))], "date": april.index,
         "customer": "C9", "quantity": april.to_numpy() * 0.6, "amount": april.to_numpy() * 29.0}
    )  # fmt: skip

    flags = cross_verify(FactoryActivity(plant.energy_kwh, plant.production,
                                         pd.concat([plant.invoices, extra])))  # fmt: skip

    assert _rules(flags) == {"sales_without_energy", "mes_erp_mismatch"}
    sales = next(f for f in flags if f.rule == "sales_without_energy")
    assert (sales.start, sales.end) == ("2025-04-01", "2025-04-30")
    assert sales.figures["ratio"] == pytest.approx(1.6 * sales.figures["usual_ratio"], rel=0.05)
    assert "2025-04: invoiced" in sales.text and "times what its energy use supports" in sales.text


def test_an_invoice_issued_twice_under_a_new_number_is_flagged() -> None:
    plant = _plant()
    twice = plant.invoices.iloc[[40]].assign(invoice_id="INV-COPY")

    flags = cross_verify(FactoryActivity(plant.energy_kwh, plant.production,
                                         pd.concat([plant.invoices, twice])))  # fmt: skip

    (flag,) = flags
    assert flag.rule == "duplicate_invoices" and flag.figures["invoices"] == 2
    assert flag.start == pd.Timestamp(plant.invoices["date"].iloc[40]).strftime("%Y-%m-%d")


def test_flags_hold_aggregates_only_never_a_reading_or_an_invoice() -> None:
    plant = _plant()
    quiet = plant.energy_kwh.copy()
    quiet["2025-03-10":"2025-03-14"] = 3.0
    twice = plant.invoices.iloc[[40]].assign(invoice_id="INV-COPY")

    flags = cross_verify(
        FactoryActivity(quiet, plant.production, pd.concat([plant.invoices, twice]))
    )
    sent = json.dumps([f.to_dict() for f in flags])

    assert "INV" not in sent and "C" + plant.invoices["customer"].iloc[40][1:] not in sent
    assert all(len(f.figures) <= 6 for f in flags)  # totals and ratios, not series


def _files(tmp_path: Path) -> dict[str, Path]:
    plant = _plant()
    energy = tmp_path / "meter.csv"
    pd.DataFrame({"timestamp": plant.energy_kwh.index[:500], "kwh": plant.energy_kwh[:500]}).to_csv(
        energy, index=False
    )
    production = tmp_path / "mes.csv"
    pd.DataFrame({"date": plant.production.index[:5], "units": plant.production[:5]}).to_csv(
        production, index=False
    )
    invoices = tmp_path / "erp.csv"
    plant.invoices.head(5).to_csv(invoices, index=False)
    return {"energy": energy, "production": production, "invoices": invoices}


def test_the_three_sources_load_from_csv(tmp_path: Path) -> None:
    activity = load_activity(**_files(tmp_path))

    assert len(activity.energy_kwh) == 500 and len(activity.production) == 5
    assert activity.daily()["metered"].sum() == 6


@pytest.mark.parametrize(
    ("source", "edit", "row", "column", "words"),
    [
        ("energy", lambda f: f.assign(kwh=["x", *f.kwh[1:]]), 2, "kwh", "not a number"),
        ("energy", lambda f: pd.concat([f, f.tail(1)]), 502, "timestamp", "duplicated reading"),
        ("production", lambda f: f.assign(units=[*f.units[:2], -4, *f.units[3:]]), 4, "units",
         "not a number >= 0"),
        ("invoices", lambda f: f.assign(date=["soon", *f.date[1:]]), 2, "date", "not a date"),
        ("invoices", lambda f: f.drop(columns="amount"), 1, None, "missing columns"),
    ],
)  # fmt: skip
def test_a_bad_source_file_names_its_row_and_column(
    tmp_path: Path, source: str, edit: object, row: int, column: str | None, words: str
) -> None:
    files = _files(tmp_path)
    edit(pd.read_csv(files[source], dtype=str)).to_csv(files[source], index=False)  # type: ignore[operator]

    with pytest.raises(DataError) as caught:
        load_activity(**files)

    assert (caught.value.row, caught.value.column) == (row, column)
    assert str(files[source]) in str(caught.value) and words in str(caught.value)


def test_the_node_command_prints_the_flags_and_writes_only_them(tmp_path: Path) -> None:
    plant = _plant()
    quiet = plant.energy_kwh.copy()
    quiet["2025-03-10":"2025-03-14"] = 3.0
    energy, production, invoices = tmp_path / "m.csv", tmp_path / "p.csv", tmp_path / "e.csv"
    pd.DataFrame({"timestamp": quiet.index, "kwh": quiet.to_numpy()}).to_csv(energy, index=False)
    frame = {"date": plant.production.index, "units": plant.production.to_numpy()}
    pd.DataFrame(frame).to_csv(production, index=False)
    plant.invoices.to_csv(invoices, index=False)

    ran = subprocess.run(
        [sys.executable, "-m", "fedrisk", "node", "cross-verify", "--energy", str(energy),
         "--production", str(production), "--invoices", str(invoices),
         "--output", str(tmp_path / "flags.json")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    assert ran.returncode == 0, ran.stderr
    assert "production_during_shutdown" in ran.stdout
    assert f"over {DAYS} metered days" in ran.stderr
    sent = json.loads((tmp_path / "flags.json").read_text())
    assert {f["rule"] for f in sent} >= {"production_during_shutdown", "declared_output_anomaly"}
