"""Scale: many simulated factory edge nodes on Flower's simulation engine (Ray), ``dp+he``.

Every node is one participant of a generated federation file (200 rows of synthetic IoT
readings each, six features, a logistic ground truth with a per-factory offset; a pooled
4,000-row evaluation file), trained with the logistic model under DP-SGD (ε = 3 over the
planned rounds) and CKKS aggregation, 10 % of the nodes sampled per round
(``sample_fraction = 0.1``, at least two). Each node count runs in a fresh process (Ray
started and stopped with it) for four rounds: round 1 is a warm-up, the time per round is
the median of rounds 2-4. The handshake, which asks all n nodes once at the start, is timed
on its own. Peak memory is polled every second over that process and all its descendants
(Ray's GCS, raylet with its object store, the ClientApp worker actors): PSS, which splits
shared pages among the processes mapping them, and the plain sum of RSS, which counts them
once per process. Node counts 100, 300 and 1,000 are fitted as a + b·n; the largest node
count that fits the machine's memory is extrapolated from the fit and checked by running
one larger count: as large as the memory fit allows (nine tenths of the extrapolated
largest) and as the time fits predict to finish within its limit, for two rounds; it is
stopped if its memory passes 20 GB or after 30 minutes (its peak so far kept).
"""

from __future__ import annotations

import json
import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .common import (
    ROOT,
    BenchError,
    FedSettings,
    fmt,
    fresh_dir,
    memory_total_bytes,
    progress,
    table,
    write_federation,
)

NODE_COUNTS = (100, 300, 1000)
QUICK_NODE_COUNTS = (12,)
SETTINGS = FedSettings(rounds=4, local_epochs=1, batch_size=32, learning_rate=0.1)
#: The verification run: round 1 warms up, round 2 is timed (a round of thousands of nodes
#: takes minutes on two cores).
VERIFY_SETTINGS = FedSettings(rounds=2, local_epochs=1, batch_size=32, learning_rate=0.1)
QUICK_SETTINGS = FedSettings(rounds=1, local_epochs=1, batch_size=32, learning_rate=0.1)
TARGET_EPSILON = 3.0
SAMPLE_FRACTION = 0.1
MIN_PARTICIPANTS = 2
ROWS_PER_NODE = 200
EVALUATION_ROWS = 4000
#: A run whose process tree passes this much memory (PSS) is stopped.
STOP_BYTES = 20 * 10**9
#: The verification run is stopped after this long, its memory peak so far kept: at a few
#: thousand nodes the handshake alone (every node asked once) takes the better part of an
#: hour on two cores, and the memory it shows by then is what the check is for.
VERIFY_LIMIT_S = 1800.0
#: The verification run: the extrapolated largest count times this, in steps of 500,
#: within these bounds, and no larger than the count whose handshake and rounds the time
#: fits (power laws through the largest measured count) predict to take this share of
#: VERIFY_LIMIT_S: the handshake and the rounds grow faster than linearly.
VERIFY_SHARE, VERIFY_STEP, VERIFY_BOUNDS = 0.9, 500, (1500, 5000)
VERIFY_TIME_SHARE = 0.75
POLL_S = 1.0
GB = 1e9

FEATURES = (
    "vibration_rms_mm_s",
    "bearing_temp_c",
    "power_kw",
    "runtime_h_per_day",
    "defect_rate_pct",
    "days_since_maintenance",
)


# --- data ------------------------------------------------------------------------------


