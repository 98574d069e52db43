"""Federation files: one TOML file describes a federation, its privacy and its participants.

:func:`load_federation` parses and validates the file into frozen dataclasses; every
problem is a :class:`FederationFileError` naming the file and the key
(``federation.rounds``, ``participants[1].file``, ``schema.features[0].type``). Relative
paths are resolved against the TOML file's directory. :func:`dump_federation` writes a
spec back as TOML so that specs round-trip.

Tables: ``[federation]`` (required), ``[privacy.dp]`` (required when the privacy mode uses
DP), ``[privacy.he]``, ``[schema]`` (required for the generic models ``logistic`` and
``mlp``; named product models bring their own), ``[evaluation]``, ``[output]`` and one
``[[participants]]`` per data owner. Defaults are listed on :class:`FederationSpec`.
Unknown keys are refused with a "did you mean" hint, so a typo never silently falls back
to a default.
"""

from __future__ import annotations

import logging
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal, cast

from models.errors import FederationFileError, SchemaError, did_you_mean
from models.schema import TabularSchema
from models.vertical_spec import (
    PROTOCOLS,
    SPLIT_NN_PRIVACY,
    VERTICAL_MODELS,
    VERTICAL_PRIVACY,
    SplitNNSettings,
    VerticalSpec,
    check_product_parties,
    check_vertical_participants,
)

__all__ = [
    "ADAPTIVE_STRATEGIES",
    "CKKS_MAX_COEFF_MODULUS_BITS",
    "DEFAULT_CKKS_CHAIN",
    "DEFAULT_ROUND_TIMEOUT_S",
    "DPSpec",
    "EarlyStoppingSpec",
    "FederationSpec",
    "HESpec",
    "MODEL_NAMES",
    "NO_PRIVACY_WARNING",
    "ParticipantSpec",
    "PrivacyMode",
    "ServerOptimizerSpec",
    "dump_federation",
    "load_federation",
    "toml_value",
]

logger = logging.getLogger(__name__)

Strategy = Literal["fedavg", "fedprox", "fedadam", "fedyogi"]
#: Strategies that step the global model with an adaptive server optimiser.
ADAPTIVE_STRATEGIES: Final = ("fedadam", "fedyogi")
Accountant = Literal["rdp", "prv"]

#: Model spec names a federation may name: two generic architectures, three products.
MODEL_NAMES: Final = ("logistic", "mlp", "farmer_credit", "iot_risk", "sme_risk")
_GENERIC_MODELS: Final = ("logistic", "mlp")
#: Largest total coefficient-modulus bit count per CKKS ring dimension at 128-bit classical
#: security (HomomorphicEncryption.org security standard, as enforced by Microsoft SEAL).
CKKS_MAX_COEFF_MODULUS_BITS: Final[Mapping[int, int]] = MappingProxyType({
    1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881,
})  # fmt: skip
#: Default CKKS chain for horizontal aggregation: one 60-bit data prime (sums only; the
#: participants scale their updates to the weights' magnitude) and a 40-bit special prime.
DEFAULT_CKKS_CHAIN: Final = (60, 40)
#: How long a round waits for replies unless the file says ``round_timeout_s``.
DEFAULT_ROUND_TIMEOUT_S: Final = 3600.0
NO_PRIVACY_WARNING: Final = (
    "privacy mode 'none': the coordinator sees every participant's plain update"
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_NAME_RULE: Final = "use letters, digits, '.', '_' and '-', starting with a letter or digit"


class PrivacyMode(StrEnum):
    """What protects a participant's update: DP-SGD noise, CKKS encryption, both or nothing."""

    NONE = "none"
    DP = "dp"
    HE = "he"
    DP_HE = "dp+he"

    @property
    def uses_dp(self) -> bool:
        """Whether updates come from differentially private training."""
        return self in (PrivacyMode.DP, PrivacyMode.DP_HE)

    @property
    def uses_he(self) -> bool:
        """Whether updates travel CKKS-encrypted."""
        return self in (PrivacyMode.HE, PrivacyMode.DP_HE)


@dataclass(frozen=True)
class DPSpec:
    """Differential-privacy parameters: (ε, δ) over all rounds, per participant.

    Defaults: ``delta`` 1e-5, ``max_grad_norm`` 1.0, ``accountant`` "rdp",
    ``budget_epsilon`` (lifetime ε per dataset, across runs) three times ``target_epsilon``.
    """

    target_epsilon: float
    delta: float
    max_grad_norm: float
    accountant: Accountant
    budget_epsilon: float


@dataclass(frozen=True)
class ServerOptimizerSpec:
    """The adaptive server optimiser of ``fedadam`` / ``fedyogi`` (Reddi et al. 2021,
    "Adaptive Federated Optimization"): the round's averaged update is a pseudo-gradient.

    Defaults are Flower's: ``learning_rate`` (η) 0.1 for FedAdam and 0.01 for FedYogi,
    ``beta_1`` 0.9, ``beta_2`` 0.99, ``tau`` 1e-3 (the adaptivity floor).
    """

    learning_rate: float
    beta_1: float
    beta_2: float
    tau: float


@dataclass(frozen=True)
class EarlyStoppingSpec:
    """Stop when the evaluation AUC stops improving: after ``patience`` rounds in a row
    without a gain of at least ``min_delta`` over the best AUC so far (default 0.001)."""

    patience: int
    min_delta: float


@dataclass(frozen=True)
class HESpec:
    """CKKS parameters and where provisioned keys live.

    Defaults: N = 8192, ``[60, 40]`` (one data prime: aggregation only adds), scale 2^40,
    ``keys_dir`` "<toml dir>/keys".
    The coefficient modulus is checked against :data:`CKKS_MAX_COEFF_MODULUS_BITS`.
    """

    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]
    global_scale_bits: int
    keys_dir: Path


