"""Decision policies: versioned TOML files that turn a model's score into a lending decision.

A policy belongs to one registered model and says, for a new applicant, when to approve,
refer to an officer or decline, and with which credit limit; for an existing customer,
when the limit rises automatically. Hard rules on the application's figures (receivables
overdue, a court case) refer or decline whatever the score. Example::

    [policy]
    name = "iot-working-capital"
    version = "2026.12.0"          # bump on every change: decisions cite it
    model = "demo-iot"             # the registered model whose score it reads
    max_model_age_days = 180       # an older model never approves: refer

    [score]                        # the model's probability of default within 12 months
    approve_below = 0.10
    decline_at_or_above = 0.30     # in between: refer to an officer

    [limit]                        # a new customer's limit by risk band, never above the ask
    by_band = { A = 2000000, B = 1000000, C = 500000, D = 200000 }
    round_down_to = 10000

    [increase]                     # existing customers whose score improved
    min_score_improvement = 0.02   # previous_score - score
    max_score = 0.05
    step = 0.25                    # +25 % of the current limit
    max_limit = 3000000
    require = [{ field = "order_growth", op = ">=", value = 0.0,
                 reason = "the order book must not shrink" }]

    [[rules]]
    field = "payment_delay_days"
    op = ">"
    value = 90
    outcome = "refer"
    reason = "customers pay more than 90 days late"

A policy's identity is its :attr:`DecisionPolicy.digest`, the SHA-256 of its canonical JSON:
two files that differ only in comments or layout are the same policy, and a decision
records the digest so that it can be replayed later against exactly that policy.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Final

from models.errors import did_you_mean
from models.scoring import RISK_BANDS

from .errors import PolicyError

__all__ = [
    "APPLICATION_FIELDS",
    "DEFAULT_POLICIES",
    "OPERATORS",
    "Condition",
    "DecisionPolicy",
    "IncreasePolicy",
    "Rule",
    "install_default_policies",
    "load_policies",
    "load_policy",
    "policy_from_dict",
]

#: The policies shipped for the demo's three models (``fedrisk decide init`` copies them).
DEFAULT_POLICIES: Final = Path(__file__).resolve().parent / "default_policies"
#: Figures an application may carry besides the ones its policy's rules name.
APPLICATION_FIELDS: Final = ("current_limit", "previous_score", "requested_amount")
OPERATORS: Final[Mapping[str, Callable[[float, float], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_BANDS: Final = tuple(band for band, _ in RISK_BANDS)
_TABLES: Final = {
    "policy": {"name", "version", "model", "max_model_age_days", "currency", "description"},
    "score": {"approve_below", "decline_at_or_above"},
    "limit": {"by_band", "round_down_to"},
    "increase": {"min_score_improvement", "max_score", "step", "max_limit", "require"},
    "rules": {"field", "op", "value", "outcome", "reason"},
}


@dataclass(frozen=True)
class Condition:
    """``field op value`` on one figure of the application, with the words for a person."""

    field: str
    op: str
    value: float
    reason: str

    def holds(self, figure: float) -> bool:
        return OPERATORS[self.op](figure, self.value)

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "op": self.op, "value": self.value, "reason": self.reason}


@dataclass(frozen=True)
class Rule:
    """A hard rule: when its condition holds the outcome is at least ``outcome``."""

    condition: Condition
    outcome: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.condition.to_dict(), "outcome": self.outcome}


@dataclass(frozen=True)
class IncreasePolicy:
    """When an existing customer's limit rises by itself, and by how much."""

    min_score_improvement: float
    max_score: float
    step: float
    max_limit: float
    require: tuple[Condition, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_score_improvement": self.min_score_improvement,
            "max_score": self.max_score,
            "step": self.step,
            "max_limit": self.max_limit,
            "require": [c.to_dict() for c in self.require],
        }


