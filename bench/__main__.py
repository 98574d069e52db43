"""``python -m bench``: run the benchmarks side by side and write the results.

Full run (no ``--only``, no ``--quick``): writes ``BENCHMARKS.md`` at the project root and
``bench/out/results.json``. A partial or quick run writes ``results.json`` and
``BENCHMARKS.md`` under the output directory only (``--markdown PATH`` overrides).
Exit status 1 if a part failed to run (a missed target is a result, not a failure).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from . import PARTS
from .common import (
    DEFAULT_OUT,
    ROOT,
    BenchError,
    load_average,
    machine_info,
    progress,
    quiet_logging,
)
from .report import merge_note, render, splice


def _parts(values: list[str] | None) -> list[str]:
    if not values:
        return list(PARTS)
    chosen: list[str] = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if name not in PARTS:
                raise SystemExit(f"unknown part {name!r}; choose from {', '.join(PARTS)}")
            if name not in chosen:
                chosen.append(name)
    return [p for p in PARTS if p in chosen]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Run the fedrisk benchmarks and write the results."
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="PART",
        help=f"run only these parts (repeat or comma-separate): {', '.join(PARTS)}",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: few rounds and fewer runs (numbers are not meaningful)",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=DEFAULT_OUT,
        help="results.json and the work folder go here (default bench/out)",
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        default=None,
        help="where to write the Markdown report (default: BENCHMARKS.md for a "
        "full run, OUT_DIR/BENCHMARKS.md otherwise)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="with --only: replace those parts in the last full run's results "
        "(bench/out/results.json) and rewrite BENCHMARKS.md from the merged results",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of failed parts")
    args = parser.parse_args(argv)
    parts = _parts(args.only)
    full = not args.quick and parts == list(PARTS)
    if args.merge and (args.quick or full):
        raise SystemExit("--merge needs --only PART and a non-quick run")
    merge_into = args.markdown or ROOT / "BENCHMARKS.md"
    previous = DEFAULT_OUT / "results.json"
    if args.merge and not _full_run(previous) and not merge_into.exists():
        raise SystemExit(
            f"--merge: neither {previous} nor {merge_into} exists: run `python -m bench`"
        )
    out_dir: Path = args.out_dir.resolve()
    markdown_path = args.markdown or (ROOT / "BENCHMARKS.md" if full else out_dir / "BENCHMARKS.md")
    command = "python -m bench" + (
        ""
        if argv is None and len(sys.argv) <= 1
        else " " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    )

    # The participants' privacy budgets live in the node's state folder: keep the bench's
    # apart from the user's, fresh for every benchmark run.
    node_home = out_dir / "work" / "node-home"
    shutil.rmtree(node_home, ignore_errors=True)
    os.environ["FEDRISK_HOME"] = str(node_home)
    quiet_logging()
    started = time.perf_counter()
    machine = machine_info()
    progress(
        f"{command}: parts {', '.join(parts)}{' (quick)' if args.quick else ''}; "
        f"{machine['cores']} cores, load {machine['load_average_at_start']}"
    )
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    timings: dict[str, float] = {}
    for part in parts:
        part_started = time.perf_counter()
        progress(f"== {part} ==")
        quiet_logging()  # again: Flower and Ray reset logging and warning filters
        try:
            results[part] = _run_part(part, out_dir / "work" / part, quick=args.quick)
        except (BenchError, Exception) as exc:  # reported; the other parts go on
            errors[part] = f"{type(exc).__name__}: {exc}"
            progress(f"{part} FAILED: {errors[part]}")
            if args.debug:
                traceback.print_exc()
        timings[part] = time.perf_counter() - part_started
        progress(f"== {part} took {timings[part]:.0f} s ==")
    total = time.perf_counter() - started
    machine["load_average_at_end"] = load_average()
    document = {
        "command": command,
        "quick": args.quick,
        "parts": parts,
        "total_s": total,
        "part_s": timings,
        "machine": machine,
        "results": results,
        "errors": errors,
    }
    workers = os.cpu_count() or 1
    spliced = None
    if args.merge and _full_run(previous):
        document = _merged(document, previous)
        out_dir, markdown_path = DEFAULT_OUT, merge_into
    elif args.merge:
        # No earlier results here (a fresh clone): replace this run's parts in the
        # committed BENCHMARKS.md and keep the rest of it as its own run wrote it.
        markdown_path = merge_into
        update = _update(document)
        spliced = splice(
            merge_into.read_text(encoding="utf-8"),
            render(document, workers=workers),
            parts,
            merge_note(update),
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / "results.json"
    results_path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    markdown_path.write_text(spliced or render(document, workers=workers), encoding="utf-8")
    progress(f"wrote {results_path} and {markdown_path}")
    progress(f"total {total:.0f} s ({total / 60:.1f} min)")
    return 1 if errors else 0


def _full_run(path: Path) -> bool:
    """Whether ``path`` holds the results of a full run (all parts, not quick): only those
    are merged into; otherwise a merge splices the committed BENCHMARKS.md."""
    if not path.exists():
        return False
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return False
    return not previous.get("quick") and set(previous.get("parts", [])) >= set(PARTS)


def _merged(document: dict[str, Any], previous_path: Path) -> dict[str, Any]:
    """The last full run's results with this run's parts replaced (and the fact recorded)."""
    if not previous_path.exists():
        raise SystemExit(f"--merge: no earlier results in {previous_path}; run `python -m bench`")
    previous = json.loads(previous_path.read_text(encoding="utf-8"))
    merged = {**previous, "results": {**previous["results"], **document["results"]}}
    merged["part_s"] = {**previous["part_s"], **document["part_s"]}
    merged["parts"] = [p for p in PARTS if p in merged["results"]]
    merged["total_s"] = sum(merged["part_s"].values())
    merged["errors"] = {**{k: v for k, v in previous.get("errors", {}).items()
                           if k not in document["parts"]}, **document["errors"]}  # fmt: skip
    merged["updates"] = [*previous.get("updates", []), _update(document)]
    return merged


def _update(document: dict[str, Any]) -> dict[str, Any]:
    """What a merge note says of this run."""
    machine = document["machine"]
    return {
        "parts": document["parts"],
        "command": document["command"],
        "date_utc": machine["date_utc"],
        "load_average": [machine["load_average_at_start"], machine["load_average_at_end"]],
    }


#: The module of each part (``bench.<module>``), imported only when the part runs.
_MODULES = {part: part for part in PARTS} | {"psi": "psi_throughput"}


def _run_part(part: str, work: Path, *, quick: bool) -> dict[str, Any]:
    if part not in _MODULES:
        raise BenchError(f"unknown part {part}")
    module = importlib.import_module(f"{__package__}.{_MODULES[part]}")
    result: dict[str, Any] = module.run(work, quick=quick)
    return result


if __name__ == "__main__":
    sys.exit(main())
