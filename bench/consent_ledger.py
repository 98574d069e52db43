"""Consent check latency at a million grants, and the evidence ledger's throughput and proofs.

Consent: `consent.store` holding 1,000,000 grants of about 330,000 subjects (one to five
grants each, over three purposes, three institutions and five data categories, 10 % of them
withdrawn and some expired) in SQLite, the embedded default, and in PostgreSQL (a throwaway
local server with its crash-safe defaults, started as the tests start theirs), loaded
through the store's `append` in transactions of 10,000 events. Then `store.decide` for
5,000 random subjects (a fifth of them unknown) as the scoring API asks it: purpose
`credit_scoring`, two bank categories, one institution; each call reads the log afresh.
Ledger: `consent.ledger.EvidenceLog` in SQLite (`EvidenceLog.in_folder`): single appends,
each durable in its own transaction, and `append_many` in batches of 10,000 up to 1,000,000
entries (scoring-decision bodies); `verify()` over the whole log; inclusion and consistency
proofs against the tree of 1,000,000 entries for 1,000 random entries and old sizes, each
checked against the root; and the evidence certificate of one entry as `fedrisk ledger
prove` writes it.
"""

from __future__ import annotations

import gc
import json
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .common import BenchError, fresh_dir, progress, table, verdict

SEED = 11
GRANTS, QUICK_GRANTS = 1_000_000, 10_000
LOAD_BATCH = 10_000
QUERIES, QUICK_QUERIES = 5_000, 500
WARM_UP = 200
UNKNOWN_SHARE = 0.2
#: The per-request check must not be what makes scoring slow (SQLite, the default store).
P99_LIMIT_MS = 2.0

LEDGER_ENTRIES, QUICK_LEDGER_ENTRIES = 1_000_000, 10_000
LEDGER_BATCH = 10_000
SINGLE_APPENDS, QUICK_SINGLE_APPENDS = 2_000, 200
PROOFS, QUICK_PROOFS = 1_000, 200

AT = datetime(2026, 6, 1, tzinfo=UTC)
INSTITUTIONS = (("bank-a", 0.5), ("bank-b", 0.3), ("bank-c", 0.2))
PURPOSES = (("credit_scoring", 0.5), ("model_training", 0.3), ("marketing", 0.2))
CATEGORIES = ("bank.transactions", "bank.loans", "gov.agri", "gov.tax", "iot.energy")
QUERY = {
    "purpose": "credit_scoring",
    "categories": ("bank.transactions", "bank.loans"),
    "institution": "bank-a",
}


# --- consent ---------------------------------------------------------------------------


def _pick(rng: random.Random, weighted: Sequence[tuple[str, float]]) -> str:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def _subject(k: int) -> str:
    return f"F{100_000_000 + k}"


def grant_events(n_grants: int, *, seed: int) -> tuple[list[Any], int]:
    """``n_grants`` grants (and the withdrawals of some), subject by subject; the events and
    the number of subjects."""
    from consent import Grant, GrantEvent

    rng = random.Random(seed)
    events: list[Any] = []
    made, subjects = 0, 0
    while made < n_grants:
        subject = _subject(subjects)
        subjects += 1
        home = _pick(rng, INSTITUTIONS)  # most of a subject's grants go to their own bank
        for _ in range(min(rng.randint(1, 5), n_grants - made)):
            made += 1
            categories = set(rng.sample(CATEGORIES, rng.randint(1, 4)))
            if rng.random() < 0.7:
                categories |= {"bank.transactions", "bank.loans"}
            starts_at = AT - timedelta(days=rng.uniform(1, 700))
            lasts = None if rng.random() < 0.1 else timedelta(days=rng.uniform(30, 730))
            grant = Grant(
                grant_id=f"{rng.getrandbits(128):032x}",
                subject_id=subject,
                institution=home if rng.random() < 0.8 else _pick(rng, INSTITUTIONS),
                purpose=_pick(rng, PURPOSES),
                categories=frozenset(categories),
                starts_at=starts_at,
                expires_at=None if lasts is None else starts_at + lasts,
                evidence_hash=f"sha256:{rng.getrandbits(256):064x}",
                channel=rng.choice(("mobile_app", "branch", "web")),
            )
            events.append(GrantEvent.granted(grant, at=starts_at))
            if rng.random() < 0.1:
                withdrawn_at = starts_at + (AT - starts_at) * rng.uniform(0.1, 0.9)
                events.append(GrantEvent.withdrawn(grant.grant_id, at=withdrawn_at))
    return events, subjects


