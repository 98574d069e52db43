"""The scale benchmark's fits: which node count it verifies, and what it says of the largest."""

from __future__ import annotations

from typing import Any

from bench import scale

GB = 10**9


def points(memory_gb: list[float]) -> list[dict[str, Any]]:
    """Three measured counts with seconds growing linearly and the given memory peaks."""
    return [
        {"nodes": n, "handshake_s": 0.2 * n, "round_s": 0.1 * n,
         "memory": {"peak_pss_bytes": m * GB, "peak_rss_sum_bytes": m * GB}}
        for n, m in zip((100, 300, 1000), memory_gb, strict=True)
    ]  # fmt: skip


def test_memory_that_grows_bounds_the_largest_count() -> None:
    measured = points([2.0, 4.0, 11.0])  # 1 GB + 10 GB per 1,000 nodes
    fits = scale._fits(measured, budget=25 * GB)
    assert abs(fits["largest_nodes_pss"] - 2400) <= 1
    document = {"points": measured, "memory_total_bytes": 25 * GB, **fits}
    assert "says only that memory does not limit" not in scale.largest_line(document)


def test_verification_shrinks_to_what_the_time_limit_allows() -> None:
    measured = points([2.0, 2.0, 2.01])
    fits = scale._fits(measured, budget=25 * GB)
    n = fits["verify_nodes"]
    budget = scale.VERIFY_TIME_SHARE * scale.VERIFY_LIMIT_S
    assert scale.predicted_seconds(measured, fits["fits"], n) <= budget
    assert n == scale.VERIFY_BOUNDS[0] or (
        scale.predicted_seconds(measured, fits["fits"], n + scale.VERIFY_STEP) > budget
    )


def test_an_extrapolation_far_past_the_measurements_names_time_as_the_limit() -> None:
    measured = points([2.0, 2.0, 2.01])  # 10 MB per 1,000 nodes: millions "fit"
    fits = scale._fits(measured, budget=25 * GB)
    document = {"points": measured, "memory_total_bytes": 25 * GB, **fits}
    line = scale.largest_line(document)
    assert fits["largest_nodes_pss"] > 1_000_000
    assert "says only that memory does not limit the node count" in line
    assert " h for the handshake" in line


def test_memory_that_does_not_grow_gives_no_largest_count() -> None:
    measured = points([2.0, 2.0, 2.0])
    fits = scale._fits(measured, budget=25 * GB)
    assert fits["largest_nodes_pss"] is None
    assert fits["verify_nodes"] <= scale.VERIFY_BOUNDS[1]
    document = {"points": measured, "memory_total_bytes": 25 * GB, **fits}
    assert "did not grow" in scale.largest_line(document)
