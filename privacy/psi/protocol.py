"""Diffie-Hellman private set intersection between a label holder and one feature holder.

The protocol of Meadows (1986) and Huberman, Franklin & Hogg (1999), as FATE and SecretFlow
run it ("ECDH-PSI"), over ristretto255 (:mod:`privacy.psi.group`). The guest (label holder)
holds ids X and secret a; the host holds ids Y and secret b; H hashes an id to the group:

1. guest → host: ``offer``  = H(x)^a for x in X, in a random order;
2. host → guest: ``answer`` = (H(x)^a)^b in the order received, and H(y)^b for y in Y, in
   another random order;
3. the guest raises H(y)^b to a and matches H(x)^ab against H(y)^ba: it learns X ∩ Y;
4. only when ``reveal_to_host`` is set, guest → host: ``reveal`` = the positions of the
   host's shuffled list that matched, from which the host learns X ∩ Y too.

What each side learns (honest-but-curious, DDH in ristretto255): the guest learns X ∩ Y and
|Y|; the host learns |X| and, with ``reveal_to_host``, X ∩ Y; neither learns anything about
the other's ids outside the intersection (they are pseudorandom group elements under a
secret exponent it does not know). The coordinator, which relays the messages, sees only
blinded elements and the list sizes (and with a reveal, |X ∩ Y|): it holds no exponent and
cannot link an element to an id. Both sides first exchange id *format profiles*
(:mod:`privacy.psi.ids`) so that ids written differently fail loudly instead of never
matching. Messages are plain dataclasses of bytes and ints, for Flower records.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import PSIError
from .group import Blinder, hash_ids, join_elements, split_elements
from .ids import IdFormat, canonical_ids, id_format

__all__ = ["PSIAnswer", "PSIGuest", "PSIHost", "PSIOffer", "PSIResult", "PSIReveal"]

_SESSION_BYTES = 16


@dataclass(frozen=True)
class PSIOffer:
    """Step 1, guest to host: the guest's blinded ids, shuffled, and its id format."""

    session: bytes
    elements: bytes
    count: int
    id_format: IdFormat
    reveal_to_host: bool


@dataclass(frozen=True)
class PSIAnswer:
    """Step 2, host to guest: the offer raised to the host's secret, in the offer's order,
    and the host's own blinded ids, shuffled."""

    session: bytes
    double_blinded: bytes
    host_elements: bytes
    host_count: int
    id_format: IdFormat


@dataclass(frozen=True)
class PSIReveal:
    """Step 4 (optional), guest to host: positions of the host's shuffled list in X ∩ Y."""

    session: bytes
    positions: tuple[int, ...]


@dataclass(frozen=True)
class PSIResult:
    """One party's view of the intersection: its own ids that are shared, in its own order."""

    ids: tuple[str, ...]
    own_count: int
    other_count: int

    @property
    def size(self) -> int:
        return len(self.ids)


def _session_of(message: PSIOffer | PSIAnswer | PSIReveal, expected: bytes, what: str) -> None:
    if not isinstance(message.session, bytes) or message.session != expected:
        raise PSIError(f"{what} belongs to another PSI session")


def _refuse_empty(ids: Sequence[str], *, own: int, other: int) -> None:
    if not ids:
        raise PSIError(
            f"the intersection is empty ({own} ids here, {other} there): the parties share "
            "no subject, or their id columns hold different identifiers"
        )


