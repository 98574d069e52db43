"""The ``fedrisk`` command end to end: train on Flower's simulation runtime, then score."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.support.builders import make_federation


def fedrisk(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fedrisk", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["train"],
        ["demo"],
        ["score"],
        ["decide"],
        ["decide", "run"],
        ["decide", "replay"],
        ["decide", "check"],
        ["models"],
        ["models", "list"],
        ["models", "show"],
        ["keys"],
        ["keys", "provision"],
        ["data"],
        ["data", "check"],
        ["data", "infer-schema"],
        ["k8s"],
        ["k8s", "apply"],
        ["k8s", "round"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    from typer.testing import CliRunner

    from fedrisk import app

    result = CliRunner().invoke(app, [*command, "--help"])

    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


#: A square-bracketed word of a help text; ``\[`` is rich's escape for a literal bracket.
BRACKETED = re.compile(r"\\?\[[^\[\]\n]*\]")


def _commands() -> Iterator[tuple[list[str], object]]:
    """Every command and group of the ``fedrisk`` app, with its path, from click's tree."""
    import click
    import typer.main

    from fedrisk import app

    def walk(command: click.Command, path: list[str]) -> Iterator[tuple[list[str], object]]:
        yield path, command
        if isinstance(command, click.Group):
            for name in sorted(command.commands):
                yield from walk(command.commands[name], [*path, name])

    yield from walk(typer.main.get_command(app), [])


def test_square_brackets_in_every_help_text_survive_rendering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rich markup must not swallow a literal ``[schema]`` (it did: "Print a  block")."""
    from typer.testing import CliRunner

    from fedrisk import app

    monkeypatch.delenv("COLUMNS", raising=False)
    runner = CliRunner()
    checked, lost, commands = 0, [], 0
    for path, command in _commands():
        commands += 1
        texts = [command.help, command.short_help, command.epilog]  # type: ignore[attr-defined]
        texts += [getattr(p, "help", None) for p in command.params]  # type: ignore[attr-defined]
        words = {w.removeprefix("\\") for t in texts if t for w in BRACKETED.findall(t)}
        if not words:
            continue
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, result.output
        flat = " ".join(result.output.split())
        lost += [(" ".join(path), w) for w in sorted(words) if w not in flat]
        checked += len(words)

    assert commands > 20 and checked >= 1
    assert lost == []


def test_data_check_prints_whole_paths_when_not_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from fedrisk import app

    monkeypatch.delenv("COLUMNS", raising=False)
    deep = tmp_path / "a-folder-with-a-rather-long-name" / "and-another-long-one"
    federation = make_federation(deep, participants=2, rows=20)

    result = CliRunner().invoke(app, ["data", "check", str(federation)])

    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    assert str(deep / "p1.csv") in result.output


@pytest.mark.slow
def test_train_on_simulation_runtime_then_score(tmp_path: Path) -> None:
    federation = make_federation(tmp_path, privacy="dp+he", rounds=2, strategy="fedprox")
    report_path = tmp_path / "report.json"

    trained = fedrisk("train", str(federation), "--report", str(report_path), cwd=tmp_path)

    assert trained.returncode == 0, trained.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert [r["status"] for r in report["rounds"]] == ["ok", "ok"]
    assert report["privacy_mode"] == "dp+he" and report["strategy"] == "encrypted-fedprox"
    assert set(report["final"]["epsilon"]) == {"p1", "p2", "p3"}
    assert report["model_version"] == "test-fed/v1"
    registry = tmp_path / "runs" / "registry"

    scored = fedrisk(
        "score",
        "--model",
        "test-fed",
        "--registry",
        str(registry),
        "--input",
        str(tmp_path / "eval.csv"),
        "--output",
        str(tmp_path / "scores.csv"),
        cwd=tmp_path,
    )

    assert scored.returncode == 0, scored.stderr
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert list(scores.columns) == ["id", "score", "band"] and len(scores) == 600
    assert scores["score"].between(0, 1).all()


def test_malformed_federation_file_gives_one_line_not_a_traceback(tmp_path: Path) -> None:
    federation = make_federation(tmp_path, privacy="none")
    federation.write_text(federation.read_text().replace("rounds = 2", "roundz = 2"))

    result = fedrisk("train", str(federation), cwd=tmp_path)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "roundz" in result.stderr and "rounds" in result.stderr
