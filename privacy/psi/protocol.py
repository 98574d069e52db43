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
        shared: list[int] = []
        host_positions: list[int] = []
        for shuffled, element in enumerate(mine):
            hit = position_of.get(element)
            if hit is not None:
                shared.append(self._order[shuffled])
                host_positions.append(hit)
        shared_order = sorted(range(len(shared)), key=shared.__getitem__)
        ids = tuple(self._ids[shared[i]] for i in shared_order)
        _refuse_empty(ids, own=len(self._ids), other=answer.host_count)
        self._host_positions = tuple(sorted(host_positions))
        return PSIResult(ids=ids, own_count=len(self._ids), other_count=answer.host_count)

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