@dataclass(frozen=True)
class ParticipantSpec:
    """One data owner: its table, consent store and optional own schema declaration.

    ``consent_db`` set means rows need an active grant for the federation's
    ``consent_purpose`` over ``categories``; ``subject_column`` ``None`` means the schema's
    id column holds the subject ids. ``schema`` is what the participant declares; the
    coordinator refuses a declaration that differs from the federation's before round 1.
    """

    name: str
    file: Path
    categories: tuple[str, ...]
    consent_db: Path | None
    subject_column: str | None
    schema: TabularSchema | None


@dataclass(frozen=True)
class FederationSpec:
    """A validated federation file.

    Defaults for omitted keys: ``mode`` "horizontal", ``privacy`` dp+he, ``strategy``
    "fedavg", ``proximal_mu`` 0.01 under fedprox (``None`` under fedavg), ``rounds`` 10,
    ``min_participants`` 2, ``local_epochs`` 1, ``batch_size`` 64, ``learning_rate``
    0.05, ``hidden`` ``None`` (the model spec decides), ``seed`` 42, ``consent_purpose``
    "model_training", ``consent_as_of`` ``None`` (meaning: now, at round start; else an
    aware UTC datetime), ``output_dir`` "<toml dir>/runs", ``server_optimizer`` Flower's
    defaults under fedadam / fedyogi, ``early_stopping`` ``None``. ``warnings`` lists
    loud-but-legal choices such as privacy mode ``none``.
    """

    path: Path
    name: str
    model: str
    mode: Literal["horizontal", "vertical"]
    privacy: PrivacyMode
    strategy: Strategy
    proximal_mu: float | None
    rounds: int
    min_participants: int
    local_epochs: int
    batch_size: int
    learning_rate: float
    hidden: tuple[int, ...] | None
    seed: int
    consent_purpose: str
    consent_as_of: datetime | None
    dp: DPSpec | None
    he: HESpec
    schema: TabularSchema | None
    evaluation_file: Path | None
    output_dir: Path
    participants: tuple[ParticipantSpec, ...]
    warnings: tuple[str, ...] = ()
    #: Set exactly when ``mode`` is "vertical" (see :mod:`models.vertical_spec`).
    vertical: VerticalSpec | None = None
    #: Set exactly when ``strategy`` is "fedadam" or "fedyogi".
    server_optimizer: ServerOptimizerSpec | None = None
    #: Set when the file has an [early_stopping] table (horizontal federations).
    early_stopping: EarlyStoppingSpec | None = None
    #: Share of the accepted participants asked to train in each round (horizontal; ``None``
    #: = all of them), drawn afresh each round from ``seed`` and the round number.
    sample_fraction: float | None = None
    #: How long a round waits for replies before it goes on with those that answered
    #: (``None`` = :data:`DEFAULT_ROUND_TIMEOUT_S`).
    round_timeout_s: float | None = None

    def participant(self, name: str) -> ParticipantSpec:
        """The participant called ``name``."""
        for participant in self.participants:
            if participant.name == name:
                return participant
        names = [p.name for p in self.participants]
        raise KeyError(f"no participant {name!r}{did_you_mean(name, names)}")

    def to_dict(self) -> dict[str, Any]:
        """The file's content as plain data (TOML shape, paths as strings, unset keys omitted).

        ``path`` and ``warnings`` are not part of it: they describe where the file was
        read from, not the federation.
        """
        hidden = None if self.hidden is None else list(self.hidden)
        as_of = None if self.consent_as_of is None else _iso_utc(self.consent_as_of)
        federation = _without_none({
            "name": self.name, "model": self.model, "mode": self.mode,
            "privacy": str(self.privacy), "strategy": self.strategy,
            "proximal_mu": self.proximal_mu, "rounds": self.rounds,
            "min_participants": self.min_participants, "local_epochs": self.local_epochs,
            "batch_size": self.batch_size, "learning_rate": self.learning_rate,
            "hidden": hidden, "seed": self.seed, "consent_purpose": self.consent_purpose,
            "consent_as_of": as_of, "sample_fraction": self.sample_fraction,
            "round_timeout_s": self.round_timeout_s,
        })  # fmt: skip
        he = asdict(self.he) | {
            "coeff_mod_bit_sizes": list(self.he.coeff_mod_bit_sizes),
            "keys_dir": str(self.he.keys_dir),
        }
        privacy = _without_none({"dp": None if self.dp is None else asdict(self.dp), "he": he})
        out: dict[str, Any] = {"federation": federation, "privacy": privacy}
        if self.schema is not None:
            out["schema"] = self.schema.to_dict()
        if self.evaluation_file is not None:
            out["evaluation"] = {"file": str(self.evaluation_file)}
        out["output"] = {"dir": str(self.output_dir)}
        if self.server_optimizer is not None:
            out["server_optimizer"] = asdict(self.server_optimizer)
        if self.early_stopping is not None:
            out["early_stopping"] = asdict(self.early_stopping)
        out["participants"] = [_participant_dict(p) for p in self.participants]
        return out