@dataclass(frozen=True)
class DecisionPolicy:
    """One version of a model's decision policy (see the module docstring)."""

    name: str
    version: str
    model: str
    max_model_age_days: float
    approve_below: float
    decline_at_or_above: float
    limit_by_band: Mapping[str, float]
    round_down_to: float
    increase: IncreasePolicy | None = None
    rules: tuple[Rule, ...] = ()
    currency: str = "CNY"
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The policy as plain data (what :func:`policy_from_dict` reads back)."""
        return {
            "policy": {
                "name": self.name,
                "version": self.version,
                "model": self.model,
                "max_model_age_days": self.max_model_age_days,
                "currency": self.currency,
                "description": self.description,
            },
            "score": {
                "approve_below": self.approve_below,
                "decline_at_or_above": self.decline_at_or_above,
            },
            "limit": {"by_band": dict(self.limit_by_band), "round_down_to": self.round_down_to},
            "increase": None if self.increase is None else self.increase.to_dict(),
            "rules": [r.to_dict() for r in self.rules],
        }

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the canonical JSON of :meth:`to_dict`: the policy's identity."""
        return hashlib.sha256(canonical(self.to_dict())).hexdigest()

    @property
    def fields(self) -> tuple[str, ...]:
        """Every application figure the policy reads (what a decision records)."""
        named = {r.condition.field for r in self.rules}
        if self.increase is not None:
            named |= {c.field for c in self.increase.require}
        return tuple(sorted(named | set(APPLICATION_FIELDS)))


def canonical(body: Mapping[str, Any]) -> bytes:
    """Sorted-key, compact UTF-8 JSON (the form a digest is taken of)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def load_policy(path: Path | str) -> DecisionPolicy:
    """Read and check a policy file; :class:`PolicyError` names the file and the key."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise PolicyError(file=str(path), key=None, reason=f"cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(file=str(path), key=None, reason=f"not valid TOML: {exc}") from None
    return policy_from_dict(data, source=str(path))


