"""An in-process Flower ``Grid`` for tests: delivers messages straight to a ClientApp.

It replaces the transport only (no Ray, no gRPC): the coordinator's round logic and the
participants' ClientApp run for real. Each node keeps its own ``Context`` across rounds, as
Flower's runtimes do. The simulation runtime and the deployment engine are exercised by
their own tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid
from flwr.supercore.task_identity import TaskIdentity


class LocalGrid(Grid):
    """A grid of ``n_nodes`` nodes, node i being partition i of the federation file."""

    def __init__(self, client_app: ClientApp, *, n_nodes: int) -> None:
        TaskIdentity.run_id = 1
        TaskIdentity.node_id = 0
        TaskIdentity.task_id = 1
        self._app = client_app
        self._contexts = {
            1000 + i: Context(
                run_id=1,
                node_id=1000 + i,
                node_config={"partition-id": i, "num-partitions": n_nodes},
                state=RecordDict(),
                run_config={},
            )
            for i in range(n_nodes)
        }
        self.sent: list[str] = []
        self._replies: dict[str, Message] = {}

    def set_run(self, run_id: int) -> None:  # pragma: no cover - not used in tests
        pass

    @property
    def run(self):  # type: ignore[no-untyped-def]  # pragma: no cover
        raise NotImplementedError

    def create_message(self, *args, **kwargs):  # type: ignore[no-untyped-def]  # pragma: no cover
        raise NotImplementedError

    def get_node_ids(self) -> Iterable[int]:
        return list(self._contexts)

    def get_nodes(self):  # type: ignore[no-untyped-def]  # pragma: no cover
        return []

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Deliver each message at once; its reply waits to be pulled."""
        ids = []
        for msg in messages:
            msg.metadata.__dict__["_message_id"] = uuid.uuid4().hex
            self.sent.append(msg.metadata.message_type)
            context = self._contexts[msg.metadata.dst_node_id]
            try:
                reply = self._app(msg, context)
            except Exception as exc:
                reply = Message(Error(code=500, reason=repr(exc)), reply_to=msg)
            self._replies[msg.metadata.message_id] = reply
            ids.append(msg.metadata.message_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._replies.pop(i) for i in list(message_ids) if i in self._replies]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        return self.pull_messages(self.push_messages(messages))
