"""Faults a real federation meets, in process (the multi-process versions are in
tests/test_deployment_faults.py): a coordinator that dies and resumes, stale or replayed
updates, participants that drop out, and per-round sampling."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Context, Message

from consent.ledger.log import EvidenceLog
from coordinator.checkpoints import load_checkpoint
from coordinator.handshake import FederationAbortedError
from coordinator.rounds import FederationResult, RoundListener, run_federation
from coordinator.server_app import _publish
from models import wire
from models.federation import FederationSpec, load_federation
from models.layout import budget_path, checkpoint_dir, dp_journal_path, ledger_dir
from models.parameters import to_arrays
from participants.cli import ensure_keys
from participants.client_app import make_client_app
from participants.dp_journal import DPJournal
from privacy.dp.budget import PrivacyBudget
from tests.support.builders import make_federation
from tests.support.local_grid import LocalGrid

DP = (
    "[privacy.dp]\ntarget_epsilon = 3.0\ndelta = 1e-5\nmax_grad_norm = 1.0\n"
    "budget_epsilon = 100.0\n"
)


class _Quiet:
    def print(self, *args: object, **kwargs: object) -> None:
        pass


class _Crash(BaseException):
    """The coordinator process dying (nothing in the coordinator may catch it)."""


class CrashingGrid(LocalGrid):
    """A grid whose coordinator dies right after its ``crash_at``-th batch of train
    messages went out: every participant has trained and replied, nothing is committed."""

    def __init__(self, *args: object, crash_at: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.crash_at = crash_at
        self.trains = 0

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        batch = list(messages)
        ids = super().push_messages(batch)
        if batch and batch[0].metadata.message_type == wire.TRAIN:
            self.trains += 1
            if self.trains == self.crash_at:
                raise _Crash
        return ids


class DroppingGrid(LocalGrid):
    """A grid on which node ``drop`` goes offline after round ``after``."""

    def __init__(self, *args: object, drop: set[int], after: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.drop, self.after, self.trains = drop, after, 0

    def get_node_ids(self) -> Iterable[int]:
        nodes = list(super().get_node_ids())
        return [n for n in nodes if n not in self.drop] if self.trains >= self.after else nodes

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        batch = list(messages)
        if batch and batch[0].metadata.message_type == wire.TRAIN:
            self.trains += 1
        return super().push_messages(batch)


def _grid(spec: FederationSpec, cls: type[LocalGrid] = LocalGrid, *mods: object, **kw: object):  # type: ignore[no-untyped-def]
    ensure_keys(spec, console=_Quiet())  # type: ignore[arg-type]
    app = make_client_app(spec.path, extra_mods=list(mods))  # type: ignore[arg-type]
    return cls(app, n_nodes=len(spec.participants), **kw)  # type: ignore[arg-type]


def _train(
    spec: FederationSpec,
    grid: LocalGrid,
    *,
    resume: bool = False,
    on_round: RoundListener | None = None,
) -> FederationResult:
    return run_federation(grid, spec, connect_timeout_s=5, resume=resume, on_round=on_round)


def _spent(spec: FederationSpec) -> dict[str, float]:
    return {p.name: PrivacyBudget.load(budget_path(p.file)).spent() for p in spec.participants}


def _journaled(spec: FederationSpec, run_id: str) -> dict[str, int]:
    return {
        p.name: len(DPJournal(dp_journal_path(p.file, run_id)).entries) for p in spec.participants
    }


def _assert_same_model(a: FederationResult, b: FederationResult) -> None:
    assert a.model is not None and b.model is not None
    for x, y in zip(to_arrays(a.model), to_arrays(b.model), strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("crash", ["between_rounds", "mid_round"])
def test_a_resumed_run_equals_the_uninterrupted_one(tmp_path: Path, crash: str) -> None:
    """Killed after round 2 (or mid-way through round 3, after every participant trained),
    the coordinator resumes from round 2's checkpoint: same model hash, the same final
    model and ε per participant as a run that never stopped, each round once, one ledger
    entry, and no privacy budget charged twice."""
    whole = load_federation(make_federation(tmp_path / "whole", privacy="dp", rounds=4, dp=DP))
    cut = load_federation(make_federation(tmp_path / "cut", privacy="dp", rounds=4, dp=DP))
    reference = _train(whole, _grid(whole))

    def die_after_round_2(record: object) -> None:
        if getattr(record, "server_round", 0) == 2:
            raise _Crash

    with pytest.raises(_Crash):
        if crash == "between_rounds":
            _train(cut, _grid(cut), on_round=die_after_round_2)
        else:
            _train(cut, _grid(cut, CrashingGrid, crash_at=3))
    committed = load_checkpoint(checkpoint_dir(cut))
    assert committed is not None and committed.server_round == 2
    trained = 3 if crash == "mid_round" else 2  # rounds each participant trained so far
    assert _journaled(cut, committed.run_id) == dict.fromkeys(["p1", "p2", "p3"], trained)

    resumed = _train(cut, _grid(cut), resume=True)  # a fresh grid: a new Flower run

    assert resumed.report.run_id == committed.run_id
    assert resumed.report.resumed[-1]["after_round"] == 2
    assert resumed.report.resumed[-1]["model_sha256"] == committed.model_sha256
    assert [r.server_round for r in resumed.report.rounds] == [1, 2, 3, 4]
    _assert_same_model(resumed, reference)
    eps = resumed.report.epsilon_per_participant()
    assert eps == pytest.approx(reference.report.epsilon_per_participant(), rel=1e-9)
    assert all(value > 0 for value in eps.values())
    # Each round is journaled and charged once: a replayed round 3 released the same
    # update (seeded training from the same model) and cost nothing more.
    assert _journaled(cut, committed.run_id) == dict.fromkeys(["p1", "p2", "p3"], 4)
    assert _spent(cut) == pytest.approx(_spent(whole), rel=1e-9)

    _publish(cut, resumed, report_path=None)
    _publish(cut, resumed, report_path=None)  # a crash between ledger and finish, re-run
    with EvidenceLog.in_folder(ledger_dir(cut)) as log:
        entries = [b for b in log.bodies_of_kind("training_round") if b["federation"] == cut.name]
    assert len(entries) == 1 and entries[0]["run_id"] == committed.run_id
    with pytest.raises(FederationAbortedError, match="nothing to resume"):
        _train(cut, _grid(cut), resume=True)


def test_resume_refuses_changed_settings_and_an_empty_folder(tmp_path: Path) -> None:
    spec = load_federation(make_federation(tmp_path, privacy="none", rounds=3))
    with pytest.raises(FederationAbortedError, match="nothing to resume"):
        _train(spec, _grid(spec), resume=True)

    def die(record: object) -> None:
        raise _Crash

    with pytest.raises(_Crash):
        _train(spec, _grid(spec), on_round=die)
    text = spec.path.read_text(encoding="utf-8").replace(
        "learning_rate = 0.1", "learning_rate = 0.2"
    )
    spec.path.write_text(text, encoding="utf-8")
    changed = load_federation(spec.path)
    with pytest.raises(FederationAbortedError, match="settings changed"):
        _train(changed, _grid(changed), resume=True)


def test_a_resumed_run_may_be_given_more_rounds(tmp_path: Path) -> None:
    spec = load_federation(make_federation(tmp_path, privacy="none", rounds=2))

    def die(record: object) -> None:
        if getattr(record, "server_round", 0) == 2:
            raise _Crash

    with pytest.raises(_Crash):
        _train(spec, _grid(spec), on_round=die)
    spec.path.write_text(
        spec.path.read_text(encoding="utf-8").replace("rounds = 2", "rounds = 3"), "utf-8"
    )
    longer = load_federation(spec.path)
    result = _train(longer, _grid(longer), resume=True)
    assert [r.server_round for r in result.report.rounds] == [1, 2, 3]


def _tamper(participant: str, **info: object):  # type: ignore[no-untyped-def]
    """A mod that rewrites one participant's reply tags (a replayed or stale update)."""

    def mod(msg: Message, context: Context, call_next):  # type: ignore[no-untyped-def]
        reply = call_next(msg, context)
        if msg.metadata.message_type != wire.TRAIN or reply.has_error():
            return reply
        if reply.content[wire.INFO]["participant"] != participant:
            return reply
        server_round = wire.config_int(wire.config_of(msg.content), wire.SERVER_ROUND)
        for key, value in info.items():
            reply.content[wire.INFO][key] = value(server_round) if callable(value) else value
        return reply

    return mod


