"""``python -m bench --only PART --merge`` on a fresh clone: the part's section and target
rows are replaced in the committed BENCHMARKS.md, everything else is kept."""

from __future__ import annotations

import json
from pathlib import Path

from bench import PARTS
from bench.__main__ import _full_run
from bench.report import splice

EXISTING = """# fedrisk benchmarks

Parts re-run later and merged in: a on day 1.

## Targets

| target | measured as | value | required | result |
|---|---|---|---|---|
| a: first | x | 1 | <= 2 | **pass** |
| serving: one part | p99 | 900 | <= 25 | **FAIL** |
| serving: two parts | p99 | 950 | <= 50 | **FAIL** |
| z: last | x | 3 | <= 4 | **pass** |

## 1. A part (`a`)

A's figures.

## 7. Scoring API under load (`serving`)

Old serving figures.

## Machine

The machine.
"""

FRESH = """# fedrisk benchmarks

## Targets

| target | measured as | value | required | result |
|---|---|---|---|---|
| serving: one part | p99 | 5.6 | <= 25 | **pass** |
| serving: two parts | p99 | 8.9 | <= 50 | **pass** |

## 7. Scoring API under load (`serving`)

New serving figures.

## Machine

Another machine.
"""


def test_a_merge_replaces_only_the_parts_run() -> None:
    merged = splice(EXISTING, FRESH, ["serving"], "Parts re-run later and merged in: serving.")

    assert "New serving figures." in merged and "Old serving figures." not in merged
    assert "A's figures." in merged and "The machine." in merged
    assert "Another machine." not in merged
    rows = [line for line in merged.splitlines() if line.startswith("| ") and ":" in line]
    assert [r.split("|")[3].strip() for r in rows] == ["1", "5.6", "8.9", "3"]
    notes = [line for line in merged.splitlines() if line.startswith("Parts re-run")]
    assert notes == ["Parts re-run later and merged in: a on day 1.",
                     "Parts re-run later and merged in: serving."]  # fmt: skip


def test_a_part_new_to_the_document_goes_in_the_parts_order() -> None:
    existing = EXISTING.replace("## 7. Scoring API under load (`serving`)", "## 8. PSI (`psi`)")
    merged = splice(existing, FRESH, ["serving"], "note")
    assert merged.index("(`serving`)") < merged.index("(`psi`)") < merged.index("## Machine")
    assert merged.index("A's figures.") < merged.index("New serving figures.")


def test_a_failed_part_keeps_its_earlier_figures() -> None:
    # The part failed: no target row, no section.
    failed = "\n".join(
        line for line in FRESH.split("## 7.")[0].splitlines() if not line.startswith("| serving")
    )
    merged = splice(EXISTING, failed, ["serving"], "note")
    assert "Old serving figures." in merged and "| serving: one part | p99 | 900" in merged


def test_only_a_full_run_is_merged_into(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    assert not _full_run(path)
    for document, full in (
        ({"quick": True, "parts": list(PARTS)}, False),
        ({"quick": False, "parts": ["serving"]}, False),
        ({"quick": False, "parts": list(PARTS)}, True),
    ):
        path.write_text(json.dumps(document), encoding="utf-8")
        assert _full_run(path) is full
