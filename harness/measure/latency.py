"""Time a forward pass: warm up until it settles, then sample until the median is known.

On CPU each iteration is timed with ``time.perf_counter_ns``; on CUDA with a pair of
CUDA events around each iteration, waiting on the end event so each sample is the
device time of one batch (the latency a caller sees).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class TimingPolicy:
    warmup_s: float = 0.5
    min_time_s: float = 2.0
    min_iterations: int = 20
    max_time_s: float = 20.0
    ci_target: float = 0.02  # relative width of the 95% CI of the median


def median_ci(sorted_samples: list[float]) -> tuple[float, float]:
    """Distribution-free 95% confidence interval of the median (order statistics)."""
    n = len(sorted_samples)
    half = 1.96 * math.sqrt(n) / 2
    lo = max(0, int(math.floor(n / 2 - half)) - 1)
    hi = min(n - 1, int(math.ceil(n / 2 + half)))
    return sorted_samples[lo], sorted_samples[hi]


def summarize(samples_s: list[float], settled: bool, ci_target: float) -> dict[str, Any]:
    """Statistics of per-iteration times, in milliseconds."""
    ordered = sorted(samples_s)
    n = len(ordered)
    ms = [s * 1e3 for s in ordered]

    def pct(q: float) -> float:
        return ms[min(n - 1, max(0, math.ceil(q * n) - 1))]

    median = statistics.median(ms)
    lo, hi = median_ci(ms)
    rel = (hi - lo) / median if median > 0 else float("inf")
    return {
        "n": n,
        "median_ms": median,
        "mean_ms": statistics.fmean(ms),
        "stdev_ms": statistics.stdev(ms) if n > 1 else 0.0,
        "p50_ms": median,
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "iqr_ms": pct(0.75) - pct(0.25),
        "min_ms": ms[0],
        "ci95_ms": [lo, hi],
        "ci_rel_width": rel,
        "settled": settled,
        "noisy": not (settled and rel <= ci_target),
    }


def _warm_up(step: Callable[[], float], warmup_s: float) -> bool:
    """Run until ``warmup_s`` has passed and two successive windows agree within 5%."""
    deadline = time.perf_counter() + max(warmup_s, 0.0)
    window: list[float] = []
    previous: float | None = None
    hard_stop = time.perf_counter() + max(4 * warmup_s, 1.0)
    while True:
        window.append(step())
        if len(window) >= 10 and time.perf_counter() >= deadline:
            current = statistics.median(window)
            if previous is not None and abs(current - previous) <= 0.05 * previous:
                return True
            if time.perf_counter() >= hard_stop:
                return False
            previous, window = current, []


def time_callable(fn: Callable[[], Any], policy: TimingPolicy, timer: Callable[[], int] = time.perf_counter_ns) -> dict[str, Any]:
    """Time ``fn`` on the host clock and return :func:`summarize` statistics."""

    def step() -> float:
        t0 = timer()
        fn()
        return (timer() - t0) * 1e-9

    settled = _warm_up(step, policy.warmup_s)
    return _sample(step, policy, settled)


def _sample(step: Callable[[], float], policy: TimingPolicy, settled: bool) -> dict[str, Any]:
    samples: list[float] = []
    start = time.perf_counter()
    next_check = policy.min_iterations
    while True:
        samples.append(step())
        elapsed = time.perf_counter() - start
        if elapsed >= policy.max_time_s:
            return summarize(samples, False, policy.ci_target) | {"stopped": "max_time_s"}
        if len(samples) >= next_check and elapsed >= policy.min_time_s:
            stats = summarize(samples, settled, policy.ci_target)
            if stats["ci_rel_width"] <= policy.ci_target:
                return stats | {"stopped": "ci_target"}
            next_check = int(len(samples) * 1.25) + 1


def time_forward_cuda(fn: Callable[[], Any], policy: TimingPolicy, torch: Any) -> dict[str, Any]:
    """Time ``fn`` with CUDA events; each sample is one iteration's device time."""

    def step() -> float:
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) * 1e-3  # elapsed_time is in ms

    torch.cuda.synchronize()
    settled = _warm_up(step, policy.warmup_s)
    stats = _sample(step, policy, settled)
    torch.cuda.synchronize()
    return stats


def time_forward(model: Any, example: Any, policy: TimingPolicy, device: str) -> dict[str, Any]:
    """Latency of ``model(example)`` under ``torch.inference_mode()``."""
    import torch

    with torch.inference_mode():
        def forward() -> Any:
            return model(example)

        if device.startswith("cuda"):
            stats = time_forward_cuda(forward, policy, torch)
            stats["clock"] = "cuda-events"
        else:
            stats = time_callable(forward, policy)
            stats["clock"] = "perf_counter_ns"
    return stats
