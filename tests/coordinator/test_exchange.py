"""Exchange: replies handed over as they arrive, timeouts, refused pushes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

import pytest
from flwr.app import ConfigRecord, Message, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from coordinator.exchange import Exchange, exchange


@pytest.fixture(autouse=True)
def _task_identity() -> None:
    """Flower stamps messages with the running task's identity; tests have none."""
    TaskIdentity.run_id = 1
    TaskIdentity.node_id = 0
    TaskIdentity.task_id = 1


class _DelayedGrid:
    """A grid whose node ``n`` answers ``delays[n]`` seconds after the push (None: never)."""

    def __init__(self, delays: dict[int, float | None], *, refuse: Iterable[int] = ()) -> None:
        self.delays = delays
        self.refuse = set(refuse)
        self.pulls = 0
        self._due: dict[str, tuple[float, Message]] = {}

    def push_messages(self, messages: Iterable[Message]) -> list[str]:
        ids = []
        for msg in messages:
            if msg.metadata.dst_node_id in self.refuse:
                continue
            msg.metadata.__dict__["_message_id"] = uuid.uuid4().hex
            delay = self.delays[msg.metadata.dst_node_id]
            if delay is not None:
                reply = Message(RecordDict({"c": ConfigRecord({"ok": True})}), reply_to=msg)
                reply.metadata.__dict__["_src_node_id"] = msg.metadata.dst_node_id
                self._due[msg.metadata.message_id] = (time.monotonic() + delay, reply)
            ids.append(msg.metadata.message_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> list[Message]:
        self.pulls += 1
        now = time.monotonic()
        ready = [i for i in message_ids if i in self._due and self._due[i][0] <= now]
        return [self._due.pop(i)[1] for i in ready]


def _messages(nodes: Iterable[int]) -> list[Message]:
    return [Message(RecordDict(), dst_node_id=n, message_type="query") for n in nodes]


def test_replies_are_handed_over_as_they_arrive() -> None:
    grid = _DelayedGrid({1: 0.0, 2: 0.3})
    incoming = Exchange(grid, _messages([1, 2]), timeout_s=5)  # type: ignore[arg-type]
    started = time.monotonic()

    first = next(iter(incoming))
    first_at = time.monotonic() - started
    rest = incoming.wait()

    assert first.metadata.src_node_id == 1
    assert first_at < 0.2  # long before the slow node answers
    assert [m.metadata.src_node_id for m in rest] == [1, 2]
    assert incoming.unanswered == set()


def test_timeout_returns_what_came_and_names_the_silent_nodes() -> None:
    grid = _DelayedGrid({1: 0.0, 2: None})
    incoming = Exchange(grid, _messages([1, 2]), timeout_s=0.2)  # type: ignore[arg-type]
    started = time.monotonic()

    replies = incoming.wait()

    assert 0.2 <= time.monotonic() - started < 1.0
    assert [m.metadata.src_node_id for m in replies] == [1]
    assert incoming.unanswered == {2}


def test_refused_push_counts_as_unanswered_without_waiting() -> None:
    grid = _DelayedGrid({1: 0.0, 2: 0.0}, refuse=[2])

    incoming = Exchange(grid, _messages([1, 2]), timeout_s=None)  # type: ignore[arg-type]

    assert len(incoming.wait()) == 1
    assert incoming.unanswered == {2}


def test_polling_backs_off_while_waiting() -> None:
    grid = _DelayedGrid({1: 0.5})

    exchange(grid, _messages([1]), timeout_s=5)  # type: ignore[arg-type]

    # Fixed 2 ms polling would pull ~250 times in 0.5 s; a twentieth of the wait far fewer.
    assert grid.pulls < 80


def test_second_iteration_replays_the_replies() -> None:
    grid = _DelayedGrid({1: 0.0, 2: 0.0})
    incoming = Exchange(grid, _messages([1, 2]), timeout_s=5)  # type: ignore[arg-type]

    first = [m.metadata.src_node_id for m in incoming]
    second = [m.metadata.src_node_id for m in incoming]

    assert sorted(first) == sorted(second) == [1, 2]


@pytest.mark.parametrize("timeout_s", [-1.0])
def test_negative_timeout_is_refused(timeout_s: float) -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        Exchange(_DelayedGrid({}), [], timeout_s=timeout_s)  # type: ignore[arg-type]