def _participant_dict(participant: ParticipantSpec) -> dict[str, Any]:
    consent_db, schema = participant.consent_db, participant.schema
    return _without_none({
        "name": participant.name, "file": str(participant.file),
        "categories": list(participant.categories),
        "consent_db": None if consent_db is None else str(consent_db),
        "subject_column": participant.subject_column,
        "schema": None if schema is None else schema.to_dict(),
    })  # fmt: skip


def _without_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not None}


def _iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- reading ---------------------------------------------------------------------------

_SPLIT_KEYS: Final = (
    "cut_width", "bottom_hidden", "top_hidden", "activation_clip_norm",
    "activation_noise_multiplier", "gradient_clip_norm", "gradient_noise_multiplier",
)  # fmt: skip

_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "": (
        "federation", "privacy", "schema", "evaluation", "output", "participants", "vertical",
        "server_optimizer", "early_stopping",
    ),
    "server_optimizer": ("learning_rate", "beta_1", "beta_2", "tau"),
    "early_stopping": ("patience", "min_delta"),
    "federation": (
        "name", "model", "mode", "privacy", "strategy", "proximal_mu", "rounds",
        "min_participants", "local_epochs", "batch_size", "learning_rate", "hidden", "seed",
        "consent_purpose", "consent_as_of", "sample_fraction", "round_timeout_s",
    ),
    "privacy": ("dp", "he"),
    "privacy.dp": ("target_epsilon", "delta", "max_grad_norm", "accountant", "budget_epsilon"),
    "privacy.he": ("poly_modulus_degree", "coeff_mod_bit_sizes", "global_scale_bits", "keys_dir"),
    "evaluation": ("file",),
    "vertical": (
        "holdout", "l2", "feature_clip_norm", "label_noise_multiplier", "protocol", "cut_width",
        "bottom_hidden", "top_hidden", "activation_clip_norm", "activation_noise_multiplier",
        "gradient_clip_norm", "gradient_noise_multiplier",
    ),
    "output": ("dir",),
    "participants": ("name", "file", "categories", "consent_db", "subject_column", "schema"),
}  # fmt: skip


def _type_name(value: object) -> str:
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array",
             dict: "table", datetime: "date-time"}  # fmt: skip
    return names.get(type(value), type(value).__name__)


