"""Vertical LR served in parts: ONNX parts + combiner equal the jointly trained model."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import ExportError
from models.vertical_parts import (
    Combiner,
    PartScorer,
    combine,
    combiner_graph,
    lr_part_graph,
    score_parts,
)
from privacy.vertical import (
    PlainCodec,
    VerticalLRConfig,
    VerticalLRGuest,
    VerticalLRHost,
    run_epoch,
)


def _trained() -> tuple[VerticalLRGuest, VerticalLRHost, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    xg = rng.normal(size=(800, 3)).astype(np.float32) * 3
    xh = rng.normal(size=(800, 4)).astype(np.float32) * 5 + 2
    y = (rng.random(800) < 1 / (1 + np.exp(-(xg[:, 0] - xh[:, 1] / 5)))).astype(float)
    config = VerticalLRConfig(batch_rows=200, feature_clip_norm=2.0)  # clipping binds often
    guest = VerticalLRGuest(xg[:600], y[:600], codec=PlainCodec(), config=config)
    host = VerticalLRHost(xh[:600], codec=PlainCodec(), config=config)
    for epoch in range(3):
        run_epoch(guest, [host], epoch=epoch, seed=1)
    return guest, host, xg[600:], xh[600:]


def _parts(guest: VerticalLRGuest, host: VerticalLRHost):  # type: ignore[no-untyped-def]
    clip = guest.config.feature_clip_norm
    return (
        lr_part_graph(
            party="bank", mean=guest.mean, scale=guest.scale, weights=guest.weights, clip_norm=clip
        ),
        lr_part_graph(
            party="gov", mean=host.mean, scale=host.scale, weights=host.weights, clip_norm=clip
        ),
        combiner_graph(parties=["bank", "gov"], bias=guest.bias),
    )


def test_parts_and_combiner_match_the_trained_model_for_a_batch_and_one_subject() -> None:
    guest, host, xg, xh = _trained()
    bank, gov, combiner = _parts(guest, host)
    expected = 1 / (1 + np.exp(-guest.logits(xg, [host.score_part(xh)])))

    batch = combine(combiner, {"bank": score_parts(bank, xg), "gov": score_parts(gov, xh)})
    one = combine(combiner, {"bank": score_parts(bank, xg[7]), "gov": score_parts(gov, xh[7])})

    assert np.max(np.abs(batch - expected)) < 1e-5
    assert one.shape == (1,) and abs(one[0] - expected[7]) < 1e-5


def test_a_part_sees_only_its_own_features_and_gives_one_number_per_subject() -> None:
    guest, host, _, xh = _trained()
    _, gov, _ = _parts(guest, host)

    partial = score_parts(gov, xh)

    np.testing.assert_allclose(partial, host.score_part(xh), atol=1e-9)
    with pytest.raises(Exception):  # noqa: B017 - ONNX Runtime: wrong feature count
        score_parts(gov, xh[:, :3])


def test_combiner_refuses_missing_or_misaligned_parts() -> None:
    combiner = combiner_graph(parties=["bank", "gov"], bias=0.1)

    with pytest.raises(ValueError, match="needs the parts of"):
        combine(combiner, {"bank": np.zeros(3)})
    with pytest.raises(ValueError, match="same subjects"):
        combine(combiner, {"bank": np.zeros(3), "gov": np.zeros(4)})


def test_bad_part_parameters_are_refused() -> None:
    with pytest.raises(ExportError, match="one value per feature"):
        lr_part_graph(
            party="p", mean=np.zeros(2), scale=np.ones(3), weights=np.zeros(3), clip_norm=1.0
        )
    with pytest.raises(ExportError, match="finite"):
        lr_part_graph(
            party="p", mean=np.zeros(1), scale=np.ones(1), weights=np.array([np.nan]), clip_norm=1.0
        )
    with pytest.raises(ExportError, match="distinct"):
        combiner_graph(parties=["a", "a"], bias=0.0)


def test_a_loaded_part_refuses_rows_of_the_wrong_width_and_guest_bias_sits_in_its_part() -> None:
    guest, host, xg, xh = _trained()
    clip = guest.config.feature_clip_norm
    bank = PartScorer(
        lr_part_graph(
            party="bank",
            mean=guest.mean,
            scale=guest.scale,
            weights=guest.weights,
            clip_norm=clip,
            bias=guest.bias,
        )
    )
    gov = PartScorer(
        lr_part_graph(
            party="gov", mean=host.mean, scale=host.scale, weights=host.weights, clip_norm=clip
        )
    )
    combiner = Combiner(combiner_graph(parties=["bank", "gov"], bias=0.0))

    scores = combiner.combine({"bank": bank.score(xg), "gov": gov.score(xh)})

    expected = 1 / (1 + np.exp(-guest.logits(xg, [host.score_part(xh)])))
    np.testing.assert_allclose(scores, expected, atol=1e-9)
    with pytest.raises(ValueError, match="reads 3 features, got shape"):
        bank.score(xh)
    with pytest.raises(ValueError, match="needs the parts of"):
        combiner.combine({"bank": bank.score(xg)})