def _factory_rows(rng: np.random.Generator, rows: int, *, profile: np.ndarray) -> np.ndarray:
    """``rows`` readings of one factory (``profile``: its mean shifts and risk offset)."""
    shift, offset = profile[:-1], profile[-1]
    x = np.column_stack(
        [
            np.clip(rng.gamma(4.0, 0.8, rows) + shift[0], 0.1, 30),
            np.clip(rng.normal(62 + shift[1], 8, rows), 20, 99),
            np.clip(rng.lognormal(3.2, 0.5, rows) + shift[2], 1, 99),
            np.clip(rng.normal(16 + shift[3], 4, rows), 1, 24),
            np.clip(rng.gamma(2.0, 1.0, rows) + shift[4], 0, 30),
            np.clip(rng.exponential(30, rows) + shift[5], 0, 99),
        ]
    )
    logit = (
        -2.2 + offset + 0.45 * (x[:, 0] - 3.2) + 0.06 * (x[:, 1] - 62) + 0.01 * (x[:, 2] - 25)
        + 0.05 * (x[:, 3] - 16) + 0.35 * (x[:, 4] - 2) + 0.025 * (x[:, 5] - 30)
    )  # fmt: skip
    y = rng.random(rows) < 1 / (1 + np.exp(-logit))
    return np.column_stack([y.astype(float), x])


def _profiles(rng: np.random.Generator, n: int) -> np.ndarray:
    scales = np.array([0.8, 5.0, 6.0, 3.0, 0.6, 10.0, 0.5])
    return rng.normal(0, 1, (n, len(scales))) * scales


