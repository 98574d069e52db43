"""The benchmarks run end to end (``python -m bench --quick``); figures are not checked here.

Speed is measured by the benchmarks themselves, never by timed tests. Needs ../shared/data.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.deployment  # the deployment part runs a federation on loopback
def test_quick_benchmark_runs_every_part(tmp_path: Path) -> None:
    if not (DATA / "credit").is_dir():
        pytest.fail(f"the benchmarks need the real data in {DATA} (see ../shared/data/README.md)")

    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out-dir", str(tmp_path)],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=1800,  # every part, the loopback deployment included (~15 min here)
        check=False,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["errors"] == {}
    assert set(results["results"]) == {
        "utility_real",
        "utility_demo",
        "he_cost",
        "vertical_lr",
        "vertical_flower",
        "split_demo",
        "serving",
        "psi",
        "consent_ledger",
        "skewed_splits",
        "scale",
        "deployment",
        "decisions",
        "cross_verification",
        "iot_real",
        "monitoring",
    }
    assert (tmp_path / "BENCHMARKS.md").read_text().startswith("# fedrisk benchmarks")
