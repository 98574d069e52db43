"""Vertical logistic regression: CKKS equals the plaintext protocol, and what each side sees."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tenseal as ts
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from privacy.errors import InvalidParametersError, InvalidUpdateError, PrivacyError
from privacy.he.public import PublicContext
from privacy.he.secret import SecretContext
from privacy.vertical import (
    CKKSHostCodec,
    PlainCodec,
    VerticalLRConfig,
    VerticalLRGuest,
    VerticalLRHost,
    batch_plan,
    run_epoch,
)
from privacy.vertical.ckks_guest import CKKSGuestCodec
from privacy.vertical.codecs import MASK_BITS, unpack_columns
from privacy.vertical.paillier import PaillierGuestCodec, PaillierHostCodec


@pytest.fixture(scope="module")
def ckks_pair() -> tuple[CKKSGuestCodec, CKKSHostCodec]:
    guest = CKKSGuestCodec()
    return guest, CKKSHostCodec(guest.public_material())


def _data(n: int = 3_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels depend on both parties' features, so neither alone does as well."""
    rng = np.random.default_rng(seed)
    xg, xh = rng.normal(size=(n, 4)), rng.normal(size=(n, 5))
    logit = xg @ np.array([1.0, -0.5, 0.3, 0.0]) + xh @ np.array([0.8, 0.0, -1.2, 0.4, 0.2])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return xg, xh, y


def _train(guest_codec, host_codecs, xg, xhs, y, *, epochs=4, config=None):  # type: ignore[no-untyped-def]
    config = config or VerticalLRConfig(batch_rows=512)
    guest = VerticalLRGuest(xg, y, codec=guest_codec, config=config, rng=np.random.default_rng(1))
    hosts = [
        VerticalLRHost(x, codec=c, config=config) for x, c in zip(xhs, host_codecs, strict=True)
    ]
    for epoch in range(epochs):
        run_epoch(guest, hosts, epoch=epoch, seed=3)
    return guest, hosts


def test_ckks_protocol_matches_the_plaintext_protocol(ckks_pair) -> None:  # type: ignore[no-untyped-def]
    xg, xh, y = _data()

    plain_g, [plain_h] = _train(PlainCodec(), [PlainCodec()], xg, [xh], y)
    ckks_g, [ckks_h] = _train(ckks_pair[0], [ckks_pair[1]], xg, [xh], y)

    np.testing.assert_allclose(ckks_h.weights, plain_h.weights, atol=1e-4)
    np.testing.assert_allclose(ckks_g.weights, plain_g.weights, atol=1e-4)


def test_joint_model_is_close_to_centralised_and_beats_the_guest_alone(ckks_pair) -> None:  # type: ignore[no-untyped-def]
    xg, xh, y = _data(n=4_000)
    train, test = slice(0, 3_000), slice(3_000, None)

    guest, [host] = _train(ckks_pair[0], [ckks_pair[1]], xg[train], [xh[train]], y[train], epochs=6)
    auc = roc_auc_score(y[test], guest.logits(xg[test], [host.score_part(xh[test])]))
    joined = np.hstack([xg, xh])
    central = LogisticRegression().fit(joined[train], y[train]).decision_function(joined[test])
    alone = LogisticRegression().fit(xg[train], y[train]).decision_function(xg[test])

    assert abs(auc - roc_auc_score(y[test], central)) < 0.01
    assert auc > roc_auc_score(y[test], alone) + 0.05


def test_two_hosts_learn_what_one_host_with_all_columns_learns() -> None:
    xg, xh, y = _data()

    _, [one] = _train(PlainCodec(), [PlainCodec()], xg, [xh], y)
    _, [a, b] = _train(PlainCodec(), [PlainCodec(), PlainCodec()], xg, [xh[:, :2], xh[:, 2:]], y)

    # Rows are clipped per host (norm 8), which rarely binds on 2-5 standard normal columns.
    assert one.weights.shape == (5,) and a.weights.shape == (2,) and b.weights.shape == (3,)
    np.testing.assert_allclose(np.concatenate([a.weights, b.weights]), one.weights, atol=0.05)


def test_host_holds_no_secret_and_cannot_decrypt_residuals(ckks_pair) -> None:  # type: ignore[no-untyped-def]
    guest_codec, host_codec = ckks_pair
    residuals = np.linspace(-0.5, 0.5, 64)

    payload = guest_codec.encrypt_residuals(residuals)

    assert isinstance(host_codec._public, PublicContext)
    assert not host_codec._public._public_tenseal().is_private()
    vector = host_codec._public.load_ciphertext(payload)
    with pytest.raises(ValueError):  # TenSEAL: no secret key in a public context
        vector.decrypt()
    assert residuals.tobytes() not in payload


def test_public_material_is_refused_as_a_secret_and_secrets_are_refused_as_public(
    ckks_pair,
) -> None:  # type: ignore[no-untyped-def]
    guest_codec, _ = ckks_pair
    material = guest_codec.public_material()

    with pytest.raises(PrivacyError):
        SecretContext.from_bytes(material)  # the coordinator relays nothing it could decrypt
    secret = SecretContext.generate().serialize(include_secret_key=True)
    with pytest.raises(PrivacyError):
        CKKSHostCodec(secret)