class _Table:
    """A TOML table being read: knows its key path and file, for error messages."""

    def __init__(self, file: str, prefix: str, data: object, *, kind: str, base: Path) -> None:
        self.file, self.prefix, self.base = file, prefix, base
        if not isinstance(data, Mapping):
            raise self.error(None, f"must be a table, got {_type_name(data)}")
        self.data: Mapping[str, Any] = data
        for key in data:
            if key not in _KEYS[kind]:
                hint = did_you_mean(key, _KEYS[kind])
                raise self.error(key, f"unknown key{hint}")

    def key(self, key: str | None) -> str | None:
        if key is None:
            return self.prefix or None
        return f"{self.prefix}.{key}" if self.prefix else key

    def error(self, key: str | None, reason: str) -> FederationFileError:
        return FederationFileError(file=self.file, key=self.key(key), reason=reason)

    def has(self, key: str) -> bool:
        return key in self.data

    def _get(self, key: str, types: tuple[type, ...], what: str, default: Any) -> Any:
        if key not in self.data:
            if default is None:
                raise self.error(key, "missing (required)")
            return default
        value = self.data[key]
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            raise self.error(key, f"must be {what}, got {_type_name(value)} {value!r}")
        return value

    def text(self, key: str, default: str | None = None) -> str:
        value = cast(str, self._get(key, (str,), "a string", default))
        if not value.strip():
            raise self.error(key, "must not be empty")
        return value

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if self.has(key) else None

    def choice(self, key: str, options: tuple[str, ...], default: str | None = None) -> str:
        value = self.text(key, default)
        if value not in options:
            hint = did_you_mean(value, options)
            raise self.error(key, f"must be one of {', '.join(options)}, got {value!r}{hint}")
        return value

    def name(self, key: str) -> str:
        value = self.text(key)
        if not _NAME.fullmatch(value):
            raise self.error(key, f"{value!r} is not a valid name: {_NAME_RULE}")
        return value

    def integer(self, key: str, default: int | None = None, *, at_least: int = 0) -> int:
        value = cast(int, self._get(key, (int,), "an integer", default))
        if value < at_least:
            raise self.error(key, f"must be >= {at_least}, got {value}")
        return value

    def number(self, key: str, default: float | None = None) -> float:
        value = float(self._get(key, (int, float), "a number", default))
        if not math.isfinite(value):
            raise self.error(key, f"must be finite, got {value}")
        return value

    def positive(self, key: str, default: float | None = None) -> float:
        value = self.number(key, default)
        if value <= 0:
            raise self.error(key, f"must be > 0, got {value}")
        return value

    def integers(self, key: str, default: tuple[int, ...] | None = None) -> tuple[int, ...]:
        values = self._get(key, (list,), "an array of integers", default)
        if not values or any(isinstance(v, bool) or not isinstance(v, int) for v in values):
            raise self.error(key, f"must be a non-empty array of integers, got {values!r}")
        return tuple(values)

    def texts(self, key: str) -> tuple[str, ...]:
        values = self._get(key, (list,), "an array of strings", [])
        if any(not isinstance(v, str) or not v.strip() for v in values):
            raise self.error(key, f"must be an array of non-empty strings, got {values!r}")
        return tuple(values)

    def path(self, key: str, default: str | None = None) -> Path:
        """A path, resolved against the directory of the federation file."""
        return (self.base / Path(self.text(key, default)).expanduser()).resolve()

    def optional_path(self, key: str) -> Path | None:
        return self.path(key) if self.has(key) else None

    def table(self, key: str, kind: str) -> _Table | None:
        if key not in self.data:
            return None
        return _Table(self.file, self.key(key) or key, self.data[key], kind=kind, base=self.base)

    def schema(self, key: str) -> TabularSchema | None:
        if key not in self.data:
            return None
        where = self.key(key)
        if not isinstance(self.data[key], Mapping):
            raise self.error(key, f"must be a table, got {_type_name(self.data[key])}")
        try:
            return TabularSchema.from_dict(self.data[key])
        except SchemaError as exc:
            full = f"{where}.{exc.key}" if exc.key else where
            raise FederationFileError(file=self.file, key=full, reason=exc.reason) from None