@pytest.mark.parametrize("privacy", ["none", "he"])
@pytest.mark.parametrize(
    ("tags", "reason"),
    [
        ({wire.SERVER_ROUND: lambda r: r - 1}, "stale update: it answers round 1, this is round 2"),
        ({wire.RUN_ID: "0123456789ab"}, "belongs to run '0123456789ab'"),
    ],
    ids=["stale-round", "other-run"],
)
def test_stale_or_foreign_updates_are_rejected_and_the_round_goes_on(
    tmp_path: Path, privacy: str, tags: dict[str, object], reason: str
) -> None:
    spec = load_federation(make_federation(tmp_path, privacy=privacy, rounds=2))
    result = _train(spec, _grid(spec, LocalGrid, _tamper("p2", **tags)))
    second = result.report.rounds[1]
    assert second.status == "ok"
    assert second.contributors == ["p1", "p3"]
    assert reason in second.rejected["p2"]


@pytest.mark.parametrize("privacy", ["none", "he"])
def test_a_participant_that_drops_out_leaves_the_round_to_the_rest(
    tmp_path: Path, privacy: str
) -> None:
    """p3 goes offline after round 1: round 2 averages p1 and p2 alone. Under CKKS the
    survivors' sum decrypts to the same model as the plain run's."""
    spec = load_federation(make_federation(tmp_path / privacy, privacy=privacy, rounds=2))
    grid = _grid(spec, DroppingGrid, drop={1002}, after=1)
    result = _train(spec, grid)
    assert [r.contributors for r in result.report.rounds] == [["p1", "p2", "p3"], ["p1", "p2"]]
    assert all(r.status == "ok" for r in result.report.rounds)
    if privacy == "he":
        plain = load_federation(make_federation(tmp_path / "plain", privacy="none", rounds=2))
        _assert_close(_train(plain, _grid(plain, DroppingGrid, drop={1002}, after=1)), result)


