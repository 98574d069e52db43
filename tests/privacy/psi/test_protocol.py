"""Diffie-Hellman PSI: the true intersection on real partly overlapping ids, and refusals."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pandas as pd
import pytest

from privacy.errors import PSIError
from privacy.psi import PSIGuest, PSIHost, PSIResult
from privacy.psi.group import Blinder, hash_ids, split_elements

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "credit"


def _ids(name: str, column: str) -> list[str]:
    path = SHARED / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: these tests need ../shared/data beside the project")
    return pd.read_csv(path, dtype=str)[column].tolist()


def _run(guest_ids: list[str], host_ids: list[str], *, reveal: bool = False):  # type: ignore[no-untyped-def]
    guest = PSIGuest(guest_ids, reveal_to_host=reveal)
    host = PSIHost(host_ids)
    result = guest.finish(host.answer(guest.offer()))
    return guest, host, result


@pytest.mark.shared_data
def test_real_sample_ids_give_the_true_intersection() -> None:
    # Arrange: FATE's breast sample-id files; the guest's id column repeats ids (one row
    # per mock sample), so the guest intersects its distinct ids.
    guest_ids = list(dict.fromkeys(_ids("breast_hetero_guest_sample_id.csv", "id")))
    host_ids = [*_ids("breast_hetero_host_sample_id.csv", "id")[:250], "9001", "9002"]
    truth = set(guest_ids) & set(host_ids)

    # Act
    _, _, result = _run(guest_ids, host_ids)

    # Assert: partial overlap on both sides, exact match, in the guest's own order.
    assert 0 < len(truth) < min(len(guest_ids), len(host_ids))
    assert set(result.ids) == truth
    assert list(result.ids) == [i for i in guest_ids if i in truth]
    assert (result.own_count, result.other_count) == (len(guest_ids), len(host_ids))


@pytest.mark.shared_data
def test_duplicate_ids_are_refused_with_counts() -> None:
    raw = _ids("breast_hetero_guest_sample_id.csv", "id")

    with pytest.raises(PSIError, match=r"occur more than once .*duplicate row\(s\)"):
        PSIGuest(raw)


@pytest.mark.shared_data
def test_disjoint_id_columns_give_a_clear_empty_intersection_error() -> None:
    guest_ids = _ids("breast_hetero_guest_sample_id.csv", "mock_id")
    host_ids = _ids("breast_hetero_host_sample_id.csv", "sample_id")

    with pytest.raises(PSIError, match="intersection is empty"):
        _run(guest_ids, host_ids)


def test_guest_only_mode_keeps_the_intersection_from_the_host() -> None:
    guest, _host, result = _run(["1", "2", "3"], ["2", "3", "4"])

    assert result.ids == ("2", "3")
    with pytest.raises(PSIError, match="keeps the intersection at the guest"):
        guest.reveal()


def test_reveal_mode_gives_the_host_the_same_intersection() -> None:
    guest, host, guest_view = _run(["a1", "b2", "c3", "d4"], ["d4", "x9", "b2"], reveal=True)

    host_view = host.learn(guest.reveal())

    assert set(guest_view.ids) == set(host_view.ids) == {"b2", "d4"}
    assert host_view.ids == ("d4", "b2")  # the host's own order
    assert isinstance(host_view, PSIResult) and host_view.other_count == 4


def test_offer_hides_ids_and_sessions_are_unlinkable() -> None:
    ids = [str(i) for i in range(50)]
    first, second = PSIGuest(ids).offer(), PSIGuest(ids).offer()

    plain = set(hash_ids([i.encode() for i in ids], session=first.session))
    sent = set(split_elements(first.elements))

    assert not sent & plain  # the host never sees H(x) unblinded
    assert not sent & set(split_elements(second.elements))  # fresh secret and session


@pytest.mark.parametrize(
    ("guest_ids", "host_ids", "reason"),
    [
        (["123", "456"], ["C123", "C456"], "alphanumeric values here and like integer"),
        (["00123", "00456"], ["123", "456"], "leading zeros"),
        (["1", "2"], ["91110000600037341L", "91110000600037342L"], "uscc values here"),
    ],
)
def test_mismatched_id_formats_are_refused(
    guest_ids: list[str], host_ids: list[str], reason: str
) -> None:
    with pytest.raises(PSIError, match=reason):
        _run(guest_ids, host_ids)


def test_answer_from_another_session_is_refused() -> None:
    guest, other = PSIGuest(["1", "2"]), PSIGuest(["1", "2"])
    answer = PSIHost(["1", "2"]).answer(other.offer())

    with pytest.raises(PSIError, match="another PSI session"):
        guest.finish(answer)


def test_truncated_or_forged_elements_are_refused() -> None:
    guest, host = PSIGuest(["1", "2"]), PSIHost(["1", "2"])
    offer = guest.offer()

    with pytest.raises(PSIError, match="whole number of 32-byte"):
        host.answer(dataclasses.replace(offer, elements=offer.elements[:-1]))
    with pytest.raises(PSIError, match="expected 2 elements"):
        host.answer(dataclasses.replace(offer, elements=offer.elements[:32]))
    with pytest.raises(PSIError, match="not a valid ristretto255"):
        host.answer(dataclasses.replace(offer, elements=b"\xff" * 64))


def test_reveal_with_bad_positions_is_refused() -> None:
    guest, host, _ = _run(["1", "2", "3"], ["2", "3"], reveal=True)
    reveal = guest.reveal()

    with pytest.raises(PSIError, match="outside the host's list"):
        host.learn(dataclasses.replace(reveal, positions=(0, 7)))
    with pytest.raises(PSIError, match="twice"):
        host.learn(dataclasses.replace(reveal, positions=(1, 1)))


def test_empty_and_missing_ids_are_refused() -> None:
    with pytest.raises(PSIError, match="row 2 has an empty id"):
        PSIGuest(["1", "  ", "3"])
    with pytest.raises(PSIError, match="no ids"):
        PSIHost([])


def test_secret_scalar_cannot_be_pickled() -> None:
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(Blinder())


def test_threaded_blinding_matches_single_threaded() -> None:
    elements = hash_ids([str(i).encode() for i in range(5_000)], session=b"s" * 16)
    blinder = Blinder(workers=1)
    threaded = Blinder(workers=2)
    threaded._scalar = blinder._scalar  # the same secret, two schedules

    assert threaded.blind(elements) == blinder.blind(elements)


def test_two_hosts_get_only_the_rows_all_three_share() -> None:
    guest = PSIGuest(["1", "2", "3", "4", "5"], reveal_to_host=True)
    first, second = PSIHost(["2", "3", "4", "9"]), PSIHost(["4", "3", "8", "5"])
    offer = guest.offer()

    result, reveals = guest.finish_many([first.answer(offer), second.answer(offer)])

    assert result.ids == ("3", "4")
    assert set(first.learn(reveals[0]).ids) == set(second.learn(reveals[1]).ids) == {"3", "4"}


def test_parties_resume_from_their_saved_state() -> None:
    guest, host = PSIGuest(["a1", "b2", "c3"], reveal_to_host=True), PSIHost(["c3", "a1", "z9"])
    offer = guest.offer()
    answer = host.answer(offer)

    resumed_guest = PSIGuest.restore(guest.export_state(include_secret=True))
    resumed_host = PSIHost.restore(host.export_state())
    result, [reveal] = resumed_guest.finish_many([answer])

    assert result.ids == ("a1", "c3")
    assert resumed_host.learn(reveal).ids == ("c3", "a1")
    with pytest.raises(PSIError, match="include_secret=True"):
        guest.export_state(include_secret=False)
    damaged = dict(guest.export_state(include_secret=True), order=[0, 0, 1])
    with pytest.raises(PSIError, match="damaged"):
        PSIGuest.restore(damaged)