class PSIGuest:
    """The label holder's side: makes the offer, learns the intersection, may reveal it."""

    def __init__(
        self,
        ids: Sequence[object],
        *,
        reveal_to_host: bool = False,
        workers: int | None = None,
        where: str = "guest id column",
    ) -> None:
        self._ids = canonical_ids(ids, where=where)
        self._format = id_format(self._ids)
        self._blinder = Blinder(workers=workers)
        self._workers = workers
        self._session = secrets.token_bytes(_SESSION_BYTES)
        self._order = list(range(len(self._ids)))
        secrets.SystemRandom().shuffle(self._order)
        self._reveal_to_host = reveal_to_host
        self._host_positions: tuple[int, ...] | None = None

    @property
    def session(self) -> bytes:
        """The protocol session this guest runs (not secret: it travels with the offer)."""
        return self._session

    def export_state(self, *, include_secret: bool) -> dict[str, object]:
        """Everything needed to resume between offer and finish (secret scalar included),
        for the party's own state file; ``include_secret=True`` must be explicit."""
        return {
            "role": "guest",
            "ids": list(self._ids),
            "order": list(self._order),
            "session": self._session.hex(),
            "scalar": self._blinder.secret_bytes(include_secret=include_secret).hex(),
            "reveal_to_host": self._reveal_to_host,
        }

    @classmethod
    def restore(cls, state: dict[str, object], *, workers: int | None = None) -> PSIGuest:
        """A guest from :meth:`export_state` output."""
        guest = cls.__new__(cls)
        try:
            guest._ids = [str(i) for i in state["ids"]]  # type: ignore[attr-defined]
            guest._order = [int(i) for i in state["order"]]  # type: ignore[attr-defined]
            guest._session = bytes.fromhex(str(state["session"]))
            scalar = bytes.fromhex(str(state["scalar"]))
            guest._reveal_to_host = bool(state["reveal_to_host"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PSIError(f"unreadable PSI guest state: {exc}") from exc
        if state.get("role") != "guest" or sorted(guest._order) != list(range(len(guest._ids))):
            raise PSIError("PSI state is not a guest's, or its order is damaged")
        guest._format = id_format(guest._ids)
        guest._blinder = Blinder(workers=workers, scalar=scalar)
        guest._workers = workers
        guest._host_positions = None
        return guest

    def offer(self) -> PSIOffer:
        hashed = hash_ids(
            [self._ids[i].encode() for i in self._order],
            session=self._session,
            workers=self._workers,
        )
        blinded = self._blinder.blind(hashed)
        return PSIOffer(
            session=self._session,
            elements=join_elements(blinded),
            count=len(blinded),
            id_format=self._format,
            reveal_to_host=self._reveal_to_host,
        )

    def finish(self, answer: PSIAnswer) -> PSIResult:
        """Match the answer; the guest's ids in X ∩ Y (an empty intersection is an error)."""
        result, _ = self.finish_many([answer])
        return result

    def finish_many(self, answers: Sequence[PSIAnswer]) -> tuple[PSIResult, tuple[PSIReveal, ...]]:
        """Several hosts answered the same offer: the ids every one of them shares with the
        guest, and for each host the reveal of exactly those rows (in host order)."""
        if not answers:
            raise PSIError("finish_many needs at least one host's answer")
        matches = [self._match(answer) for answer in answers]
        shared = set(matches[0])
        for match in matches[1:]:
            shared &= set(match)
        ids = tuple(self._ids[i] for i in sorted(shared))
        _refuse_empty(ids, own=len(self._ids), other=min(a.host_count for a in answers))
        reveals = tuple(
            PSIReveal(session=self._session, positions=tuple(sorted(m[i] for i in shared)))
            for m in matches
        )
        self._host_positions = reveals[0].positions
        self._reveals = reveals
        return PSIResult(
            ids=ids, own_count=len(self._ids), other_count=answers[0].host_count
        ), reveals

    def _match(self, answer: PSIAnswer) -> dict[int, int]:
        """Guest row index -> position in that host's shuffled list, for the shared ids."""
        _session_of(answer, self._session, "the host's answer")
        reason = self._format.mismatch(answer.id_format)
        if reason is not None:
            raise PSIError(f"id formats differ between guest and host: {reason}")
        mine = split_elements(
            answer.double_blinded, expected=len(self._ids), what="double-blinded guest ids"
        )
        theirs = self._blinder.blind(
            split_elements(
                answer.host_elements, expected=answer.host_count, what="blinded host ids"
            )
        )
        position_of = {element: i for i, element in enumerate(theirs)}
        return {
            self._order[shuffled]: position_of[element]
            for shuffled, element in enumerate(mine)
            if element in position_of
        }

    def reveal(self) -> PSIReveal:
        """The host's matched positions; only in reveal-to-host mode, after :meth:`finish`."""
        if not self._reveal_to_host:
            raise PSIError("this PSI session keeps the intersection at the guest")
        if self._host_positions is None:
            raise PSIError("finish() the protocol before revealing the intersection")
        return PSIReveal(session=self._session, positions=self._host_positions)


class PSIHost:
    """A feature holder's side: answers the offer, and learns X ∩ Y only if revealed."""

    def __init__(
        self,
        ids: Sequence[object],
        *,
        workers: int | None = None,
        where: str = "host id column",
    ) -> None:
        self._ids = canonical_ids(ids, where=where)
        self._format = id_format(self._ids)
        self._blinder = Blinder(workers=workers)
        self._workers = workers
        self._order = list(range(len(self._ids)))
        secrets.SystemRandom().shuffle(self._order)
        self._session: bytes | None = None
        self._reveal_allowed = False
        self._guest_count = 0

    def export_state(self) -> dict[str, object]:
        """What the host needs after answering to read a reveal (no secret: the scalar is
        not needed any more)."""
        if self._session is None:
            raise PSIError("answer() the guest's offer before saving the host's state")
        return {
            "role": "host",
            "ids": list(self._ids),
            "order": list(self._order),
            "session": self._session.hex(),
            "reveal_allowed": self._reveal_allowed,
            "guest_count": self._guest_count,
        }

    @classmethod
    def restore(cls, state: dict[str, object]) -> PSIHost:
        """A host that can :meth:`learn` a reveal, from :meth:`export_state` output."""
        host = cls.__new__(cls)
        try:
            host._ids = [str(i) for i in state["ids"]]  # type: ignore[attr-defined]
            host._order = [int(i) for i in state["order"]]  # type: ignore[attr-defined]
            host._session = bytes.fromhex(str(state["session"]))
            host._reveal_allowed = bool(state["reveal_allowed"])
            host._guest_count = int(state["guest_count"])  # type: ignore[call-overload]
        except (KeyError, TypeError, ValueError) as exc:
            raise PSIError(f"unreadable PSI host state: {exc}") from exc
        if state.get("role") != "host" or sorted(host._order) != list(range(len(host._ids))):
            raise PSIError("PSI state is not a host's, or its order is damaged")
        host._format = id_format(host._ids)
        host._blinder = Blinder()
        host._workers = None
        return host

    def answer(self, offer: PSIOffer) -> PSIAnswer:
        if not isinstance(offer.session, bytes) or len(offer.session) != _SESSION_BYTES:
            raise PSIError("the guest's offer carries no valid session id")
        reason = self._format.mismatch(offer.id_format)
        if reason is not None:
            raise PSIError(f"id formats differ between host and guest: {reason}")
        received = split_elements(offer.elements, expected=offer.count, what="blinded guest ids")
        self._session = offer.session
        self._reveal_allowed = bool(offer.reveal_to_host)
        self._guest_count = offer.count
        hashed = hash_ids(
            [self._ids[i].encode() for i in self._order],
            session=offer.session,
            workers=self._workers,
        )
        return PSIAnswer(
            session=offer.session,
            double_blinded=join_elements(self._blinder.blind(received)),
            host_elements=join_elements(self._blinder.blind(hashed)),
            host_count=len(self._ids),
            id_format=self._format,
        )

    def learn(self, reveal: PSIReveal) -> PSIResult:
        """The host's ids in X ∩ Y, from the guest's reveal (reveal-to-host mode only)."""
        if self._session is None:
            raise PSIError("answer() the guest's offer before reading a reveal")
        _session_of(reveal, self._session, "the guest's reveal")
        if not self._reveal_allowed:
            raise PSIError("the guest's offer did not ask to reveal the intersection")
        positions = reveal.positions
        if any(not isinstance(p, int) or not 0 <= p < len(self._ids) for p in positions):
            raise PSIError("the reveal names positions outside the host's list")
        if len(set(positions)) != len(positions):
            raise PSIError("the reveal names a position twice")
        own = sorted(self._order[p] for p in positions)
        ids = tuple(self._ids[i] for i in own)
        _refuse_empty(ids, own=len(self._ids), other=self._guest_count)
        return PSIResult(ids=ids, own_count=len(self._ids), other_count=self._guest_count)