def _assert_close(a: FederationResult, b: FederationResult) -> None:
    assert a.model is not None and b.model is not None
    for x, y in zip(to_arrays(a.model), to_arrays(b.model), strict=True):
        np.testing.assert_allclose(x, y, atol=1e-5)


def test_too_few_survivors_fail_the_round_and_keep_the_last_good_model(tmp_path: Path) -> None:
    spec = load_federation(
        make_federation(tmp_path, privacy="he", rounds=2, participants=3, min_participants=3)
    )
    result = _train(spec, _grid(spec, DroppingGrid, drop={1002}, after=1))
    first, second = result.report.rounds
    assert first.status == "ok" and second.status == "failed"
    assert "min_participants=3" in (second.failure or "")
    committed = load_checkpoint(checkpoint_dir(spec))
    assert committed is not None and committed.server_round == 2
    first_model = np.load(committed.path.with_name("round-0001.npz"))
    assert result.model is not None
    for i, array in enumerate(to_arrays(result.model)):
        np.testing.assert_array_equal(array, first_model[f"arr_{i}"])
    assert result.report.final["rounds_failed"] == 1


def test_sampling_asks_a_seeded_share_of_participants_each_round(tmp_path: Path) -> None:
    extra = "sample_fraction = 0.5\n"
    specs = [
        load_federation(
            make_federation(tmp_path / k, participants=6, rounds=3, extra=extra, rows=120)
        )
        for k in ("a", "b")
    ]
    runs = [_train(spec, _grid(spec)) for spec in specs]
    asked = [[r.contributors for r in run.report.rounds] for run in runs]
    assert asked[0] == asked[1]  # the draw depends on the seed and the round only
    assert all(len(c) == 3 for c in asked[0])
    assert len({tuple(c) for c in asked[0]}) > 1  # not the same three every round


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("sample_fraction = 1.5\n", "must be in (0, 1]"),
        ("sample_fraction = 0\n", "sample_fraction"),
        ("round_timeout_s = -1\n", "round_timeout_s"),
    ],
)
def test_bad_sampling_settings_are_refused(tmp_path: Path, extra: str, message: str) -> None:
    from models.errors import ModelsError

    with pytest.raises(ModelsError, match=message.replace("(", r"\(").replace("]", r"\]")):
        load_federation(make_federation(tmp_path, extra=extra))
