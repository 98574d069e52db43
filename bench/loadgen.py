"""An open-loop load generator for the scoring API (run as its own process).

    python -m bench.loadgen --url URL --token TOKEN --model M --subjects FILE \
        --rate 200 --duration-s 15 --out result.json

Requests leave on a fixed schedule (``rate`` per second), whether or not earlier ones have
returned, and each latency is measured from its *scheduled* start, so a server that falls
behind shows it in the tail instead of slowing the generator down (no coordinated
omission). Subjects are drawn in turn from the file (one id per line).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import httpx
import numpy as np


async def _run(args: argparse.Namespace) -> dict[str, object]:
    subjects = Path(args.subjects).read_text(encoding="utf-8").split()
    headers = {"Authorization": f"Bearer {args.token}"}
    url = f"{args.url}/v1/models/{args.model}/score"
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    total = int(args.rate * args.duration_s)
    limits = httpx.Limits(
        max_connections=args.connections, max_keepalive_connections=args.connections
    )
    async with httpx.AsyncClient(timeout=10.0, limits=limits) as client:

        async def one(i: int, scheduled: float) -> None:
            try:
                response = await client.post(
                    url, json={"subject_id": subjects[i % len(subjects)]}, headers=headers
                )
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            latencies.append(time.perf_counter() - scheduled)
            statuses[status] = statuses.get(status, 0) + 1

        tasks = []
        start = time.perf_counter() + 0.05
        for i in range(total):
            scheduled = start + i / args.rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, scheduled)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    ms = np.array(latencies) * 1000.0
    return {
        "requests": total,
        "rate_asked": args.rate,
        "rate_achieved": total / elapsed,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--subjects", required=True)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration-s", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    result = asyncio.run(_run(args))
    Path(args.out).write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