def load_federation(path: Path) -> FederationSpec:
    """Read and validate a federation TOML file (format: module docstring and dataclasses).

    Participant files are not opened here: they live on the participants' machines.
    """
    path = Path(path).expanduser().resolve()
    file = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FederationFileError(file=file, key=None, reason="file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FederationFileError(file=file, key=None, reason=f"cannot read ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise FederationFileError(file=file, key=None, reason=f"not valid TOML: {exc}") from exc
    root = _Table(file, "", raw, kind="", base=path.parent)
    spec = _Reader(root, path).read()
    for warning in spec.warnings:
        logger.warning("%s: %s", path, warning)
    logger.info("loaded federation %r from %s: %d participants, privacy %s",
                spec.name, path, len(spec.participants), spec.privacy)  # fmt: skip
    return spec


class _Reader:
    """Builds a :class:`FederationSpec` from the root table, section by section."""

    def __init__(self, root: _Table, path: Path) -> None:
        self.root, self.path = root, path
        self.warnings: list[str] = []

    def read(self) -> FederationSpec:
        fed = self.root.table("federation", "federation")
        if fed is None:
            raise self.root.error("federation", "missing table [federation]")
        participants = self._participants()
        model = fed.choice("model", MODEL_NAMES)
        privacy = self._privacy_mode(fed)
        strategy = cast(
            Strategy, fed.choice("strategy", ("fedavg", "fedprox", *ADAPTIVE_STRATEGIES), "fedavg")
        )
        schema = self.root.schema("schema")
        mode = self._mode(fed)
        vertical = (
            self._vertical(fed, model, privacy, schema, participants)
            if mode == "vertical"
            else None
        )
        if self.root.has("vertical") and vertical is None:
            raise self.root.error("vertical", "applies only to mode 'vertical'")
        if schema is None and model in _GENERIC_MODELS and vertical is None:
            raise self.root.error(
                "schema", f"missing: model {model!r} needs a [schema] table "
                "(only named product models bring their own)"
            )  # fmt: skip
        privacy_table = self.root.table("privacy", "privacy")
        evaluation = self.root.table("evaluation", "evaluation")
        output = self.root.table("output", "output")
        return FederationSpec(
            path=self.path,
            name=fed.name("name"),
            model=model,
            mode=mode,
            privacy=privacy,
            strategy=strategy,
            proximal_mu=self._proximal_mu(fed, strategy),
            rounds=fed.integer("rounds", 10, at_least=1),
            min_participants=self._min_participants(fed, len(participants)),
            local_epochs=fed.integer("local_epochs", 1, at_least=1),
            batch_size=fed.integer("batch_size", 64, at_least=1),
            learning_rate=fed.positive("learning_rate", 0.05),
            hidden=self._hidden(fed, model),
            seed=fed.integer("seed", 42),
            consent_purpose=fed.text("consent_purpose", "model_training"),
            consent_as_of=self._consent_as_of(fed),
            dp=self._dp(privacy_table, privacy) if vertical is None else self._no_dp(privacy_table),
            he=self._he(privacy_table),
            schema=schema,
            evaluation_file=evaluation.path("file") if evaluation else None,
            output_dir=output.path("dir", "runs") if output else self.root.base / "runs",
            participants=participants,
            warnings=tuple(self.warnings),
            vertical=vertical,
            server_optimizer=self._server_optimizer(strategy),
            early_stopping=self._early_stopping(vertical, evaluation),
            sample_fraction=self._sample_fraction(fed, mode),
            round_timeout_s=fed.positive("round_timeout_s") if fed.has("round_timeout_s") else None,
        )

    def _sample_fraction(self, fed: _Table, mode: str) -> float | None:
        if not fed.has("sample_fraction"):
            return None
        if mode != "horizontal":
            raise fed.error("sample_fraction", "applies only to mode 'horizontal'")
        value = fed.positive("sample_fraction")
        if value > 1:
            raise fed.error("sample_fraction", f"must be in (0, 1], got {value:g}")
        return value

    def _mode(self, fed: _Table) -> Literal["horizontal", "vertical"]:
        mode = fed.choice("mode", ("horizontal", "vertical"), "horizontal")
        return "vertical" if mode == "vertical" else "horizontal"

    def _vertical(
        self,
        fed: _Table,
        model: str,
        privacy: PrivacyMode,
        schema: TabularSchema | None,
        participants: tuple[ParticipantSpec, ...],
    ) -> VerticalSpec:
        if model not in VERTICAL_MODELS:
            raise fed.error("model", f"vertical federations train {', '.join(VERTICAL_MODELS)}; "
                            f"got {model!r}")  # fmt: skip
        table = self.root.table("vertical", "vertical")
        table = table or _Table(self.root.file, "vertical", {}, kind="vertical",
                                base=self.root.base)  # fmt: skip
        protocol = table.choice("protocol", PROTOCOLS, "logistic-regression")
        split = self._split_nn(table, privacy) if protocol == "split-nn" else None
        if split is None:
            if str(privacy) not in VERTICAL_PRIVACY:
                raise fed.error(
                    "privacy", f"vertical logistic regression uses 'he' (CKKS residuals) or "
                    "'none'; label privacy against hosts is [vertical] label_noise_multiplier, "
                    f"got {str(privacy)!r}"
                )  # fmt: skip
            for key in _SPLIT_KEYS:
                if table.has(key):
                    raise table.error(key, "applies only to protocol 'split-nn'")
        elif str(privacy) not in SPLIT_NN_PRIVACY:
            raise fed.error(
                "privacy", "a split network uses 'dp' (clipped, noised cut layer) or 'none', "
                f"got {str(privacy)!r}"
            )  # fmt: skip
        if schema is not None:
            raise self.root.error(
                "schema", "a vertical federation has no shared schema: each participant "
                "declares its own"
            )  # fmt: skip
        schemas = [(p.name, p.schema) for p in participants]
        guest, hosts = check_vertical_participants(file=self.root.file, schemas=schemas)
        check_product_parties(file=self.root.file, model=model, guest=guest, schemas=schemas)
        holdout = table.positive("holdout", 0.25)
        if holdout >= 1:
            raise table.error("holdout", f"must be below 1, got {holdout}")
        noise = (
            table.positive("label_noise_multiplier")
            if table.has("label_noise_multiplier")
            else None
        )
        l2 = float(table._get("l2", (int, float), "a number", 1e-4))
        if l2 < 0:
            raise table.error("l2", f"must be >= 0, got {l2}")
        return VerticalSpec(
            guest=guest,
            hosts=hosts,
            holdout=holdout,
            l2=l2,
            feature_clip_norm=table.positive("feature_clip_norm", 8.0),
            label_noise_multiplier=noise,
            protocol=protocol,
            split=split,
        )

    def _split_nn(self, table: _Table, privacy: PrivacyMode) -> SplitNNSettings:
        for key in ("label_noise_multiplier", "feature_clip_norm", "l2"):
            if table.has(key):
                raise table.error(key, "applies only to protocol 'logistic-regression'")
        defaults = SplitNNSettings()
        layers = {}
        for key in ("bottom_hidden", "top_hidden"):
            sizes = table.integers(key, getattr(defaults, key))
            if any(size < 1 for size in sizes):
                raise table.error(key, f"layer sizes must be >= 1, got {list(sizes)}")
            layers[key] = sizes
        return SplitNNSettings(
            cut_width=table.integer("cut_width", defaults.cut_width, at_least=1),
            bottom_hidden=layers["bottom_hidden"],
            top_hidden=layers["top_hidden"],
            activation_clip_norm=table.positive(
                "activation_clip_norm", defaults.activation_clip_norm
            ),
            activation_noise_multiplier=table.positive(
                "activation_noise_multiplier", defaults.activation_noise_multiplier
            ),
            gradient_clip_norm=table.positive("gradient_clip_norm", defaults.gradient_clip_norm),
            gradient_noise_multiplier=table.positive(
                "gradient_noise_multiplier", defaults.gradient_noise_multiplier
            ),
            noised=privacy.uses_dp,
        )

    def _privacy_mode(self, fed: _Table) -> PrivacyMode:
        mode = PrivacyMode(fed.choice("privacy", tuple(m.value for m in PrivacyMode), "dp+he"))
        if mode is PrivacyMode.NONE:
            self.warnings.append(NO_PRIVACY_WARNING)
        return mode

    def _server_optimizer(self, strategy: Strategy) -> ServerOptimizerSpec | None:
        table = self.root.table("server_optimizer", "server_optimizer")
        if strategy not in ADAPTIVE_STRATEGIES:
            if table is not None:
                raise self.root.error(
                    "server_optimizer",
                    f"applies only to strategy 'fedadam' or 'fedyogi', got {strategy!r}",
                )
            return None
        table = table or _Table(self.root.file, "server_optimizer", {}, kind="server_optimizer",
                                base=self.root.base)  # fmt: skip
        spec = ServerOptimizerSpec(
            learning_rate=table.positive("learning_rate", 0.1 if strategy == "fedadam" else 0.01),
            beta_1=table.number("beta_1", 0.9),
            beta_2=table.number("beta_2", 0.99),
            tau=table.positive("tau", 1e-3),
        )
        for key in ("beta_1", "beta_2"):
            if not 0 <= getattr(spec, key) < 1:
                raise table.error(key, f"must be in [0, 1), got {getattr(spec, key)}")
        return spec

    def _early_stopping(
        self, vertical: VerticalSpec | None, evaluation: _Table | None
    ) -> EarlyStoppingSpec | None:
        table = self.root.table("early_stopping", "early_stopping")
        if table is None:
            return None
        if vertical is not None:
            raise self.root.error("early_stopping", "applies only to mode 'horizontal'")
        if evaluation is None:
            raise self.root.error(
                "early_stopping", "needs an [evaluation] file: the plateau is of its AUC"
            )
        min_delta = table.number("min_delta", 0.001)
        if min_delta < 0:
            raise table.error("min_delta", f"must be >= 0, got {min_delta}")
        return EarlyStoppingSpec(patience=table.integer("patience", at_least=1),
                                 min_delta=min_delta)  # fmt: skip

    def _proximal_mu(self, fed: _Table, strategy: Strategy) -> float | None:
        if strategy != "fedprox":
            if fed.has("proximal_mu"):
                raise fed.error("proximal_mu", "applies only to strategy 'fedprox'")
            return None
        return fed.positive("proximal_mu", 0.01)

    def _min_participants(self, fed: _Table, count: int) -> int:
        value = fed.integer("min_participants", 2, at_least=1)
        if value > count:
            raise fed.error(
                "min_participants",
                f"is {value} but only {count} participant(s) are listed"
                + ("" if fed.has("min_participants") else " (2 is the default; set it)"),
            )
        return value

    def _hidden(self, fed: _Table, model: str) -> tuple[int, ...] | None:
        if not fed.has("hidden"):
            return None
        if model != "mlp":
            raise fed.error("hidden", f"applies only to model 'mlp', not {model!r}")
        sizes = fed.integers("hidden")
        if min(sizes) < 1:
            raise fed.error("hidden", f"layer sizes must be >= 1, got {list(sizes)}")
        return sizes

    def _consent_as_of(self, fed: _Table) -> datetime | None:
        if not fed.has("consent_as_of"):
            return None
        value = fed.data["consent_as_of"]
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise fed.error(
                    "consent_as_of", f"{value!r} is not an ISO-8601 date-time"
                ) from None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise fed.error(
                "consent_as_of", f"must be a date-time with a UTC offset such as "
                f"'2026-06-30T00:00:00Z', got {value!r}"
            )  # fmt: skip
        return value.astimezone(UTC)

    def _no_dp(self, privacy: _Table | None) -> DPSpec | None:
        """Vertical federations have no DP-SGD (a split network's noise is in [vertical]):
        None, after refusing a [privacy.dp] table."""
        if privacy is not None and privacy.has("dp"):
            raise privacy.error(
                "dp", "DP-SGD settings apply to horizontal federations; a split network's "
                "cut-layer noise is set in [vertical]"
            )  # fmt: skip
        return None

    def _dp(self, privacy: _Table | None, mode: PrivacyMode) -> DPSpec | None:
        table = privacy.table("dp", "privacy.dp") if privacy else None
        if table is None:
            if mode.uses_dp:
                raise self.root.error("privacy.dp", f"missing: required when privacy is {mode!s}")
            return None
        if not mode.uses_dp:
            self.warnings.append(f"[privacy.dp] is set but privacy mode {mode!s} does not use DP")
        epsilon = table.positive("target_epsilon")
        delta = table.positive("delta", 1e-5)
        if delta >= 1:
            raise table.error("delta", f"must be < 1, got {delta}")
        budget = table.positive("budget_epsilon", epsilon * 3)
        if budget < epsilon:
            raise table.error("budget_epsilon", f"{budget} is below target_epsilon {epsilon}")
        return DPSpec(
            target_epsilon=epsilon,
            delta=delta,
            max_grad_norm=table.positive("max_grad_norm", 1.0),
            accountant=cast(Accountant, table.choice("accountant", ("rdp", "prv"), "rdp")),
            budget_epsilon=budget,
        )

    def _he(self, privacy: _Table | None) -> HESpec:
        table = privacy.table("he", "privacy.he") if privacy else None
        table = table or _Table(self.root.file, "privacy.he", {}, kind="privacy.he",
                                base=self.root.base)  # fmt: skip
        degree = table.integer("poly_modulus_degree", 8192)
        if degree not in CKKS_MAX_COEFF_MODULUS_BITS:
            allowed = ", ".join(map(str, CKKS_MAX_COEFF_MODULUS_BITS))
            raise table.error("poly_modulus_degree", f"must be one of {allowed}, got {degree}")
        sizes = table.integers("coeff_mod_bit_sizes", DEFAULT_CKKS_CHAIN)
        if len(sizes) < 2 or not all(1 <= s <= 60 for s in sizes):
            raise table.error(
                "coeff_mod_bit_sizes", f"needs >= 2 sizes in 1..60, got {list(sizes)}"
            )
        if sum(sizes) > CKKS_MAX_COEFF_MODULUS_BITS[degree]:
            raise table.error(
                "coeff_mod_bit_sizes", f"total {sum(sizes)} bits exceeds "
                f"{CKKS_MAX_COEFF_MODULUS_BITS[degree]} allowed for poly_modulus_degree "
                f"{degree} at 128-bit security"
            )  # fmt: skip
        scale = table.integer("global_scale_bits", 40, at_least=1)
        if scale > 60:
            raise table.error("global_scale_bits", f"must be <= 60, got {scale}")
        return HESpec(
            poly_modulus_degree=degree,
            coeff_mod_bit_sizes=sizes,
            global_scale_bits=scale,
            keys_dir=table.path("keys_dir", "keys"),
        )

    def _participants(self) -> tuple[ParticipantSpec, ...]:
        raw = self.root.data.get("participants")
        if raw is None:
            raise self.root.error("participants", "missing: add at least one [[participants]]")
        if not isinstance(raw, list) or not raw:
            raise self.root.error("participants", "must be a non-empty array of tables")
        out: list[ParticipantSpec] = []
        for i, item in enumerate(raw):
            table = _Table(self.root.file, f"participants[{i}]", item, kind="participants",
                           base=self.root.base)  # fmt: skip
            name = table.name("name")
            if name in (p.name for p in out):
                raise table.error("name", f"duplicate participant name {name!r}")
            out.append(
                ParticipantSpec(
                    name=name,
                    file=table.path("file"),
                    categories=table.texts("categories"),
                    consent_db=table.optional_path("consent_db"),
                    subject_column=table.optional_text("subject_column"),
                    schema=table.schema("schema"),
                )
            )
        return tuple(out)


# --- writing ---------------------------------------------------------------------------


def dump_federation(spec: FederationSpec) -> str:
    """The spec as TOML text; :func:`load_federation` reads it back to an equal spec.

    Paths are written absolute, so the text may be saved anywhere.
    """
    lines: list[str] = [f"# federation {spec.name!r}, written by fedrisk"]
    for key, value in spec.to_dict().items():
        if isinstance(value, list):
            for item in value:
                _emit_table(lines, key, item, array=True)
        else:
            _emit_table(lines, key, value, array=False)
    return "\n".join(lines) + "\n"


def _emit_table(lines: list[str], name: str, table: Mapping[str, Any], *, array: bool) -> None:
    tables = {k: v for k, v in table.items() if isinstance(v, Mapping)}
    if array or len(tables) < len(table) or not tables:  # no header for a table of tables
        lines.extend(["", f"[[{name}]]" if array else f"[{name}]"])
    for key, value in table.items():
        if key not in tables:
            lines.append(f"{_toml_key(key)} = {_toml_value(value, multiline=True)}")
    for key, value in tables.items():
        _emit_table(lines, f"{name}.{_toml_key(key)}", value, array=False)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def toml_value(value: object) -> str:
    """One value as TOML text (paths as strings): for tools that write federation files."""
    return _toml_value(str(value) if isinstance(value, Path) else value)


def _toml_value(value: object, *, multiline: bool = False) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write non-finite float {value} to a federation file")
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, Mapping):
        items = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return f"{{ {items} }}" if items else "{}"
    if isinstance(value, list | tuple):
        if multiline and any(isinstance(v, Mapping) for v in value):
            return "[\n" + "".join(f"  {_toml_value(v)},\n" for v in value) + "]"
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to a federation file")


_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r",
                   "\b": "\\b", "\f": "\\f"}  # fmt: skip


def _toml_string(text: str) -> str:
    def escape(char: str) -> str:
        if char in _ESCAPES:
            return _ESCAPES[char]
        return f"\\u{ord(char):04x}" if ord(char) < 0x20 or ord(char) == 0x7F else char

    return '"' + "".join(escape(char) for char in text) + '"'
