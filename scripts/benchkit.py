"""Small helpers shared by the benchmarks: percentiles, timing and a printed figure line."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def report(name: str, samples: list[float], baseline: float | None = None) -> None:
    p50, p95 = percentile(samples, 0.5), percentile(samples, 0.95)
    ratio = f"  ({p50 / baseline:.1f}× healthz p50)" if baseline else ""
    print(f"{name:<44} p50 {p50:8.2f} ms   p95 {p95:8.2f} ms   n={len(samples)}{ratio}")


async def timed(action: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples
