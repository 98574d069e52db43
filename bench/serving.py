"""The scoring API under load on loopback: one part (IoT) and two parts (farmer credit).

The demo scenario is generated with enough farmers for a portfolio run of 100,000 subjects
held by both the bank and the government platform; the farmer-credit model (vertical LR,
plaintext, 2 epochs) and the IoT model (2 rounds) are trained through Flower as `fedrisk
train` trains them, every scoreable subject is granted `credit_scoring` consent to the bench
app's institution (in bulk through the consent store, the ledger evidence through the
registry's reconciliation), and then, as separate processes on loopback: each participant
node (`fedrisk serve --only NODE`), the scoring API (`fedrisk serve --only api`), and an
open-loop load generator (`python -m bench.loadgen`, latency from each request's scheduled
start), at 50, 200 (the target) and 400 requests/s, with the CPU each process spent per
request. Every request passes the token check, the quota, the consent check (SQLite) and a
ledger append. Then one batch request scores the 100,000 subjects, and the two-part model is
loaded again at 200 requests/s with the API's consent store in PostgreSQL.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from .common import BenchError, fmt, fresh_dir, progress, table, verdict

SEED = 7
FARMERS, QUICK_FARMERS = 118_000, 3_000
BATCH, QUICK_BATCH = 100_000, 2_000
RATE = 200.0
#: Also measured below and above the target rate, to show the headroom.
RATES = (50.0, RATE, 2 * RATE)
DURATION_S, QUICK_DURATION_S = 15.0, 3.0
TARGET_ONE_PART_P99_MS = 25.0
TARGET_TWO_PARTS_P99_MS = 50.0
TARGET_BATCH_S = 60.0
API_PORT, NODE_PORT = 18080, 18101
INSTITUTION = "demo-bank"


def _train(root: Path, *, quick: bool) -> dict[str, Any]:
    import fedrisk
    from models.federation import load_federation
    from participants.demo import generate_scenario, write_iot_federation, write_vertical_federation

    farmers = QUICK_FARMERS if quick else FARMERS
    progress(f"serving: scenario with {farmers:,} farmers")
    manifest = generate_scenario(
        root, seed=SEED, n_farmers=farmers, n_smes=500, firms_per_factory=60
    )
    vertical = write_vertical_federation(
        manifest,
        root / "farmer-credit-federation.toml",
        model="farmer_credit",
        privacy="none",
        epochs=2,
        batch_size=4096,
    )
    iot = write_iot_federation(manifest, root / "iot-federation.toml", privacy="none", rounds=2)
    out = {}
    for path in (vertical, iot):
        spec = load_federation(path)
        progress(f"serving: training {spec.name} ({spec.mode}) through Flower")
        started = time.perf_counter()
        fedrisk.simulate(spec)
        out[spec.name] = {"train_s": time.perf_counter() - started}
    return out


def _subjects(path: Path) -> list[str]:
    from models.federation import load_federation
    from models.tabular import load_table
    from participants.local_data import declared_schema

    spec = load_federation(path)
    held = []
    for p in spec.participants:
        held.append(
            set(map(str, load_table(p.file, declared_schema(spec, p), require_label=False).ids))
        )
    return sorted(set.intersection(*held) if spec.mode == "vertical" else set.union(*held))


def _consent(root: Path, models: dict[str, list[str]]) -> list[Any]:
    """Grant every subject credit_scoring consent to INSTITUTION for its model's categories
    (the service's SQLite store and the ledger); the grant events."""
    from consent.grants import Grant, GrantEvent, GrantId, SubjectId
    from consent.receipts import Controller
    from consent.registry import ConsentRegistry
    from models.registry import ModelRegistry

    registry = ModelRegistry(root / "runs" / "registry")
    consent = ConsentRegistry.in_folder(
        root / "serving",
        controller=Controller(name="Bench Bank", contact="DPO", email="dpo@bank.example"),
    )
    now = datetime.now(UTC)
    events = []
    for model, subjects in models.items():
        card = registry.latest(model).card
        categories = sorted({c for cs in card.data_categories.values() for c in cs})
        for n, subject in enumerate(subjects):
            grant = Grant(
                grant_id=GrantId(f"{model}-{n}"),
                subject_id=SubjectId(subject),
                institution=INSTITUTION,
                purpose="credit_scoring",
                categories=frozenset(categories),
                starts_at=now - timedelta(days=1),
                expires_at=now + timedelta(days=365),
                evidence_hash="ab" * 32,
                channel="bench",
            )
            events.append(GrantEvent.granted(grant, at=now - timedelta(days=1)))
    progress(f"serving: recording {len(events):,} consents (store, then ledger evidence)")
    for start in range(0, len(events), 50_000):
        consent.store.append(events[start : start + 50_000])
    consent.reconcile()
    consent.close()
    return events


def _postgresql_run(
    work: Path,
    *,
    root: Path,
    env: dict[str, str],
    events: list[Any],
    servers: dict[str, int],
    processes: list[tuple[str, subprocess.Popen[bytes]]],
    load: dict[str, Any],
) -> dict[str, Any]:
    """The two-part model at the target rate with the API's consent store in PostgreSQL (a
    throwaway server from Debian's binaries, fsync on): the same grants, a new API process."""
    from consent.store import SQLAlchemyConsentStore
    from tests.support.postgres import PostgresUnavailableError, postgres_server

    try:
        with (
            postgres_server(durable=True) as server,
            server.fresh_database(prefix="fedrisk_bench_serving") as pg_url,
        ):
            progress(f"serving: the same {len(events):,} consents into PostgreSQL")
            with SQLAlchemyConsentStore(pg_url) as store:
                for start in range(0, len(events), 50_000):
                    store.append(events[start : start + 50_000])
            url, api = processes[-1]
            api.terminate()
            api.wait(timeout=30)
            api = _start(root, "api", {**env, "FEDRISK_COORD_CONSENT_DATABASE_URL": pg_url})
            processes[-1] = (url, api)
            servers["api"] = api.pid
            _wait_ready(url, api)
            progress(f"serving: demo-farmer-credit at {RATE:.0f}/s, consent in PostgreSQL")
            got = _load(work, rate=RATE, servers=servers, **load)
            progress(f"serving: PostgreSQL p50 {got['p50_ms']:.1f} ms, p99 {got['p99_ms']:.1f} ms")
            api.terminate()
            api.wait(timeout=30)
            return got
    except PostgresUnavailableError as exc:
        progress(f"serving: no PostgreSQL run ({exc})")
        return {"error": str(exc)}


def _start(root: Path, only: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [
        str(Path(sys.executable).parent / "fedrisk"),
        "serve",
        "--root",
        str(root),
        "--port",
        str(API_PORT),
        "--node-port",
        str(NODE_PORT),
        "--only",
        only,
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _require_free(ports: list[int]) -> None:
    """Refuse to start if another server holds a port (its answers would be measured)."""
    for port in ports:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                raise BenchError(
                    f"port {port} is in use on 127.0.0.1: stop the server holding it "
                    "(another `fedrisk serve`?) and run the benchmark again"
                ) from None


def _wait_ready(url: str, process: subprocess.Popen[bytes], *, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(
                f"{url} exited: {process.stderr.read().decode()[-1500:] if process.stderr else ''}"
            )
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise BenchError(f"{url} did not become ready in {timeout_s:.0f} s")


def _load(
    work: Path,
    *,
    url: str,
    token: str,
    model: str,
    subjects: list[str],
    duration_s: float,
    rate: float,
    servers: dict[str, int],
) -> dict[str, Any]:
    """One open-loop run after a warm-up: the load generator's figures, plus the CPU time
    per answered request of the API, of the participant nodes together and of the load
    generator itself (from /proc and getrusage: where a 2-core machine's time goes)."""
    ids = work / f"{model}-subjects.txt"
    ids.write_text("\n".join(subjects), encoding="utf-8")
    out = work / f"{model}-{rate:.0f}-load.json"

    def generate(seconds: float, target: Path) -> None:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.loadgen",
                "--url",
                url,
                "--token",
                token,
                "--model",
                model,
                "--subjects",
                str(ids),
                "--rate",
                str(rate),
                "--duration-s",
                str(seconds),
                "--out",
                str(target),
            ],
            check=True,
        )

    generate(2.0, work / "warmup.json")  # connections, the IoT routing directory
    before = {name: _cpu_s(pid) for name, pid in servers.items()}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    generate(duration_s, out)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    got: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    answered = max(1, sum(got["statuses"].values()))
    spent = {name: _cpu_s(pid) - before[name] for name, pid in servers.items()}
    got["cpu_ms_per_request"] = {
        "api": 1000 * spent.pop("api") / answered,
        "nodes": 1000 * sum(spent.values()) / answered,
        "load_generator": 1000
        * (after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime)
        / answered,
    }
    return got


def _cpu_s(pid: int) -> float:
    """User and system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(work: Path, *, quick: bool) -> dict[str, Any]:
    from coordinator.serving.apps import AppRegistry
    from participants.serving.run import node_names

    work = fresh_dir(work)
    root = work / "scenario"
    env = {**os.environ, "FEDRISK_HOME": str(work / "home")}
    os.environ["FEDRISK_HOME"] = env["FEDRISK_HOME"]
    out: dict[str, Any] = {"training": _train(root, quick=quick)}
    farmers = _subjects(root / "farmer-credit-federation.toml")
    firms = _subjects(root / "iot-federation.toml")
    out["subjects"] = {"demo-farmer-credit": len(farmers), "demo-iot": len(firms)}
    events = _consent(root, {"demo-farmer-credit": farmers, "demo-iot": firms})
    secret = AppRegistry(root / "serving" / "apps.json").add(
        "bench-app", institution=INSTITUTION, scopes=["score:*"], rate_per_s=10_000, burst=10_000
    )
    names = node_names(sorted(root.glob("*federation.toml")))
    _require_free([API_PORT, *(NODE_PORT + k for k in range(len(names)))])
    processes = [
        (f"http://127.0.0.1:{NODE_PORT + k}", _start(root, n, env)) for k, n in enumerate(names)
    ]
    url = f"http://127.0.0.1:{API_PORT}"
    processes.append((url, _start(root, "api", env)))
    pids = [process.pid for _, process in processes]
    servers = dict(zip([*names, "api"], pids, strict=True))
    try:
        for where, process in processes:
            _wait_ready(where, process)
        token = httpx.post(
            f"{url}/v1/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "bench-app",
                "client_secret": secret,
            },
        ).json()["access_token"]
        duration = QUICK_DURATION_S if quick else DURATION_S
        for model, subjects, parts in (("demo-iot", firms, 1), ("demo-farmer-credit", farmers, 2)):
            by_rate = {}
            for rate in RATES:
                progress(f"serving: {model} ({parts} part(s)) at {rate:.0f}/s for {duration:.0f} s")
                got = _load(work, url=url, token=token, model=model, subjects=subjects,
                            duration_s=duration, rate=rate, servers=servers)  # fmt: skip
                progress(f"serving: {model} p50 {got['p50_ms']:.1f} ms, p99 {got['p99_ms']:.1f} ms")
                by_rate[f"{rate:.0f}"] = got
            out[model] = {"parts": parts, **by_rate[f"{RATE:.0f}"], "by_rate": by_rate}
        size = min(QUICK_BATCH if quick else BATCH, len(farmers))
        progress(f"serving: one batch request of {size:,} farmers")
        started = time.perf_counter()
        answer = httpx.post(
            f"{url}/v1/models/demo-farmer-credit/score/batch",
            json={"subject_ids": farmers[:size]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=600,
        )
        seconds = time.perf_counter() - started
        body = answer.json() if answer.status_code == 200 else {}
        out["batch"] = {
            "subjects": size,
            "seconds": seconds,
            "status": answer.status_code,
            "scored": len(body.get("results", [])),
            "refused": len(body.get("refused", [])),
        }
        progress(f"serving: batch of {size:,} in {seconds:.1f} s (HTTP {answer.status_code})")
        farmer_events = [e for e in events if e.grant_id.startswith("demo-farmer-credit-")]
        load = {"url": url, "token": token, "model": "demo-farmer-credit",
                "subjects": farmers, "duration_s": duration}  # fmt: skip
        out["postgresql"] = _postgresql_run(
            work,
            root=root,
            env=env,
            events=farmer_events,
            servers=servers,
            processes=processes,
            load=load,
        )
    finally:
        for _, process in processes:
            process.terminate()
        for _, process in processes:
            process.wait(timeout=30)
    out["targets"] = {
        "one_part_p99": {"value": out["demo-iot"]["p99_ms"], "limit": TARGET_ONE_PART_P99_MS},
        "two_parts_p99": {
            "value": out["demo-farmer-credit"]["p99_ms"],
            "limit": TARGET_TWO_PARTS_P99_MS,
        },
        "batch_s": {
            "value": out["batch"]["seconds"] if out["batch"]["status"] == 200 else None,
            "limit": TARGET_BATCH_S,
        },
    }
    for target in out["targets"].values():
        target["pass"] = target["value"] is not None and target["value"] <= target["limit"]
    return out


def _cpu_cell(cpu: dict[str, float] | None) -> str:
    if cpu is None:
        return "-"
    return f"{cpu['api']:.2f}, {cpu['nodes']:.2f}, {cpu['load_generator']:.2f}"


def _ceiling(result: dict[str, Any]) -> list[str]:
    """What the CPU per request says of the API's limit (one process, one event loop)."""
    cells = []
    for model in ("demo-iot", "demo-farmer-credit"):
        cpu = result[model].get("cpu_ms_per_request")
        if cpu and cpu["api"] > 0:
            cells.append(f"{model} {cpu['api']:.2f} ms, a ceiling near {1000 / cpu['api']:,.0f}/s")
    if not cells:
        return []
    return [
        f"CPU per request in the API process at {RATE:.0f}/s: {'; '.join(cells)} for one "
        "process (token, quota, consent check, assertion signing, fan-out, reason codes and "
        "the ledger append all run in it; the nodes and the load generator run beside it).",
        "",
    ]


def _row(label: str, parts: int, r: dict[str, Any]) -> list[str]:
    return [
        label,
        str(parts),
        f"{r['rate_achieved']:.0f} / {r['rate_asked']:.0f}",
        f"{r['p50_ms']:.1f}",
        f"{r['p90_ms']:.1f}",
        f"{r['p99_ms']:.1f}",
        f"{r['max_ms']:.0f}",
        _cpu_cell(r.get("cpu_ms_per_request")),
        ", ".join(f"{k}: {v}" for k, v in r["statuses"].items()),
    ]


def markdown(result: dict[str, Any]) -> str:
    rows = [
        _row(model, result[model]["parts"], r)
        for model in ("demo-iot", "demo-farmer-credit")
        for r in result[model].get("by_rate", {"": result[model]}).values()
    ]
    postgresql = result.get("postgresql", {})
    if "p99_ms" in postgresql:
        rows.append(_row("demo-farmer-credit, consent in PostgreSQL", 2, postgresql))
    t = result["targets"]
    one, two = t["one_part_p99"], t["two_parts_p99"]
    b = result["batch"]
    return "\n".join(
        [
            table(
                [
                    "model",
                    "parts",
                    "requests/s (done / asked)",
                    "p50 ms",
                    "p90 ms",
                    "p99 ms",
                    "max ms",
                    "CPU ms / request: API, nodes, load generator",
                    "HTTP statuses",
                ],
                rows,
            ),
            "",
            f"One part: p99 {one['value']:.1f} ms ({verdict(one['pass'])}, target <= "
            f"{TARGET_ONE_PART_P99_MS:.0f} ms at {RATE:.0f}/s). Two parts: p99 "
            f"{two['value']:.1f} ms ({verdict(two['pass'])}, target <= "
            f"{TARGET_TWO_PARTS_P99_MS:.0f} ms).",
            "",
            f"Batch: {b['subjects']:,} farmers in one request, {fmt(b['seconds'], 1)} s end to end "
            f"({b['scored']:,} scored, {b['refused']:,} refused; {verdict(t['batch_s']['pass'])}, "
            f"target <= {TARGET_BATCH_S:.0f} s), chunks of 2,000 subjects per party call.",
            "",
            *_ceiling(result),
            "The PostgreSQL row: the same grants in a throwaway PostgreSQL server on loopback "
            "(Debian's binaries, fsync on), the API restarted with "
            "`FEDRISK_COORD_CONSENT_DATABASE_URL`; its consent check runs in a worker thread "
            "(the PostgreSQL server's own CPU is not in the CPU column)."
            if "p99_ms" in postgresql
            else f"No PostgreSQL run: {postgresql.get('error', 'not measured')}.",
            "",
            f"Subjects: {result['subjects']['demo-farmer-credit']:,} farmers at both parties, "
            f"{result['subjects']['demo-iot']:,} firms at the factory nodes. All processes (API, "
            "8 nodes, load generator) share this machine's 2 cores.",
        ]
    )