def test_guest_sees_only_masked_sums_never_the_host_gradient(ckks_pair) -> None:  # type: ignore[no-untyped-def]
    guest_codec, host_codec = ckks_pair
    rng = np.random.default_rng(5)
    x = rng.normal(size=(256, 3))
    d = rng.uniform(-0.7, 0.7, 256)

    answer = host_codec.masked_columns(guest_codec.encrypt_residuals(d), x)
    seen = guest_codec.open_column_sums(answer.payload, rows=256, columns=3)

    true = x.T @ d
    assert np.all(np.abs(seen - true) > 2.0 ** (MASK_BITS - 8))  # masked far beyond the value
    np.testing.assert_allclose(seen - answer.mask_totals, true, atol=1e-3)  # host unmasks


def test_each_slot_the_guest_decrypts_is_masked(ckks_pair) -> None:  # type: ignore[no-untyped-def]
    guest_codec, host_codec = ckks_pair
    d, x = np.full(128, 0.25), np.ones((128, 1))

    answer = host_codec.masked_columns(guest_codec.encrypt_residuals(d), x)
    [column] = unpack_columns(answer.payload, expected=1)
    values = np.array(ts.ckks_vector_from(guest_codec._secret._ts, column).decrypt())

    assert np.std(values) > 2.0 ** (MASK_BITS - 4)  # uniform masks, not 128 copies of 0.25


def test_tampered_host_answers_are_refused(ckks_pair) -> None:  # type: ignore[no-untyped-def]
    guest_codec, host_codec = ckks_pair
    x = np.ones((16, 2))
    payload = host_codec.masked_columns(guest_codec.encrypt_residuals(np.zeros(16)), x).payload

    with pytest.raises(InvalidUpdateError):
        guest_codec.open_column_sums(payload[:-10], rows=16, columns=2)
    with pytest.raises(InvalidUpdateError):
        guest_codec.open_column_sums(payload, rows=16, columns=3)
    with pytest.raises(InvalidUpdateError):
        guest_codec.open_column_sums(payload, rows=17, columns=2)


def test_host_refuses_a_residual_ciphertext_of_the_wrong_batch(ckks_pair) -> None:  # type: ignore[no-untyped-def]
    guest_codec, host_codec = ckks_pair

    with pytest.raises(InvalidUpdateError, match="batch has 20"):
        host_codec.masked_columns(guest_codec.encrypt_residuals(np.zeros(10)), np.ones((20, 2)))
    with pytest.raises(InvalidUpdateError):
        host_codec.masked_columns(b"garbage", np.ones((20, 2)))


def test_paillier_baseline_gives_the_same_column_sums() -> None:
    guest = PaillierGuestCodec(n_length=1024)
    host = PaillierHostCodec(guest.public_material())
    rng = np.random.default_rng(2)
    d, x = rng.uniform(-0.7, 0.7, 12), rng.normal(size=(12, 2))

    answer = host.masked_columns(guest.encrypt_residuals(d), x)
    sums = guest.open_column_sums(answer.payload, rows=12, columns=2)

    np.testing.assert_allclose(sums - answer.mask_totals, x.T @ d, atol=1e-6)


def test_label_noise_changes_the_release_and_is_accounted() -> None:
    xg, xh, y = _data(n=1_000)
    config = VerticalLRConfig(batch_rows=500, label_noise_multiplier=1.0)

    noisy, [noisy_host] = _train(PlainCodec(), [PlainCodec()], xg, [xh], y, epochs=2, config=config)
    _, [clean_host] = _train(PlainCodec(), [PlainCodec()], xg, [xh], y, epochs=2)

    assert not np.allclose(noisy_host.weights, clean_host.weights)
    event = noisy.label_dp_event(epochs=2)
    assert event is not None and event.steps == 2 and event.sample_rate == 1.0
    assert _train(PlainCodec(), [PlainCodec()], xg, [xh], y, epochs=1)[0].label_dp_event(1) is None


def test_batch_plan_covers_every_row_once_per_epoch() -> None:
    plan = batch_plan(1_001, batch_rows=100, epoch=3, seed=9)

    rows = np.concatenate(plan.batches)
    assert sorted(rows.tolist()) == list(range(1_001))
    assert not np.array_equal(
        rows, np.concatenate(batch_plan(1_001, batch_rows=100, epoch=4, seed=9).batches)
    )


@pytest.mark.parametrize(
    "change",
    [{"learning_rate": 0.0}, {"l2": -1.0}, {"batch_rows": 0}, {"label_noise_multiplier": 0.0}],
)
def test_bad_settings_are_refused(change: dict[str, float]) -> None:
    with pytest.raises(InvalidParametersError):
        dataclasses.replace(VerticalLRConfig(), **change)


def test_misaligned_hosts_are_refused() -> None:
    xg, xh, y = _data(n=100)
    config = VerticalLRConfig()
    guest = VerticalLRGuest(xg, y, codec=PlainCodec(), config=config)
    host = VerticalLRHost(xh[:90], codec=PlainCodec(), config=config)

    with pytest.raises(InvalidParametersError, match="aligned rows"):
        run_epoch(guest, [host], epoch=0, seed=0)
