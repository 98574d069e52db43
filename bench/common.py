"""Shared plumbing of the benchmarks: paths, progress lines, federation files, runs, timing.

Every federation runs on Flower's simulation runtime through :func:`fedrisk.simulate`, the
same code path as ``fedrisk train``. Federation TOMLs are generated here into a work folder
under the output directory (``bench/out/work`` by default, git-ignored), and every run gets
its own copy of its participants' data files, so that the DP budgets the participants keep
beside their data (``.fedrisk/*.budget.json``) start empty for every run and the shared data
folder is never written to.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from models.federation import toml_value

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
#: The project's shared data folder, beside the project root (``../shared/data``).
DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT_OUT = ROOT / "bench" / "out"

CREDIT_PARTS = ("guest", "host_1", "host_2")

_STARTED = time.monotonic()


class BenchError(Exception):
    """A benchmark cannot run (missing data, a failed federation); one line for the user."""


# --- consent ---------------------------------------------------------------------------


def bench_grant(
    *, grant_id: str, subject_id: str, institution: str, categories: frozenset[str], now: datetime
) -> Any:
    """A ``credit_scoring`` grant to ``institution`` that began 30 days before ``now`` and
    runs a year (the benchmarks' consent load)."""
    from consent.grants import Grant, GrantId, SubjectId

    return Grant(
        grant_id=GrantId(grant_id),
        subject_id=SubjectId(subject_id),
        institution=institution,
        purpose="credit_scoring",
        categories=categories,
        starts_at=now - timedelta(days=30),
        expires_at=now + timedelta(days=365),
        evidence_hash="ab" * 32,
        channel="bench",
    )


# --- progress --------------------------------------------------------------------------


def progress(message: str) -> None:
    """One progress line on stderr, stamped with the time since the benchmarks started."""
    elapsed = time.monotonic() - _STARTED
    print(f"[bench {elapsed:7.1f}s] {message}", file=sys.stderr, flush=True)


def quiet_logging() -> None:
    """Keep the product's and Flower's logs out of the benchmark output (errors only)."""
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(logging.ERROR)
    import flwr.common.logger  # noqa: F401 - installs Flower's own console handler

    for name in ("", "flwr", "ray", "opacus", "coordinator", "participants", "models", "privacy"):
        logger = logging.getLogger(name)
        if name:
            logger.setLevel(logging.ERROR)
        for handler in logger.handlers:  # Flower resets its logger's level; handlers filter
            handler.setLevel(logging.ERROR)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # Library deprecation notices (pandas, Flower's run_simulation) are not results.
    for category in (DeprecationWarning, FutureWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    os.environ.setdefault(
        "PYTHONWARNINGS", "ignore::DeprecationWarning,ignore::FutureWarning"
    )  # worker processes of the scenario generator


# --- data ------------------------------------------------------------------------------


def credit_files() -> dict[str, Path]:
    """The FATE split of UCI "default of credit card clients": three parties and a test set."""
    folder = DATA_DIR / "credit"
    files = {name: folder / f"default_credit_homo_{name}.csv" for name in (*CREDIT_PARTS, "test")}
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise BenchError(
            f"benchmark data missing: {', '.join(missing)}. The benchmarks read the shared "
            f"data folder {DATA_DIR} (beside the project root); restore it from the "
            "project's data bundle (see ../shared/data/README.md)."
        )
    return files


def csv_columns(path: Path) -> list[str]:
    """The header of a CSV file."""
    with path.open(encoding="utf-8") as handle:
        return handle.readline().strip().split(",")


def fresh_dir(path: Path) -> Path:
    """An empty directory at ``path`` (whatever was there is removed)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


# --- federation files ------------------------------------------------------------------


@dataclass(frozen=True)
class FedSettings:
    """The training settings written into a generated federation file."""

    rounds: int
    local_epochs: int
    batch_size: int
    learning_rate: float
    max_grad_norm: float = 1.0
    delta: float = 1e-5
    seed: int = 42
    hidden: tuple[int, ...] | None = None
    coeff_mod_bit_sizes: tuple[int, ...] = (60, 40)
    poly_modulus_degree: int = 8192
    global_scale_bits: int = 40

    def describe(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "local_epochs": self.local_epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "max_grad_norm (DP modes)": self.max_grad_norm,
            "delta (DP modes)": self.delta,
            "seed": self.seed,
            "CKKS (he modes)": f"N={self.poly_modulus_degree}, "
            f"coeff_mod_bit_sizes={list(self.coeff_mod_bit_sizes)}, "
            f"scale=2^{self.global_scale_bits}",
        }


def write_federation(
    path: Path,
    *,
    name: str,
    model: str,
    privacy: str,
    settings: FedSettings,
    feature_names: Sequence[str],
    participants: Mapping[str, Path],
    evaluation: Path,
    keys_dir: Path,
    target_epsilon: float | None = None,
    id_column: str = "id",
    label_column: str = "y",
    strategy: str = "fedavg",
    tables: str = "",
    federation_options: Mapping[str, object] | None = None,
) -> Path:
    """Write a horizontal federation file for the generic ``logistic``/``mlp`` models
    (``tables``: more TOML tables, e.g. ``[server_optimizer]``, written as given;
    ``federation_options``: more ``[federation]`` keys, e.g. ``sample_fraction``, which
    replace the defaults written here, ``min_participants`` included)."""
    fed: dict[str, object] = {
        "name": name,
        "model": model,
        "mode": "horizontal",
        "privacy": privacy,
        "strategy": strategy,
        "rounds": settings.rounds,
        "min_participants": len(participants),
        "local_epochs": settings.local_epochs,
        "batch_size": settings.batch_size,
        "learning_rate": float(settings.learning_rate),
        "seed": settings.seed,
    }
    fed.update(federation_options or {})
    if model == "mlp":
        if not settings.hidden:
            raise ValueError("model 'mlp' needs hidden layer sizes")
        fed["hidden"] = list(settings.hidden)
    lines = ["# Generated by bench/ (python -m bench); do not edit.", "[federation]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in fed.items()]
    if "dp" in privacy:
        if target_epsilon is None:
            raise ValueError(f"privacy {privacy!r} needs target_epsilon")
        lines += [
            "",
            "[privacy.dp]",
            f"target_epsilon = {toml_value(float(target_epsilon))}",
            f"delta = {toml_value(float(settings.delta))}",
            f"max_grad_norm = {toml_value(float(settings.max_grad_norm))}",
            'accountant = "rdp"',
        ]
    if tables:
        lines += ["", tables.strip()]
    lines += [
        "",
        "[privacy.he]",
        f"poly_modulus_degree = {settings.poly_modulus_degree}",
        f"coeff_mod_bit_sizes = {toml_value(list(settings.coeff_mod_bit_sizes))}",
        f"global_scale_bits = {settings.global_scale_bits}",
        f"keys_dir = {toml_value(keys_dir)}",
        "",
        "[schema]",
        f"id = {toml_value(id_column)}",
        f"label = {toml_value(label_column)}",
        "features = [",
        *(
            f'  {{ name = {toml_value(f)}, type = "float", min = -100.0, max = 100.0 }},'
            for f in feature_names
        ),
        "]",
        "",
        "[evaluation]",
        f"file = {toml_value(evaluation)}",
        "",
        "[output]",
        f"dir = {toml_value(path.parent / 'runs')}",
    ]
    for participant, file in participants.items():
        lines += [
            "",
            "[[participants]]",
            f"name = {toml_value(participant)}",
            f"file = {toml_value(file)}",
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- running federations ---------------------------------------------------------------


@dataclass
class FederationRun:
    """What one federation run gave: metrics, per-round durations, ε, wall time."""

    label: str
    privacy: str
    auc: float
    log_loss: float
    round_durations_s: list[float]
    round_auc: list[float | None]
    epsilon: dict[str, float]
    wall_s: float
    rounds_failed: int
    rejected: dict[str, str] = field(default_factory=dict)
    phases: dict[str, Any] | None = None

    @property
    def max_epsilon(self) -> float | None:
        return max(self.epsilon.values()) if self.epsilon else None

    def steady_round_s(self) -> float:
        """Median round duration, round 1 (warm-up) left out when there are others."""
        durations = self.round_durations_s[1:] or self.round_durations_s
        return float(statistics.median(durations))

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "privacy": self.privacy,
            "auc": self.auc,
            "log_loss": self.log_loss,
            "round_durations_s": self.round_durations_s,
            "round_auc": self.round_auc,
            "epsilon": self.epsilon,
            "max_epsilon": self.max_epsilon,
            "wall_s": self.wall_s,
            "rounds_failed": self.rounds_failed,
            "rejected": self.rejected,
            "phases": self.phases,
        }


def run_federation(toml: Path, *, label: str, probe: bool = False) -> FederationRun:
    """Provision CKKS keys if needed and run the federation in Flower's simulation runtime.

    ``probe`` times the coordinator's phases per round (:mod:`bench.probes`).
    """
    from contextlib import nullcontext

    from rich.console import Console

    from fedrisk import simulate
    from models.federation import load_federation
    from participants.cli import ensure_keys

    spec = load_federation(toml)
    ensure_keys(spec, console=Console(stderr=True, quiet=True))
    rejected: dict[str, str] = {}

    def on_round(record: Any) -> None:
        auc = "-" if record.auc is None else f"{record.auc:.4f}"
        eps = max(record.epsilon.values()) if record.epsilon else None
        extra = f", eps {eps:.3f}" if eps is not None else ""
        if record.rejected:
            rejected.update(record.rejected)
            extra += f", REJECTED {record.rejected}"
        if record.status != "ok":
            extra += f", FAILED: {record.failure}"
        progress(
            f"  {label}: round {record.server_round}/{spec.rounds} {record.duration_s:.2f} s, "
            f"AUC {auc}{extra}"
        )

    progress(
        f"{label}: {len(spec.participants)} participants, {spec.rounds} rounds, "
        f"privacy {spec.privacy}"
    )
    from .probes import coordinator_phases

    probes = coordinator_phases() if probe else nullcontext(None)
    with probes as phases:
        started = time.perf_counter()
        result = simulate(spec, on_round=on_round)
        wall = time.perf_counter() - started
    report = result.report
    if not report.rounds or report.final.get("auc") is None:
        raise BenchError(f"{label}: the federation produced no evaluated round")
    run = FederationRun(
        label=label,
        privacy=str(spec.privacy),
        auc=float(report.final["auc"]),
        log_loss=float(report.final["log_loss"]),
        round_durations_s=[r.duration_s for r in report.rounds],
        round_auc=[r.auc for r in report.rounds],
        epsilon=report.epsilon_per_participant(),
        wall_s=wall,
        rounds_failed=int(report.final.get("rounds_failed", 0)),
        rejected=rejected,
        phases=None if phases is None else phases.to_dict(),
    )
    progress(
        f"{label}: done in {wall:.1f} s (AUC {run.auc:.4f}, log-loss {run.log_loss:.4f}, "
        f"median round {run.steady_round_s():.2f} s)"
    )
    return run


# --- timing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Repeated timings of one operation (seconds)."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return float(statistics.median(self.samples))

    @property
    def best(self) -> float:
        return min(self.samples)


def time_call(fn: Callable[[], T], *, repeats: int) -> tuple[Timing, T]:
    """Run ``fn`` ``repeats`` times; the timings and the last result."""
    samples = []
    result: T
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - start)
    return Timing(tuple(samples)), result


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


# --- machine ---------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total_bytes() -> int | None:
    """The machine's memory (``MemTotal`` of /proc/meminfo), or ``None`` where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _memory_gib() -> float | None:
    total = memory_total_bytes()
    return None if total is None else round(total / 1024**3, 1)


def _version(module: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git() -> str:
    try:
        head = _git_output("rev-parse", "--short", "HEAD")
        dirty = _git_output("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted changes' if dirty else ''}"


def _git_output(*args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.strip()


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    """Where and with what the benchmarks ran."""
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {
            name: _version(name)
            for name in ("torch", "flwr", "tenseal", "opacus", "scikit-learn", "numpy", "ray")
        },
        "git": _git(),
        "load_average_at_start": load_average(),
    }


def fmt(value: float | None, digits: int = 4, *, signed: bool = False) -> str:
    """A number for a Markdown table (``-`` for missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("**pass**" if ok else "**FAIL**")


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
