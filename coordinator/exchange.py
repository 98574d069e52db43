"""Send messages to participants and hand their replies over as they arrive.

Flower's ``Grid.send_and_receive`` returns only when every reply is in, and it polls at a
fixed interval (0.1 s on the simulation runtime, 3 s on a SuperLink's grid), so every round
trip costs up to one interval of idle waiting and the coordinator can do nothing with the
first replies while the last participant is still training. An :class:`Exchange` pushes
the messages with ``Grid.push_messages`` and pulls replies with ``Grid.pull_messages``,
polling at an interval that grows with the time waited (a twentieth of it, 2 ms to
0.1 s). Iterating it yields each
reply as soon as it is pulled, so a strategy can check and add an update (for CKKS, the
expensive part) while the others are still on their way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence

from flwr.app import Message
from flwr.serverapp import Grid

logger = logging.getLogger(__name__)

#: Pull interval: a twentieth of the time waited so far (so polling adds at most ~5 % to a
#: round trip), between MIN_POLL_S and MAX_POLL_S.
MIN_POLL_S = 0.002
MAX_POLL_S = 0.1
POLL_FRACTION = 0.05


class Exchange:
    """Replies to one batch of messages, pulled lazily; iterate to receive them in order of
    arrival. ``replies`` holds every reply pulled so far; :meth:`wait` pulls the rest."""

    def __init__(
        self,
        grid: Grid,
        messages: Sequence[Message],
        *,
        timeout_s: float | None,
        max_poll_s: float = MAX_POLL_S,
    ) -> None:
        if timeout_s is not None and timeout_s < 0:
            raise ValueError(f"timeout_s must be >= 0 or None, got {timeout_s}")
        if max_poll_s <= 0:
            raise ValueError(f"max_poll_s must be > 0, got {max_poll_s}")
        self._grid = grid
        self._max_poll_s = max_poll_s
        # Grids set each message's id on push; a message they could not take gets no id
        # back (the in-memory grid leaves it out, the SuperLink's grid returns None).
        accepted = {str(i) for i in grid.push_messages(messages) if i}
        self._destinations = {
            m.metadata.message_id: m.metadata.dst_node_id
            for m in messages
            if m.metadata.message_id in accepted
        }
        self.refused = [
            m.metadata.dst_node_id for m in messages if m.metadata.message_id not in accepted
        ]
        if self.refused:
            logger.warning("the grid refused %d of %d messages", len(self.refused), len(messages))
        self._pending = set(self._destinations)
        self._deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self.replies: list[Message] = []

    @property
    def done(self) -> bool:
        """Every message has its reply, or the time is up."""
        return not self._pending or self._expired()

    @property
    def unanswered(self) -> set[int]:
        """Node ids whose reply has not been pulled (yet), or whose message was refused."""
        return {self._destinations[m] for m in self._pending} | set(self.refused)

    def __iter__(self) -> Iterator[Message]:
        index = 0
        while True:
            while index < len(self.replies):
                yield self.replies[index]
                index += 1
            if self.done:
                return
            self._pull_until_something()

    def wait(self) -> list[Message]:
        """Pull until every reply is in or the time is up; every reply received."""
        for _ in self:
            pass
        return self.replies

    def _expired(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _pull_until_something(self) -> None:
        started = time.monotonic()
        while not self.done:
            if self._pull():
                return
            now = time.monotonic()
            pause = min(max(MIN_POLL_S, (now - started) * POLL_FRACTION), self._max_poll_s)
            if self._deadline is not None:
                pause = min(pause, max(0.0, self._deadline - now))
            time.sleep(pause)

    def _pull(self) -> int:
        arrived = list(self._grid.pull_messages(list(self._pending)))
        for reply in arrived:
            self._pending.discard(reply.metadata.reply_to_message_id)
        self.replies.extend(arrived)
        return len(arrived)


def exchange(grid: Grid, messages: Iterable[Message], *, timeout_s: float | None) -> list[Message]:
    """Send ``messages`` and return every reply that came back within ``timeout_s``."""
    return Exchange(grid, list(messages), timeout_s=timeout_s).wait()
