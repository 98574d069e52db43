"""Private set intersection throughput: ECDH-PSI over ristretto255 at 100k and 1M ids a side.

Each size runs the whole protocol (`privacy.psi`: the guest's offer, the host's answer, the
guest's match, the reveal to the host) with both parties in this process on this machine's
cores, on decimal ids with 50 % overlap. Ids per second per core counts both parties' ids
(2·n) over the wall time and the cores; the result is checked against the true
intersection. FATE reports about 7 minutes for 10M ids on 16-core hosts.
"""

from __future__ import annotations

import os
import time
from typing import Any

from .common import progress, table

SIZES = (100_000, 1_000_000)
QUICK_SIZES = (10_000,)
#: FATE: ~7 min for 10M ids with 16 cores a host (both parties), as ids per second per core.
FATE_IDS_PER_S_PER_CORE = 2 * 10_000_000 / (7 * 60 * 2 * 16)


def _one(n: int) -> dict[str, Any]:
    from privacy.psi import PSIGuest, PSIHost

    guest_ids = [str(10_000_000 + i) for i in range(n)]
    host_ids = [str(10_000_000 + i) for i in range(n // 2, n + n // 2)]
    started = time.perf_counter()
    guest = PSIGuest(guest_ids, reveal_to_host=True)
    host = PSIHost(host_ids)
    offer = guest.offer()
    answer = host.answer(offer)
    seen_by_guest = guest.finish(answer)
    seen_by_host = host.learn(guest.reveal())
    seconds = time.perf_counter() - started
    truth = n - n // 2
    cores = os.cpu_count() or 1
    return {
        "ids_per_side": n,
        "overlap": truth,
        "seconds": seconds,
        "correct": seen_by_guest.size == truth and seen_by_host.size == truth,
        "ids_per_s_per_core": 2 * n / seconds / cores,
        "cores": cores,
        "bytes_guest_to_host": len(offer.elements),
        "bytes_host_to_guest": len(answer.double_blinded) + len(answer.host_elements),
    }


def run(work: object, *, quick: bool) -> dict[str, Any]:
    rows = []
    for n in QUICK_SIZES if quick else SIZES:
        progress(f"psi: {n:,} x {n:,} ids, 50 % overlap")
        rows.append(_one(n))
        progress(f"psi: {n:,} ids a side in {rows[-1]['seconds']:.1f} s")
    return {"sizes": rows, "fate_ids_per_s_per_core": FATE_IDS_PER_S_PER_CORE}


def markdown(result: dict[str, Any]) -> str:
    rows = [
        [
            f"{r['ids_per_side']:,} x {r['ids_per_side']:,}",
            f"{r['overlap']:,}",
            f"{r['seconds']:.1f}",
            f"{r['ids_per_s_per_core']:,.0f}",
            f"{r['ids_per_s_per_core'] / result['fate_ids_per_s_per_core']:.1f}x",
            f"{r['bytes_guest_to_host'] / 1e6:.1f} / {r['bytes_host_to_guest'] / 1e6:.1f}",
            "yes" if r["correct"] else "**NO**",
        ]
        for r in result["sizes"]
    ]
    header = [
        "ids a side",
        "shared",
        "seconds (both parties, this machine)",
        "ids / s / core",
        "vs FATE's ids / s / core",
        "MB guest→host / host→guest",
        "exact intersection",
    ]
    return "\n".join(
        [
            table(header, rows),
            "",
            f"FATE's figure as ids per second per core: 2 · 10M ids / (420 s · 2 parties · 16 "
            f"cores) = {result['fate_ids_per_s_per_core']:,.0f}. Both of our parties share "
            "this machine's cores, so each of them had fewer than FATE's.",
        ]
    )
