"""The participant's Flower ClientApp (Message API): handshake, train, decrypt.

The same app runs in Flower's simulation runtime (``fedrisk train`` / ``fedrisk demo``) and
on a SuperNode of Flower's deployment engine. A node learns which participant it is from
its node config (``participant = "factory-01"``, ``federation = "/path/fed.toml"``) or, in
simulation, from its partition id (the n-th participant of the federation file).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    ConfigRecordValues,
    Context,
    Error,
    Message,
    MetricRecord,
    MetricRecordValues,
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import Mod

from models import wire
from models.errors import ModelsError
from models.federation import FederationSpec, ParticipantSpec, load_federation
from models.layout import budget_path, dp_journal_path, secret_key_path
from models.parameters import arrays_sha256
from privacy.dp.accounting import epsilon_for
from privacy.dp.budget import PrivacyBudget
from privacy.errors import BudgetExceededError, PrivacyError
from privacy.he.records import record_to_update
from privacy.he.secret import decrypt_aggregate

from .dp_journal import DPJournal, JournalEntry
from .keys import load_secret
from .local_data import (
    ParticipantError,
    data_commitment,
    declared_schema,
    load_eligible,
    participant_spec,
)
from .local_training import LocalResult, RoundPlan, train_round
from .mods import make_decrypt_mod, make_encrypt_mod
from .vertical_node import handle_vertical

logger = logging.getLogger(__name__)

#: Flower error codes for refusals a participant sends back (the coordinator logs them).
REFUSED = 400
FAILED = 500


class ParticipantResolver:
    """Maps a Flower node to its participant entry in the federation file."""

    def __init__(self, federation: Path | None = None) -> None:
        self._federation = federation
        self._cache: dict[Path, FederationSpec] = {}

    def spec(self, context: Context) -> FederationSpec:
        path = self._federation
        if path is None:
            raw = context.node_config.get("federation") or context.run_config.get("federation")
            if not raw:
                raise ParticipantError(
                    "this node has no federation file: start it with "
                    '--node-config \'federation="/path/fed.toml" participant="NAME"\''
                )
            path = Path(str(raw))
        if path not in self._cache:
            self._cache[path] = load_federation(path)
        return self._cache[path]

    def participant(self, context: Context) -> tuple[FederationSpec, ParticipantSpec]:
        spec = self.spec(context)
        name = context.node_config.get("participant")
        if name:
            return spec, participant_spec(spec, str(name))
        index = int(context.node_config.get("partition-id", -1))
        if not 0 <= index < len(spec.participants):
            raise ParticipantError(
                f"node has partition-id {index} but {spec.path} names "
                f"{len(spec.participants)} participants"
            )
        return spec, spec.participants[index]


def make_client_app(federation: Path | None = None, *, extra_mods: Sequence[Mod] = ()) -> ClientApp:
    """Build the participant ClientApp; ``extra_mods`` run outermost (tests inject faults)."""
    resolver = ParticipantResolver(federation)
    app = ClientApp(mods=list(extra_mods))

    @app.query("handshake")
    def handshake(msg: Message, context: Context) -> Message:
        return _guard(msg, context, resolver, _handshake)

    @app.train(
        mods=[make_decrypt_mod(resolver.participant), make_encrypt_mod(resolver.participant)]
    )
    def train(msg: Message, context: Context) -> Message:
        return _guard(msg, context, resolver, _train)

    @app.query("decrypt")
    def decrypt(msg: Message, context: Context) -> Message:
        return _guard(msg, context, resolver, _decrypt)

    @app.query("vertical")
    def vertical(msg: Message, context: Context) -> Message:
        return _guard(msg, context, resolver, _vertical)

    return app


Handler = Callable[[Message, Context, "ParticipantResolver"], Message]


def _guard(
    msg: Message, context: Context, resolver: ParticipantResolver, handler: Handler
) -> Message:
    """Answer expected failures as Flower error replies: one line, naming the participant."""
    try:
        return handler(msg, context, resolver)
    except (ModelsError, ParticipantError, BudgetExceededError, PrivacyError, ValueError) as exc:
        logger.warning("refusing %s: %s", msg.metadata.message_type, exc)
        try:
            who = resolver.participant(context)[1].name
        except (ModelsError, ParticipantError, ValueError):
            who = "unidentified participant"
        return Message(Error(code=REFUSED, reason=f"[{who}] {exc}"), reply_to=msg)


def _handshake(msg: Message, context: Context, resolver: ParticipantResolver) -> Message:
    spec, participant = resolver.participant(context)
    schema = declared_schema(spec, participant)
    eligible = load_eligible(spec, participant)
    info: dict[str, ConfigRecordValues] = {
        "participant": participant.name,
        "schema": json.dumps(schema.to_dict(), sort_keys=True),
        "schema-hash": schema.hash(),
        "fingerprint": "",
        "data-commitment": data_commitment(eligible.data),
    }
    if spec.privacy.uses_he and spec.mode == "horizontal":
        info["fingerprint"] = load_secret(secret_key_path(spec, participant.name)).fingerprint
    metrics: dict[str, MetricRecordValues] = {
        "rows-total": eligible.rows_total,
        "rows-used": eligible.rows_used,
    }
    metrics.update({f"excluded.{k}": v for k, v in eligible.excluded.items()})
    content = RecordDict({wire.INFO: ConfigRecord(info), wire.METRICS: MetricRecord(metrics)})
    return Message(content, reply_to=msg)


def _train(msg: Message, context: Context, resolver: ParticipantResolver) -> Message:
    spec, participant = resolver.participant(context)
    config = wire.config_of(msg.content)
    plan = _plan(config)
    run_id = wire.config_str(config, wire.RUN_ID)
    eligible = load_eligible(spec, participant)
    global_arrays = wire.arrays_of(msg.content).to_numpy_ndarrays()
    journal = DPJournal(dp_journal_path(participant.file, run_id)) if plan.use_dp else None
    started_from = arrays_sha256(global_arrays)
    replay = None if journal is None else journal.replay_of(plan.server_round,
                                                             input_sha256=started_from)  # fmt: skip
    budget = None
    if plan.use_dp and spec.dp is not None:
        budget = PrivacyBudget.open(
            budget_path(participant.file),
            epsilon_limit=spec.dp.budget_epsilon,
            delta=spec.dp.delta,
            kind=spec.dp.accountant,
        )
    result = train_round(
        plan,
        global_arrays=global_arrays,
        eligible=eligible,
        # A replayed round was charged when it first ran; it is checked again if it differs.
        budget=budget if replay is None else None,
        run_events=[] if journal is None else journal.events(excluding=replay),
        run_id=run_id,
        model_name=spec.name,
        budget_name=f"{participant.name}:{participant.file.name}",
    )
    if result.dp_event is not None and journal is not None:
        result = _journal(journal, result, plan, replay=replay, started_from=started_from,
                          budget=budget, run_id=run_id, model=spec.name)  # fmt: skip
    metrics: dict[str, MetricRecordValues] = {
        wire.NUM_EXAMPLES: result.num_examples,
        "train-loss": result.mean_loss,
        "steps": result.steps,
        "rows-total": eligible.rows_total,
    }
    if result.dp_event is not None:
        metrics["epsilon"] = result.epsilon_run
        metrics["noise-multiplier"] = result.dp_event.noise_multiplier
        metrics["sample-rate"] = result.dp_event.sample_rate
    metrics.update({f"excluded.{k}": v for k, v in eligible.excluded.items()})
    content = RecordDict(
        {
            wire.ARRAYS: ArrayRecord(result.arrays),
            wire.METRICS: MetricRecord(metrics),
            wire.INFO: ConfigRecord(
                {
                    "participant": participant.name,
                    wire.SERVER_ROUND: plan.server_round,
                    wire.RUN_ID: wire.config_str(config, wire.RUN_ID),
                }
            ),
        }
    )
    return Message(content, reply_to=msg)


def _decrypt(msg: Message, context: Context, resolver: ParticipantResolver) -> Message:
    spec, participant = resolver.participant(context)
    contributors = wire.config_int(wire.config_of(msg.content), "contributors")
    update = record_to_update(msg.content[wire.ENCRYPTED])
    secret = load_secret(secret_key_path(spec, participant.name))
    values = decrypt_aggregate(
        secret,
        update,
        contributors=contributors,
        min_contributors=spec.min_participants,
    )
    logger.info("decrypted an aggregate of %d updates", contributors)
    content = RecordDict({wire.ARRAYS: ArrayRecord([values])})
    return Message(content, reply_to=msg)


def _vertical(msg: Message, context: Context, resolver: ParticipantResolver) -> Message:
    spec, participant = resolver.participant(context)
    return Message(handle_vertical(msg.content, spec, participant), reply_to=msg)


def _plan(config: ConfigRecord) -> RoundPlan:
    return RoundPlan(
        server_round=wire.config_int(config, "server-round"),
        total_rounds=wire.config_int(config, "total-rounds"),
        model_kind=wire.config_str(config, "model-kind"),
        hidden=tuple(wire.config_ints(config, "hidden", default=())),
        local_epochs=wire.config_int(config, "local-epochs"),
        batch_size=wire.config_int(config, "batch-size"),
        learning_rate=wire.config_float(config, "learning-rate"),
        proximal_mu=wire.config_float(config, "proximal-mu", default=0.0),
        use_dp=wire.config_bool(config, "use-dp"),
        target_epsilon=wire.config_float(config, "target-epsilon", default=0.0),
        delta=wire.config_float(config, "delta", default=0.0),
        max_grad_norm=wire.config_float(config, "max-grad-norm", default=1.0),
        accountant=wire.config_str(config, "accountant", default="rdp"),
        seed=wire.config_int(config, "seed"),
        feature_shift=tuple(wire.config_floats(config, "feature-shift", default=())),
        feature_scale=tuple(wire.config_floats(config, "feature-scale", default=())),
    )


def _journal(
    journal: DPJournal,
    result: LocalResult,
    plan: RoundPlan,
    *,
    replay: JournalEntry | None,
    started_from: str,
    budget: PrivacyBudget | None,
    run_id: str,
    model: str,
) -> LocalResult:
    """Journal the round's release; a replay that released the same update costs nothing."""
    assert result.dp_event is not None
    released = arrays_sha256(result.arrays)
    if replay is not None and replay.output_sha256 == released:
        logger.info("round %d replayed from the same model: same update, no new privacy cost",
                    plan.server_round)  # fmt: skip
        return result
    if replay is not None and budget is not None:
        budget.charge([result.dp_event], run_id=run_id, model=model, round=plan.server_round)
    journal.record(JournalEntry(plan.server_round, result.dp_event, started_from, released))
    if replay is None:
        return result
    spent = epsilon_for(journal.events(), delta=plan.delta, kind=plan.accountant)
    return replace(result, epsilon_run=spent)


#: The module-level app that Flower's deployment engine loads (``participants.client_app:app``).
app = make_client_app()