def _percentiles_ms(samples_s: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples_s)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50_ms": 1e3 * statistics.median(ordered),
        "p99_ms": 1e3 * q[98],
        "max_ms": 1e3 * ordered[-1],
        "mean_ms": 1e3 * statistics.fmean(ordered),
    }


@dataclass(frozen=True)
class _Backend:
    """A consent store under test, how big its database is, and what it does after a bulk
    load before serving (PostgreSQL: ``VACUUM ANALYZE`` and a checkpoint, as an operator
    would, so that autovacuum and the checkpointer do not run during the timed calls)."""

    name: str
    store: Any
    size_bytes: Callable[[], int]
    settle: Callable[[], None] = lambda: None
    version: str = ""


def _measure(
    backend: _Backend, events: Sequence[Any], queries: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load ``events``, then time ``decide`` for each of ``queries``: the figures and the
    decisions."""
    store = backend.store
    progress(f"consent_ledger: {backend.name}, loading {len(events):,} events")
    started = time.perf_counter()
    for start in range(0, len(events), LOAD_BATCH):
        store.append(events[start : start + LOAD_BATCH])
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    backend.settle()
    settle_s = time.perf_counter() - started
    query = {**QUERY, "at": AT}
    for subject in queries[:WARM_UP]:
        store.decide(subject, **query)
    samples, decisions = [], {}
    for subject in queries:
        t0 = time.perf_counter()
        decision = store.decide(subject, **query)
        samples.append(time.perf_counter() - t0)
        decisions[subject] = decision
    t0 = time.perf_counter()
    batched = store.decide_many(queries, **query)
    many_s = time.perf_counter() - t0
    outcomes = Counter("allowed" if d.allowed else str(d.reason) for d in decisions.values())
    figures = {
        "events": len(events),
        "load_s": load_s,
        "load_events_per_s": len(events) / load_s,
        "settle_s": settle_s,
        "database_mb": backend.size_bytes() / 1e6,
        "queries": len(queries),
        "decide": _percentiles_ms(samples),
        "decide_many_s": many_s,
        "decide_many_us_per_subject": 1e6 * many_s / len(set(queries)),
        "decide_many_agrees": batched == decisions,
        "outcomes": dict(sorted(outcomes.items())),
        "version": backend.version,
    }
    progress(f"consent_ledger: {backend.name} p99 {figures['decide']['p99_ms']:.3f} ms")
    return figures, decisions


def _file_bytes(path: Path) -> int:
    """A SQLite database's size on disk: the file and its write-ahead log."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def sqlite_settings(path: Path) -> str:
    """SQLite's version and the journal and sync modes the product's engine opens ``path``
    with (:func:`consent.sqlite.sqlite_engine`, used by both the store and the ledger)."""
    from sqlalchemy import text

    from consent.sqlite import sqlite_engine

    engine = sqlite_engine(path)
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SELECT sqlite_version()")).scalar_one()
            journal = conn.execute(text("PRAGMA journal_mode")).scalar_one()
            sync = conn.execute(text("PRAGMA synchronous")).scalar_one()
    finally:
        engine.dispose()
    sync_name = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(sync, str(sync))
    return f"{version}, journal_mode={journal}, synchronous={sync_name}"


@contextmanager
def _sqlite(work: Path) -> Iterator[_Backend]:
    from consent import SQLiteConsentStore

    path = work / "consent.db"
    with SQLiteConsentStore(path) as store:
        yield _Backend("SQLite", store, lambda: _file_bytes(path), version=sqlite_settings(path))


@contextmanager
def _postgresql() -> Iterator[_Backend]:
    """A consent store in a fresh database of a throwaway server (crash-safe settings)."""
    from sqlalchemy import create_engine, text

    from consent import SQLAlchemyConsentStore
    from tests.support.postgres import PostgresUnavailableError, postgres_server

    def run(url: str, *statements: str) -> Any:
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                results = [conn.execute(text(sql)) for sql in statements]
                return results[-1].scalar() if results[-1].returns_rows else None
        finally:
            engine.dispose()

    try:
        with (
            postgres_server(durable=True) as server,
            server.fresh_database(prefix="fedrisk_bench") as url,
            SQLAlchemyConsentStore(url) as store,
        ):
            yield _Backend(
                "PostgreSQL",
                store,
                lambda: int(run(url, "SELECT pg_database_size(current_database())")),
                settle=lambda: run(url, "VACUUM ANALYZE consent_events", "CHECKPOINT"),
                version=str(run(url, "SHOW server_version")),
            )
    except PostgresUnavailableError as exc:
        raise BenchError(str(exc)) from exc


def _consent(work: Path, *, quick: bool) -> dict[str, Any]:
    n_grants = QUICK_GRANTS if quick else GRANTS
    progress(f"consent_ledger: generating {n_grants:,} grants")
    # A million events in this process's heap are the benchmark's, not the store's: keep the
    # collector from walking them while they are made and in the middle of a timed call.
    gc.disable()
    events, subjects = grant_events(n_grants, seed=SEED)
    gc.collect()
    gc.freeze()
    gc.enable()
    rng = random.Random(SEED + 1)
    queries = [
        _subject(subjects + rng.randrange(subjects))  # never granted
        if rng.random() < UNKNOWN_SHARE
        else _subject(rng.randrange(subjects))
        for _ in range(QUICK_QUERIES if quick else QUERIES)
    ]
    out: dict[str, Any] = {"grants": n_grants, "subjects": subjects, "query": dict(QUERY)}
    decisions: dict[str, dict[str, Any]] = {}
    try:
        for key, backend in (("sqlite", _sqlite(work)), ("postgresql", _postgresql())):
            with backend as opened:
                out[key], decisions[key] = _measure(opened, events, queries)
    finally:
        del events
        gc.unfreeze()
        gc.collect()
    out["same_decisions"] = decisions["sqlite"] == decisions["postgresql"]
    p99 = out["sqlite"]["decide"]["p99_ms"]
    out["target"] = {"p99_ms": p99, "limit_ms": P99_LIMIT_MS, "pass": p99 <= P99_LIMIT_MS}
    return out


# --- ledger ----------------------------------------------------------------------------


def _bodies(start: int, count: int, rng: random.Random) -> list[dict[str, Any]]:
    """Scoring decisions (one in ten a refusal) as the scoring API writes them; the builder
    runs once per outcome and its output is varied per entry, to keep making them cheap."""
    from consent.ledger.entries import scoring_decision_entry

    common = {"model": "sme_risk", "model_version": "2026.05.1", "app": "lending-app-a"}
    scored = scoring_decision_entry(
        **common, request_hash="", subject_pseudonym="", score=0.5, grant_id="", outcome="scored",
        at=AT,
    )  # fmt: skip
    refused = scoring_decision_entry(
        **common, request_hash="", subject_pseudonym="", score=None, grant_id=None,
        outcome="refused", reason="withdrawn", at=AT,
    )  # fmt: skip
    out = []
    for i in range(start, start + count):
        body = dict(scored if rng.random() < 0.9 else refused)
        body["request_hash"] = f"{rng.getrandbits(256):064x}"
        body["subject"] = f"{rng.getrandbits(256):064x}"
        if body["outcome"] == "scored":
            body["score"] = round(rng.random(), 6)
            body["grant_id"] = f"{rng.getrandbits(128):032x}"
        at = AT + timedelta(milliseconds=i)
        body["at"] = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        out.append(body)
    return out


def _proofs(log: Any, size: int, count: int, rng: random.Random) -> dict[str, Any]:
    from consent.ledger import merkle

    root = log.root(size)
    inclusion: dict[str, list[float]] = {"s": [], "hashes": []}
    all_ok = True
    for index in (rng.randrange(size) for _ in range(count)):
        t0 = time.perf_counter()
        path = log.inclusion_proof(index, size)
        inclusion["s"].append(time.perf_counter() - t0)
        inclusion["hashes"].append(len(path))
        leaf = log.entry(index).leaf_hash
        all_ok &= merkle.verify_inclusion(leaf, index=index, size=size, path=path, root=root)
    consistency: dict[str, list[float]] = {"s": [], "hashes": []}
    for old in (rng.randrange(1, size) for _ in range(count)):
        t0 = time.perf_counter()
        proof = log.consistency_proof(old, size)
        consistency["s"].append(time.perf_counter() - t0)
        consistency["hashes"].append(len(proof))
        all_ok &= merkle.verify_consistency(
            old_size=old, new_size=size, old_root=log.root(old), new_root=root, proof=proof
        )

    def summary(found: dict[str, list[float]]) -> dict[str, Any]:
        hashes = found["hashes"]
        return {
            **_percentiles_ms(found["s"]),
            "hashes_median": statistics.median(hashes),
            "hashes_max": max(hashes),
            "bytes_median": 32 * statistics.median(hashes),
            "bytes_max": 32 * max(hashes),
        }

    return {
        "tree_size": size,
        "count": count,
        "inclusion": summary(inclusion),
        "consistency": summary(consistency),
        "all_verified": all_ok,
    }


def _ledger(work: Path, *, quick: bool) -> dict[str, Any]:
    from consent.ledger import EvidenceLog, LedgerSigner
    from consent.ledger.certificate import make_certificate, verify_certificate

    total = QUICK_LEDGER_ENTRIES if quick else LEDGER_ENTRIES
    singles = QUICK_SINGLE_APPENDS if quick else SINGLE_APPENDS
    rng = random.Random(SEED + 2)
    folder = work / "ledger"
    out: dict[str, Any] = {"entries": total, "batch": LEDGER_BATCH}
    with EvidenceLog.in_folder(folder) as log:
        progress(f"consent_ledger: ledger, {total:,} entries by append_many")
        append_s = 0.0
        for start in range(0, total, LEDGER_BATCH):
            bodies = _bodies(start, min(LEDGER_BATCH, total - start), rng)
            t0 = time.perf_counter()
            log.append_many(bodies)
            append_s += time.perf_counter() - t0
        out["append_many"] = {"seconds": append_s, "entries_per_s": total / append_s}
        head = log.sign_head()
        progress(f"consent_ledger: ledger, {singles:,} single durable appends")
        samples = []
        for body in _bodies(total, singles, rng):
            t0 = time.perf_counter()
            log.append(body)
            samples.append(time.perf_counter() - t0)
        out["single"] = {
            "appends": singles,
            "entries_per_s": singles / sum(samples),
            **_percentiles_ms(samples),
        }
        progress("consent_ledger: ledger, verify()")
        t0 = time.perf_counter()
        report = log.verify(public_key=LedgerSigner.in_folder(folder).public_key)
        verify_s = time.perf_counter() - t0
        out["verify"] = {
            "entries": report.entries,
            "seconds": verify_s,
            "entries_per_s": report.entries / verify_s,
            "ok": report.ok,
        }
        out["database_mb"] = _file_bytes(folder / "ledger.db") / 1e6
        out["sqlite"] = sqlite_settings(folder / "ledger.db")
        progress("consent_ledger: ledger, inclusion and consistency proofs")
        out["proofs"] = _proofs(log, total, QUICK_PROOFS if quick else PROOFS, rng)
        entry = log.entry(rng.randrange(total))
        t0 = time.perf_counter()
        certificate = make_certificate(log, entry.evidence_id)
        make_s = time.perf_counter() - t0
    document = json.dumps(certificate, indent=2, ensure_ascii=False)
    check = verify_certificate(json.loads(document), public_key=head.public_key)
    out["certificate"] = {
        "bytes": len(document.encode()),
        "bytes_compact": len(json.dumps(certificate, separators=(",", ":")).encode()),
        "proof_hashes": len(certificate["inclusion_proof"]),
        "tree_size": certificate["tree_head"]["tree_size"],
        "make_ms": 1e3 * make_s,
        "verifies": check.ok,
    }
    return out


# --- the part --------------------------------------------------------------------------


def run(work: Path, *, quick: bool) -> dict[str, Any]:
    work = fresh_dir(work)
    return {"consent": _consent(work, quick=quick), "ledger": _ledger(work, quick=quick)}


CONSENT_HEADER = (
    "store",
    "events loaded",
    "database MB",
    "p50 ms",
    "p99 ms",
    "max ms",
    "`decide_many`, µs / subject",
)
PROOF_HEADER = ("hashes median / max", "bytes median / max", "p50 ms", "p99 ms")


def _ms(value: float) -> str:
    return f"{value:.3f}"


def markdown(result: dict[str, Any]) -> str:
    consent, ledger = result["consent"], result["ledger"]
    backends = (("SQLite", consent["sqlite"]), ("PostgreSQL", consent["postgresql"]))
    consent_rows = [
        [
            name,
            f"{b['events']:,} in {b['load_s']:.0f} s ({b['load_events_per_s']:,.0f}/s)",
            f"{b['database_mb']:.0f}",
            _ms(b["decide"]["p50_ms"]),
            _ms(b["decide"]["p99_ms"]),
            _ms(b["decide"]["max_ms"]),
            f"{b['decide_many_us_per_subject']:.0f}"
            + ("" if b["decide_many_agrees"] else " (**disagrees**)"),
        ]
        for name, b in backends
    ]
    outcomes = ", ".join(f"{k} {v:,}" for k, v in consent["sqlite"]["outcomes"].items())
    proofs = ledger["proofs"]
    proof_rows = [
        [
            name,
            f"{p['hashes_median']:.0f} / {p['hashes_max']}",
            f"{p['bytes_median']:.0f} / {p['bytes_max']}",
            _ms(p["p50_ms"]),
            _ms(p["p99_ms"]),
        ]
        for name, p in (("inclusion", proofs["inclusion"]), ("consistency", proofs["consistency"]))
    ]
    single, many, check = ledger["single"], ledger["append_many"], ledger["verify"]
    cert = ledger["certificate"]
    target = consent["target"]
    same = "the same" if consent["same_decisions"] else "**not the same**"
    return "\n".join(
        [
            f"**Consent check** (`store.decide`, {consent['sqlite']['queries']:,} subjects "
            f"after {WARM_UP} warm-up calls) with {consent['grants']:,} grants of "
            f"{consent['subjects']:,} subjects. p99 in SQLite {_ms(target['p99_ms'])} ms "
            f"(target <= {target['limit_ms']:g} ms: {verdict(target['pass'])}).",
            "",
            table(CONSENT_HEADER, consent_rows),
            "",
            f"Decisions ({same} in both stores): {outcomes}. SQLite "
            f"{consent['sqlite']['version']} (`consent.sqlite`); PostgreSQL "
            f"{consent['postgresql']['version']} on 127.0.0.1 over TCP, default settings, "
            f"`VACUUM ANALYZE` and `CHECKPOINT` after the load "
            f"({consent['postgresql']['settle_s']:.0f} s).",
            "",
            f"**Ledger** (SQLite {ledger['sqlite']}; {ledger['entries']:,} entries, "
            f"{ledger['database_mb']:.0f} MB):"
            f" `append_many` in batches of {ledger['batch']:,}: {many['entries_per_s']:,.0f} "
            f"entries/s ({many['seconds']:.0f} s); single durable appends: "
            f"{single['entries_per_s']:,.0f} entries/s (p50 {_ms(single['p50_ms'])} ms, "
            f"p99 {_ms(single['p99_ms'])} ms, {single['appends']:,} appends); `verify()` of "
            f"{check['entries']:,} entries: {check['seconds']:.1f} s "
            f"({check['entries_per_s']:,.0f} entries/s, "
            f"{'ok' if check['ok'] else '**problems found**'}).",
            "",
            table([f"proof (tree of {proofs['tree_size']:,})", *PROOF_HEADER], proof_rows),
            "",
            f"{proofs['count']:,} random proofs of each kind, "
            f"{'all' if proofs['all_verified'] else '**not all**'} checked against the root. "
            f"Evidence certificate: {cert['bytes']:,} bytes as `fedrisk ledger prove` writes "
            f"it ({cert['bytes_compact']:,} compact; {cert['proof_hashes']} proof hashes, tree "
            f"head of {cert['tree_size']:,}), made in {cert['make_ms']:.1f} ms, "
            f"{'verifies' if cert['verifies'] else '**does not verify**'} with the published "
            "key.",
        ]
    )