def install_default_policies(folder: Path | str, *, force: bool = False) -> list[Path]:
    """Copy the shipped policies into ``folder`` (where ``fedrisk serve ROOT`` reads them);
    a file already there is kept unless ``force``. The paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted(DEFAULT_POLICIES.glob("*.toml")):
        target = folder / source.name
        if force or not target.exists():
            target.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
            written.append(target)
    return written


def load_policies(folder: Path | str) -> dict[str, DecisionPolicy]:
    """Every ``*.toml`` policy in ``folder`` by the model it decides for (none if the
    folder does not exist); two policies for one model are an error."""
    found: dict[str, DecisionPolicy] = {}
    where: dict[str, Path] = {}
    for path in sorted(Path(folder).glob("*.toml")):
        policy = load_policy(path)
        if policy.model in found:
            raise PolicyError(
                file=str(path),
                key="policy.model",
                reason=f"{where[policy.model]} already decides for {policy.model!r}",
            )
        found[policy.model], where[policy.model] = policy, path
    return found


def policy_from_dict(data: Mapping[str, Any], *, source: str) -> DecisionPolicy:
    """The policy in ``data`` (a parsed policy file or :meth:`DecisionPolicy.to_dict`)."""
    reader = _Reader(source)
    reader.known(data, set(_TABLES), where=None)
    head = reader.table(data, "policy", required=True)
    score = reader.table(data, "score", required=True)
    limit = reader.table(data, "limit", required=True)
    approve = reader.probability(score, "score.approve_below")
    decline = reader.probability(score, "score.decline_at_or_above")
    if not approve <= decline:
        reader.fail(
            "score.approve_below",
            f"{approve} must not exceed score.decline_at_or_above ({decline})",
        )
    increase_table = data.get("increase")
    rules = data.get("rules", [])
    if not isinstance(rules, list):
        reader.fail("rules", "must be an array of tables ([[rules]])")
    return DecisionPolicy(
        name=reader.text(head, "policy.name"),
        version=reader.text(head, "policy.version"),
        model=reader.text(head, "policy.model"),
        max_model_age_days=reader.positive(head, "policy.max_model_age_days"),
        currency=reader.text(head, "policy.currency", default="CNY"),
        description=reader.text(head, "policy.description", default="", empty=True),
        approve_below=approve,
        decline_at_or_above=decline,
        limit_by_band=reader.bands(limit, "limit.by_band"),
        round_down_to=reader.positive(limit, "limit.round_down_to", default=1.0),
        increase=None if increase_table is None else reader.increase(increase_table),
        rules=tuple(reader.rule(rule, f"rules[{k}]") for k, rule in enumerate(rules)),
    )


class _Reader:
    """Typed reads of a parsed policy, each failure a :class:`PolicyError` naming the key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str | None, reason: str) -> None:
        raise PolicyError(file=self.source, key=key, reason=reason)

    def known(self, table: Mapping[str, Any], allowed: set[str], *, where: str | None) -> None:
        for key in table:
            if key not in allowed:
                name = f"{where}.{key}" if where else key
                self.fail(name, f"unknown key{did_you_mean(key, allowed)}")

    def table(self, data: Mapping[str, Any], name: str, *, required: bool) -> Mapping[str, Any]:
        found = data.get(name)
        if found is None and not required:
            return {}
        if not isinstance(found, Mapping):
            self.fail(name, f"the [{name}] table is required" if found is None else "not a table")
        assert isinstance(found, Mapping)
        self.known(found, _TABLES[name], where=name)
        return found

    def _get(self, table: Mapping[str, Any], key: str, default: Any) -> Any:
        leaf = key.rsplit(".", 1)[-1]
        if leaf not in table or table[leaf] is None:
            if default is None:
                self.fail(key, "is required")
            return default
        return table[leaf]

    def text(
        self, table: Mapping[str, Any], key: str, *, default: str | None = None, empty: bool = False
    ) -> str:
        value = self._get(table, key, default)
        if not isinstance(value, str) or (not value.strip() and not empty):
            self.fail(key, f"must be a non-empty string, got {value!r}")
        return str(value)

    def number(self, table: Mapping[str, Any], key: str, *, default: float | None = None) -> float:
        value = self._get(table, key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            self.fail(key, f"must be a finite number, got {value!r}")
        return float(value)

    def positive(
        self, table: Mapping[str, Any], key: str, *, default: float | None = None
    ) -> float:
        value = self.number(table, key, default=default)
        if value <= 0:
            self.fail(key, f"must be > 0, got {value}")
        return value

    def probability(self, table: Mapping[str, Any], key: str) -> float:
        value = self.number(table, key)
        if not 0.0 <= value <= 1.0:
            self.fail(key, f"must lie in [0, 1], got {value}")
        return value

    def bands(self, table: Mapping[str, Any], key: str) -> dict[str, float]:
        found = self._get(table, key, None)
        if not isinstance(found, Mapping) or not found:
            self.fail(key, "must be a non-empty table of risk band -> limit")
        limits: dict[str, float] = {}
        for band in found:
            if band not in _BANDS:
                self.fail(f"{key}.{band}", f"not a risk band; bands are {', '.join(_BANDS)}")
            limits[band] = self.positive(found, f"{key}.{band}")
        return dict(sorted(limits.items()))

    def condition(self, table: Any, key: str, *, extra: frozenset[str] = frozenset()) -> Condition:
        if not isinstance(table, Mapping):
            self.fail(key, "must be a table with field, op, value and reason")
        self.known(table, {"field", "op", "value", "reason"} | extra, where=key)
        op = self.text(table, f"{key}.op")
        if op not in OPERATORS:
            self.fail(f"{key}.op", f"unknown operator {op!r}; use one of {' '.join(OPERATORS)}")
        return Condition(
            field=self.text(table, f"{key}.field"),
            op=op,
            value=self.number(table, f"{key}.value"),
            reason=self.text(table, f"{key}.reason"),
        )

    def rule(self, table: Any, key: str) -> Rule:
        condition = self.condition(table, key, extra=frozenset({"outcome"}))
        outcome = self.text(table, f"{key}.outcome")
        if outcome not in ("refer", "decline"):
            self.fail(f"{key}.outcome", f"must be 'refer' or 'decline', got {outcome!r}")
        return Rule(condition=condition, outcome=outcome)

    def increase(self, table: Any) -> IncreasePolicy:
        if not isinstance(table, Mapping):
            self.fail("increase", "not a table")
        self.known(table, _TABLES["increase"], where="increase")
        require = table.get("require", [])
        if not isinstance(require, list):
            self.fail("increase.require", "must be an array of conditions")
        return IncreasePolicy(
            min_score_improvement=self.number(table, "increase.min_score_improvement"),
            max_score=self.probability(table, "increase.max_score"),
            step=self.positive(table, "increase.step"),
            max_limit=self.positive(table, "increase.max_limit"),
            require=tuple(
                self.condition(c, f"increase.require[{k}]") for k, c in enumerate(require)
            ),
        )