def _write_csv(path: Path, prefix: str, data: np.ndarray) -> None:
    header = ",".join(["id", "y", *FEATURES])
    lines = [header]
    for i, row in enumerate(data):
        values = ",".join(f"{v:.4g}" for v in row[1:])
        lines.append(f"{prefix}{i},{int(row[0])},{values}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_nodes(folder: Path, n: int, *, seed: int = 13) -> tuple[dict[str, Path], Path]:
    """``n`` factories' CSV files and a pooled evaluation file from other factories."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for k, profile in enumerate(_profiles(rng, n)):
        name = f"factory-{k:05d}"
        files[name] = folder / f"{name}.csv"
        _write_csv(files[name], f"f{k}-", _factory_rows(rng, ROWS_PER_NODE, profile=profile))
    held_out = _profiles(rng, 40)
    pooled = np.vstack(
        [_factory_rows(rng, EVALUATION_ROWS // 40, profile=p) for p in held_out]
    )  # fmt: skip
    evaluation = folder / "evaluation.csv"
    _write_csv(evaluation, "e", pooled)
    return files, evaluation


# --- memory of a process tree ----------------------------------------------------------


def _proc_tree(root: int) -> list[int]:
    """``root`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _kind(pid: int, root: int) -> str:
    if pid == root:
        return "driver (ServerApp, SuperLink, node states)"
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "other"
    if comm == "raylet" or "/raylet" in cmdline.split(" ")[0]:
        return "raylet (object store)"
    if "gcs_server" in comm or "gcs_server" in cmdline:
        return "Ray GCS"
    if "default_worker.py" in cmdline or comm.startswith("ray::"):
        return "Ray workers (ClientApp actors)"
    return "other Ray processes"


def _memory_of(pid: int) -> tuple[int, int] | None:
    """(PSS, RSS) of one process in bytes."""
    try:
        pss = rss = 0
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) * 1024
            elif line.startswith("Rss:"):
                rss = int(line.split()[1]) * 1024
        return pss, rss
    except (OSError, ValueError):
        return None


def _shm_used() -> int:
    stat = os.statvfs("/dev/shm")
    return (stat.f_blocks - stat.f_bfree) * stat.f_frsize


@dataclass
class MemoryPeak:
    """The largest memory of a process tree seen while polling, and where it was."""

    pss: int = 0
    rss: int = 0
    by_kind_pss: dict[str, int] = field(default_factory=dict)
    processes: int = 0
    workers: int = 0
    shm: int = 0
    samples: int = 0
    trace: list[tuple[float, int]] = field(default_factory=list)

    def observe(self, root: int, started: float) -> int:
        pss = rss = workers = 0
        kinds: dict[str, int] = {}
        pids = _proc_tree(root)
        for pid in pids:
            memory = _memory_of(pid)
            if memory is None:
                continue
            kind = _kind(pid, root)
            pss, rss = pss + memory[0], rss + memory[1]
            kinds[kind] = kinds.get(kind, 0) + memory[0]
            workers += kind.startswith("Ray workers")
        self.samples += 1
        self.rss = max(self.rss, rss)
        self.shm = max(self.shm, _shm_used())
        if not self.trace or time.monotonic() - started - self.trace[-1][0] >= 10:
            self.trace.append((round(time.monotonic() - started, 1), pss))
        if pss > self.pss:
            self.pss, self.by_kind_pss, self.processes = pss, kinds, len(pids)
            self.workers = workers
        return pss

    def to_dict(self) -> dict[str, Any]:
        return {
            "peak_pss_bytes": self.pss,
            "peak_rss_sum_bytes": self.rss,
            "pss_by_kind_at_peak": self.by_kind_pss,
            "processes_at_peak": self.processes,
            "worker_processes_at_peak": self.workers,
            "dev_shm_peak_bytes": self.shm,
            "samples": self.samples,
            "pss_trace": self.trace,
        }


# --- one node count, in its own process ------------------------------------------------


def run_point(
    work: Path, n: int, *, settings: FedSettings, label: str, limit_s: float | None = None
) -> dict[str, Any]:
    """Generate, provision and run one node count in a child process; poll its memory
    (stopping it past ``STOP_BYTES`` or after ``limit_s``)."""
    from rich.console import Console

    from models.federation import load_federation
    from participants.cli import ensure_keys

    point = fresh_dir(work / f"n{n}")
    started = time.perf_counter()
    files, evaluation = write_nodes(point / "data", n)
    toml = write_federation(
        point / "federation.toml", name=f"bench-scale-{n}", model="logistic",
        privacy="dp+he", settings=settings, feature_names=FEATURES, participants=files,
        evaluation=evaluation, keys_dir=point / "keys", target_epsilon=TARGET_EPSILON,
        federation_options={"sample_fraction": SAMPLE_FRACTION,
                            "min_participants": MIN_PARTICIPANTS},
    )  # fmt: skip
    data_s = time.perf_counter() - started
    started = time.perf_counter()
    ensure_keys(load_federation(toml), console=Console(stderr=True, quiet=True))
    keys_s = time.perf_counter() - started
    progress(f"{label}: {n} nodes written in {data_s:.1f} s, CKKS keys in {keys_s:.1f} s")
    result_path = point / "result.json"
    env = {**os.environ, "FEDRISK_HOME": str(point / "home")}
    command = [sys.executable, "-m", "bench.scale", "--child", str(toml), str(result_path)]
    peak = MemoryPeak()
    child = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    began = time.monotonic()
    stopped = None
    last_note = began
    while child.poll() is None:
        pss = peak.observe(child.pid, began)
        elapsed = time.monotonic() - began
        if pss > STOP_BYTES:
            stopped = f"stopped at {pss / GB:.1f} GB PSS after {elapsed:.0f} s"
        elif limit_s is not None and elapsed > limit_s:
            stopped = f"stopped by its time limit after {elapsed:.0f} s, at {pss / GB:.1f} GB PSS"
        if stopped is not None:
            progress(f"{label}: {stopped}")
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            break
        if time.monotonic() - last_note >= 30:
            last_note = time.monotonic()
            progress(f"{label}: {last_note - began:.0f} s, memory {pss / GB:.2f} GB PSS "
                     f"(peak {peak.pss / GB:.2f})")  # fmt: skip
        time.sleep(POLL_S)
    wall = time.monotonic() - began
    out: dict[str, Any] = {"nodes": n, "data_s": data_s, "keys_s": keys_s, "process_s": wall}
    out |= {"sampled_per_round": max(MIN_PARTICIPANTS, math.ceil(SAMPLE_FRACTION * n))}
    out |= {"memory": peak.to_dict(), "stopped": stopped, "returncode": child.returncode}
    out |= {"keys_dir_bytes": sum(f.stat().st_size for f in (point / "keys").rglob("*.ckks"))}
    if result_path.exists():
        out |= json.loads(result_path.read_text(encoding="utf-8"))
    elif stopped is None:
        raise BenchError(f"{label}: the run exited with status {child.returncode} and no result")
    _cleanup(point)
    return out


def _cleanup(point: Path) -> None:
    """The node files and keys of a finished point are large at thousands of nodes."""
    for name in ("data", "keys", "home", "runs"):
        target = point / name
        if target.exists():
            subprocess.run(["rm", "-rf", str(target)], check=False)


@contextmanager
def _timed(owner: Any, attr: str, into: dict[str, float], key: str) -> Iterator[None]:
    original = getattr(owner, attr)

    def timed(*args: Any, **kwargs: Any) -> Any:
        into[f"{key}_start"] = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            into[f"{key}_end"] = time.perf_counter()

    setattr(owner, attr, timed)
    try:
        yield
    finally:
        setattr(owner, attr, original)


def _object_store(into: dict[str, Any], stop: threading.Event) -> None:
    """Record Ray's object store size once Ray is up (the run does not set it)."""
    import ray

    while not stop.is_set():
        try:
            if ray.is_initialized():
                resources = ray.cluster_resources()
                into["object_store_bytes"] = resources.get("object_store_memory")
                into["ray_cpus"] = resources.get("CPU")
                return
        except Exception:  # Ray not ready yet; a measurement only
            pass
        stop.wait(0.5)


def child_main(toml: Path, result_path: Path) -> int:
    """Run one federation (in the child process) and write what the driver side saw."""
    from .common import quiet_logging, run_federation

    quiet_logging()
    import coordinator.rounds as rounds

    marks: dict[str, float] = {}
    ray_info: dict[str, Any] = {}
    stop = threading.Event()
    threading.Thread(target=_object_store, args=(ray_info, stop), daemon=True).start()
    label = f"scale {toml.parent.name}"
    with (
        _timed(rounds, "wait_for_nodes", marks, "connect"),
        _timed(rounds, "run_handshake", marks, "handshake"),
    ):
        marks["start"] = time.perf_counter()
        run = run_federation(toml, label=label, probe=True)
    stop.set()
    durations = run.round_durations_s
    result = {
        "auc": run.auc,
        "log_loss": run.log_loss,
        "max_epsilon": run.max_epsilon,
        "round_durations_s": durations,
        "round_s": float(statistics.median(durations[1:] or durations)),
        "ray_start_s": marks["connect_start"] - marks["start"],
        "connect_s": marks["connect_end"] - marks["connect_start"],
        "handshake_s": marks["handshake_end"] - marks["handshake_start"],
        "federation_wall_s": run.wall_s,
        "rounds_failed": run.rounds_failed,
        "phases": run.phases,
        "object_store_bytes": ray_info.get("object_store_bytes"),
        "ray_cpus": ray_info.get("ray_cpus"),
    }
    result_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


# --- fits and the part -----------------------------------------------------------------


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> dict[str, float]:
    """Least squares y = a + b·x, and the exponent k of y ~ x^k between the ends."""
    b, a = np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)
    exponent = math.log(ys[-1] / ys[0]) / math.log(xs[-1] / xs[0]) if ys[0] > 0 else math.nan
    return {"intercept": float(a), "slope": float(b), "exponent": exponent}


def growth_word(exponent: float) -> str:
    if math.isnan(exponent):
        return "unknown"
    if exponent < 0.85:
        return "sublinear"
    return "superlinear" if exponent > 1.15 else "linear"


def secret_context_bytes(work: Path, *, copies: int = 20) -> float:
    """Memory one loaded CKKS secret context holds (RSS growth per context, this process):
    a worker keeps the last ``participants.keys.CACHE_SIZE`` it has loaded."""
    from privacy.he import CKKSParams
    from privacy.he.secret import SecretContext

    params = CKKSParams(poly_modulus_degree=SETTINGS.poly_modulus_degree,
                        coeff_mod_bit_sizes=SETTINGS.coeff_mod_bit_sizes,
                        global_scale_bits=SETTINGS.global_scale_bits)  # fmt: skip
    path = work / "secret.ckks"
    path.write_bytes(SecretContext.generate(params).serialize(include_secret_key=True))
    path.chmod(0o600)
    before = _rss()
    kept = [SecretContext.load(path) for _ in range(copies)]
    grown = (_rss() - before) / len(kept)
    path.unlink()
    return grown


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _memory_total() -> int:
    total = memory_total_bytes()
    if total is None:
        raise BenchError("no MemTotal in /proc/meminfo")
    return total


def run(work: Path, *, quick: bool) -> dict[str, Any]:
    work = fresh_dir(work)
    settings = QUICK_SETTINGS if quick else SETTINGS
    counts = QUICK_NODE_COUNTS if quick else NODE_COUNTS
    points = []
    for n in counts:
        progress(
            f"scale: {n} nodes, {SAMPLE_FRACTION:.0%} sampled, dp+he, {settings.rounds} rounds"
        )
        points.append(run_point(work, n, settings=settings, label=f"scale n={n}"))
        _note(points[-1])
    document: dict[str, Any] = {
        "settings": settings.describe()
        | {"target_epsilon": TARGET_EPSILON, "sample_fraction": SAMPLE_FRACTION,
           "min_participants": MIN_PARTICIPANTS, "rows_per_node": ROWS_PER_NODE},
        "points": points,
        "memory_total_bytes": _memory_total(),
        "secret_context_bytes": secret_context_bytes(work),
        "stop_bytes": STOP_BYTES,
        "quick": quick,
    }  # fmt: skip
    if quick or len(points) < 2:
        return document
    document |= _fits(points, budget=document["memory_total_bytes"])
    verify_n = document["verify_nodes"]
    progress(f"scale: verifying at {verify_n} nodes (extrapolated largest "
             f"{document['largest_nodes_pss'] or 'unbounded'}; predicted "
             f"{document['verify_predicted_s'] / 60:.0f} min)")  # fmt: skip
    document["verify_settings"] = VERIFY_SETTINGS.describe()
    document["verify"] = run_point(
        work, verify_n, settings=VERIFY_SETTINGS, label=f"scale n={verify_n}",
        limit_s=VERIFY_LIMIT_S,
    )  # fmt: skip
    _note(document["verify"])
    return document


def _note(point: dict[str, Any]) -> None:
    memory = point["memory"]
    if point.get("stopped"):
        progress(f"scale n={point['nodes']}: {point['stopped']}")
        return
    progress(
        f"scale n={point['nodes']}: handshake {point['handshake_s']:.1f} s, "
        f"{point['round_s']:.1f} s/round, peak {memory['peak_pss_bytes'] / GB:.2f} GB PSS "
        f"({memory['peak_rss_sum_bytes'] / GB:.2f} GB RSS sum), AUC {point['auc']:.4f}"
    )


def _fits(points: list[dict[str, Any]], *, budget: int) -> dict[str, Any]:
    ns = [p["nodes"] for p in points]

    def fit(get: Callable[[dict[str, Any]], float]) -> dict[str, float]:
        return linear_fit(ns, [get(p) for p in points])

    fits = {
        "round_s": fit(lambda p: p["round_s"]),
        "handshake_s": fit(lambda p: p["handshake_s"]),
        "peak_pss_bytes": fit(lambda p: p["memory"]["peak_pss_bytes"]),
        "peak_rss_sum_bytes": fit(lambda p: p["memory"]["peak_rss_sum_bytes"]),
    }
    largest = {
        key: int((budget - fits[key]["intercept"]) / fits[key]["slope"])
        for key in ("peak_pss_bytes", "peak_rss_sum_bytes")
        if fits[key]["slope"] > 0
    }
    largest_pss = largest.get("peak_pss_bytes")
    verify = verify_count(points, fits, largest_pss=largest_pss)
    return {
        "fits": fits,
        "largest_nodes_pss": largest_pss,
        "largest_nodes_rss_sum": largest.get("peak_rss_sum_bytes"),
        "verify_nodes": verify,
        "verify_predicted_s": predicted_seconds(points, fits, verify),
    }


def predicted_seconds(
    points: list[dict[str, Any]], fits: dict[str, dict[str, float]], n: int
) -> float:
    """The verification run's handshake and rounds at ``n`` nodes (:func:`scaled_seconds`)."""
    return scaled_seconds(points, fits, "handshake_s", n) + VERIFY_SETTINGS.rounds * (
        scaled_seconds(points, fits, "round_s", n)
    )


def scaled_seconds(
    points: list[dict[str, Any]], fits: dict[str, dict[str, float]], key: str, n: int
) -> float:
    """``key`` (``handshake_s`` or ``round_s``) at ``n`` nodes: the largest measured count's
    value scaled by the power law between the ends of the fit, taken as at least linear (the
    handshake turns quadratic past the measured counts)."""
    last = points[-1]
    exponent = fits[key]["exponent"]
    power = 1.0 if math.isnan(exponent) else max(1.0, exponent)
    return float(last[key]) * (n / last["nodes"]) ** power


def verify_count(
    points: list[dict[str, Any]], fits: dict[str, dict[str, float]], *, largest_pss: int | None
) -> int:
    """The node count to verify: nine tenths of the memory bound (the upper bound where
    memory does not grow), in steps, shrunk until its predicted time fits the limit, within
    VERIFY_BOUNDS."""
    low, high = VERIFY_BOUNDS
    bound = high if largest_pss is None else int(VERIFY_SHARE * largest_pss)
    n = min(high, max(low, bound // VERIFY_STEP * VERIFY_STEP))
    budget = VERIFY_TIME_SHARE * VERIFY_LIMIT_S
    while n > low and predicted_seconds(points, fits, n) > budget:
        n -= VERIFY_STEP
    return n


def _row(p: dict[str, Any], *, predicted: str = "") -> list[str]:
    memory = p["memory"]
    kinds = memory["pss_by_kind_at_peak"]

    def part(prefix: str) -> str:
        return fmt(sum(v for k, v in kinds.items() if k.startswith(prefix)) / GB, 2)

    done = not p.get("stopped")
    return [
        f"{p['nodes']:,}{predicted}",
        str(p["sampled_per_round"]),
        fmt(p.get("ray_start_s"), 1) if done else "-",
        fmt(p.get("handshake_s"), 1) if done else "-",
        fmt(p.get("round_s"), 1) if done else f"({p['stopped']})",
        fmt(memory["peak_pss_bytes"] / GB, 2),
        fmt(memory["peak_rss_sum_bytes"] / GB, 2),
        f"{part('driver')} / {part('Ray workers')} ({memory['worker_processes_at_peak']}) / "
        f"{part('raylet')} / {part('Ray GCS')} / {part('other')}",
        fmt(memory["dev_shm_peak_bytes"] / GB, 2),
        fmt(p.get("auc")) if done else "-",
    ]


def markdown(result: dict[str, Any]) -> str:
    from participants.keys import CACHE_SIZE

    header = ["nodes", "sampled per round", "Ray start s", "handshake s (all nodes)",
              "s/round (median after round 1)", "peak PSS GB", "peak RSS sum GB",
              "PSS at peak GB: driver / workers (count) / raylet / GCS / other",
              "/dev/shm peak GB", "AUC"]  # fmt: skip
    rows = [_row(p) for p in result["points"]]
    if "verify" in result:
        rows.append(_row(result["verify"], predicted=" (check)"))
    lines = [table(header, rows), ""]
    first = result["points"][0]
    store = first.get("object_store_bytes")
    lines.append(
        f"Ray's object store: {fmt(store / GB if store else None, 2)} GB (Ray's default, "
        f"not set by `fedrisk.simulate`), {first.get('ray_cpus')} CPUs, one ClientApp actor "
        "per CPU (`client_resources` num_cpus = 1). Machine memory "
        f"{result['memory_total_bytes'] / GB:.1f} GB. A worker keeps the CKKS secret contexts "
        f"of the last {CACHE_SIZE} nodes it served (`participants.keys`; "
        f"{result['secret_context_bytes'] / 1e6:.2f} MB each here), not one per node it has "
        "ever served."
    )
    if "fits" not in result:
        return "\n".join(lines)
    fits = result["fits"]

    def per_node(key: str, scale: float, unit: str) -> str:
        f = fits[key]
        ends = f"{result['points'][0]['nodes']} to {result['points'][-1]['nodes']}"
        return (f"{f['intercept'] / scale:.2f} {unit} + {1000 * f['slope'] / scale:.2f} {unit} "
                f"per 1,000 nodes ({growth_word(f['exponent'])}: x^{f['exponent']:.2f} "
                f"from {ends})")  # fmt: skip

    lines += [
        "",
        "**How cost grows with nodes** (least squares over 100, 300 and 1,000 nodes):",
        "",
        f"- time per round: {per_node('round_s', 1, 's')}; a round trains 10 % of the nodes,",
        "  so its cost per sampled node is the slope times 10;",
        f"- handshake: {per_node('handshake_s', 1, 's')};",
        f"- peak memory (PSS): {per_node('peak_pss_bytes', GB, 'GB')};",
        f"- peak memory (RSS sum): {per_node('peak_rss_sum_bytes', GB, 'GB')}.",
        "",
        "What makes time grow faster than the nodes is Flower's simulation engine, not the "
        "federation's work (each sampled node trains and encrypts the same 200 rows): every "
        "0.1 s its dispatcher (`flwr.server.superlink.fleet.vce.vce_api."
        "add_messages_to_queue`, Flower 1.41) asks the in-memory link state for the next "
        "message of each of the n nodes, and each ask scans every stored message under the "
        "state's lock, so one sweep costs n times the messages in flight: all n at the "
        "handshake (quadratic), a tenth of n in a round.",
        "",
        largest_line(result),
    ]  # fmt: skip
    check = result.get("verify")
    if check is not None:
        f = fits["peak_pss_bytes"]
        predicted = (f["intercept"] + f["slope"] * check["nodes"]) / GB
        measured = check["memory"]["peak_pss_bytes"] / GB
        outcome = (
            f"the run was {check['stopped']}"
            if check.get("stopped")
            else f"it ran to the end at {measured:.2f} GB PSS"
        )
        lines.append(
            f"Checked by running {check['nodes']:,} nodes for {VERIFY_SETTINGS.rounds} rounds "
            f"(the largest count the time fits let finish within {VERIFY_LIMIT_S / 60:.0f} "
            f"minutes, predicted {result['verify_predicted_s'] / 60:.0f}): the memory fit "
            f"predicts {predicted:.2f} GB; {outcome}."
        )
    return "\n".join(lines)


#: An extrapolation this many times past the largest measured count says only that memory
#: is not what limits the node count.
FAR_BEYOND = 10


def largest_line(result: dict[str, Any]) -> str:
    """The largest node count the memory fit allows, and what limits it in practice."""
    budget = f"{result['memory_total_bytes'] / GB:.1f} GB"
    largest = result.get("largest_nodes_pss")
    if largest is None:
        return f"**Largest node count in {budget}**: memory did not grow with the node count."
    rss = result.get("largest_nodes_rss_sum")
    line = (
        f"**Largest node count in {budget}**, extrapolated: {largest:,} nodes by PSS"
        + (f" ({rss:,} by the RSS sum, which counts shared pages once per process)" if rss
           else "")
        + "."
    )  # fmt: skip
    points, fits = result["points"], result["fits"]
    measured = points[-1]["nodes"]
    if largest < FAR_BEYOND * measured:
        return line
    handshake = scaled_seconds(points, fits, "handshake_s", largest) / 3600
    per_round = scaled_seconds(points, fits, "round_s", largest) / 3600
    return (
        f"{line} That is {largest / measured:,.0f} times the largest count measured, so it "
        "says only that memory does not limit the node count on this machine; time does: at "
        f"that count the time fits (power laws, at least linear) predict {handshake:,.0f} h "
        f"for the handshake and {per_round:,.0f} h per round."
    )


def _main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "--child":
        return child_main(Path(argv[1]), Path(argv[2]))
    raise SystemExit("usage: python -m bench.scale --child FEDERATION.toml RESULT.json")


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
