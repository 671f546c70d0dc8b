"""Time a forward pass: warm up until it settles, then sample until the median is known.

Each sample is one call. On CPU it is timed with ``time.perf_counter_ns``; on CUDA with a
pair of CUDA events around the call and a wait on the end event, so every sample starts on
an idle stream and is the latency one synchronous caller sees (launch overhead included).

Sampling lasts at least ``min_time_s`` and ``min_iterations``, then goes on, checking after
every further 25%, until the 95% confidence interval of the median is narrower than
``ci_target`` (relative) or ``max_time_s`` has passed, or stops early when at the CI's
1/sqrt(n) rate the target is out of reach; a timing that never got there, or whose
warm-up never settled, is flagged ``noisy``. The garbage collector is off while
timing, as in ``timeit``.

``timing = "back-to-back"`` makes each sample a block of calls (about ``block_s`` of
them) synchronized only at its ends: the per-call time of a pipelined caller, which for
a launch-bound model on a GPU is what ``torch.utils.benchmark.Timer`` reports. On CUDA a
:class:`~harness.measure.clocks.ClockWatch` extends warm-up until the SM clock holds
still and reads the clock at both ends of the sampling window.
"""

from __future__ import annotations

import gc
import math
import time
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

Clock = Callable[[], int]  # nanoseconds
Step = Callable[[], int]  # runs the timed call once, returns its duration in ns


class Policy(Protocol):
    """What the timer needs: :class:`TimingPolicy`, or the suite's ``MeasureConfig``."""

    warmup_s: float
    min_time_s: float
    min_iterations: int
    max_time_s: float
    ci_target: float
    settle_tolerance: float
    timing: str
    block_s: float
    clock_ramp_max_s: float


@dataclass
class TimingPolicy:
    warmup_s: float = 0.5
    min_time_s: float = 2.0
    min_iterations: int = 20
    max_time_s: float = 20.0
    ci_target: float = 0.02  # relative width of the 95% CI of the median
    settle_tolerance: float = 0.05  # warm-up: successive window medians agree within this
    timing: str = "per-call"  # or "back-to-back"
    block_s: float = 0.01  # back-to-back: about this many seconds of calls per sample
    clock_ramp_max_s: float = 5.0  # CUDA: warm-up waits this long at most for a steady SM clock


def median_ci_ranks(n: int) -> tuple[int, int]:
    """0-based ranks bounding the distribution-free 95% CI of the median (normal
    approximation to Binomial(n, 1/2)); the whole range for tiny ``n``."""
    half = 1.96 * math.sqrt(n) / 2
    lo = max(0, int(math.floor(n / 2 - half)) - 1)
    hi = min(n - 1, int(math.ceil(n / 2 + half)))
    return lo, hi


def ci_rel_width(samples_ns: Any) -> float:
    """Relative width of the median's 95% CI, from order statistics only (O(n))."""
    import numpy as np

    values = np.asarray(samples_ns, dtype=np.int64)
    n = len(values)
    lo, hi = median_ci_ranks(n)
    mid = n // 2
    part = np.partition(values, sorted({lo, mid, hi}))
    median = float(part[mid])
    return (float(part[hi]) - float(part[lo])) / median if median > 0 else math.inf


def summarize(samples_ns: Any, ci_target: float, warmup_settled: bool = True,
              stopped: str = "ci_target") -> dict[str, Any]:
    """Statistics of per-call times, in milliseconds (percentiles by nearest rank)."""
    import numpy as np

    ms = np.sort(np.asarray(samples_ns, dtype=np.int64)).astype(np.float64) / 1e6
    n = len(ms)

    def pct(q: float) -> float:
        return float(ms[min(n - 1, max(0, math.ceil(q * n) - 1))])

    median = float(np.median(ms))
    lo, hi = median_ci_ranks(n)
    rel = (ms[hi] - ms[lo]) / median if median > 0 else math.inf
    ci_met = bool(rel <= ci_target)
    return {
        "n": n,
        "median_ms": median,
        "mean_ms": float(ms.mean()),
        "stdev_ms": float(ms.std(ddof=1)) if n > 1 else 0.0,
        "p50_ms": median,
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "iqr_ms": pct(0.75) - pct(0.25),
        "min_ms": float(ms[0]),
        "max_ms": float(ms[-1]),
        "ci95_ms": [float(ms[lo]), float(ms[hi])],
        "ci_rel_width": float(rel),
        "ci_target": ci_target,
        "warmup_settled": warmup_settled,
        "stopped": stopped,
        "noisy": not (ci_met and warmup_settled),
    }


def warm_up(step: Step, policy: Policy, clock: Clock = time.perf_counter_ns,
            steady: Callable[[], bool] | None = None) -> bool:
    """Run ``step`` for at least ``warmup_s`` and until two successive windows' medians
    agree within ``settle_tolerance``; False when that did not happen within
    ``max(4 * warmup_s, 0.2 s)`` (at least two windows always run). With ``steady`` (the
    GPU's clock has stopped moving, asked once per window) it also waits for that, up to
    ``clock_ramp_max_s``."""
    start = clock()
    settle_from = start + int(policy.warmup_s * 1e9)
    give_up = start + int(max(4 * policy.warmup_s, 0.2) * 1e9)
    ramp_give_up = max(give_up, start + int(policy.clock_ramp_max_s * 1e9))
    window_ns = int(max(0.25, policy.warmup_s / 4) * 1e9)
    previous: float | None = None
    window: list[int] = []
    window_start = start
    while True:
        window.append(step())
        now = clock()
        if len(window) < 10 and now - window_start < window_ns:
            continue
        window.sort()
        current = float(window[len(window) // 2])
        if previous is not None:
            settled = now >= settle_from and abs(current - previous) <= policy.settle_tolerance * previous
            clock_ok = steady() if steady is not None else True
            if settled and clock_ok:
                return True
            if now >= give_up and (clock_ok or now >= ramp_give_up):
                return settled
        previous, window, window_start = current, [], now


def sample(step: Step, policy: Policy, clock: Clock = time.perf_counter_ns) -> tuple[array, str]:
    """Samples (ns) and why sampling stopped: ``ci_target``, ``max_time_s``, or
    ``ci_unreachable`` when, at the CI's 1/sqrt(n) rate, even 2 × ``max_time_s`` would
    not bring it within ``ci_target``."""
    samples = array("q")
    append = samples.append
    start = clock()
    cap = start + int(policy.max_time_s * 1e9)
    check_at = start + int(policy.min_time_s * 1e9)
    check_n = policy.min_iterations
    while True:
        while True:
            append(step())
            now = clock()
            if (now >= check_at and len(samples) >= check_n) or now >= cap:
                break
        rel = ci_rel_width(samples)
        if rel <= policy.ci_target:
            return samples, "ci_target"
        if now >= cap:
            return samples, "max_time_s"
        # The CI narrows as 1/sqrt(n): give up early when even twice the cap would not do.
        if (now - start) * (rel / policy.ci_target) ** 2 > 2 * (cap - start):
            return samples, "ci_unreachable"
        check_at = now + max((now - start) // 4, 10_000_000)
        check_n = len(samples) + len(samples) // 4 + 1


@contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def time_step(step: Step, policy: Policy, clock: Clock = time.perf_counter_ns,
              clocks: Any = None) -> dict[str, Any]:
    """Warm up, sample and summarize ``step`` (a call that returns its own duration);
    ``clocks`` (a ClockWatch, CUDA) adds what the SM clock did as ``stats["clocks"]``."""
    with _gc_paused():
        settled = warm_up(step, policy, clock, clocks.steady if clocks is not None else None)
        before = clocks.read() if clocks is not None else None
        samples, stopped = sample(step, policy, clock)
        after = clocks.read() if clocks is not None else None
    stats = summarize(samples, policy.ci_target, settled, stopped)
    if clocks is not None:
        stats["clocks"] = clocks.window(before, after)
    return stats


def host_step(fn: Callable[[], Any], clock: Clock = time.perf_counter_ns, calls: int = 1) -> Step:
    """A step timing ``calls`` calls of ``fn`` on the host clock; returns ns per call."""

    def step() -> int:
        t0 = clock()
        for _ in range(calls):
            fn()
        return (clock() - t0) // calls

    return step


def cuda_step(fn: Callable[[], Any], torch: Any, calls: int = 1) -> Step:
    """A step timing ``calls`` calls of ``fn`` with CUDA events around them all, waiting
    for the end event once; returns ns per call."""
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)

    def step() -> int:
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        return int(start.elapsed_time(end) * 1e6) // calls  # elapsed_time is in ms

    return step


def calls_per_sample(one_call: Step, block_s: float) -> int:
    """How many back-to-back calls make a sample of about ``block_s`` (from the median
    of 5 single calls)."""
    single = sorted(one_call() for _ in range(5))[2]
    return max(1, min(100_000, math.ceil(block_s * 1e9 / max(single, 1))))


def time_callable(fn: Callable[[], Any], policy: Policy, clock: Clock = time.perf_counter_ns) -> dict[str, Any]:
    """Time ``fn`` on the host clock and return :func:`summarize` statistics."""
    return time_step(host_step(fn, clock), policy, clock) | {"clock": "perf_counter_ns"}


def time_forward(model: Any, example: Any, policy: Policy, device: str, clocks: Any = None) -> dict[str, Any]:
    """Latency of ``model(example)`` under ``torch.inference_mode()`` per ``policy.timing``
    (``calls_per_sample``: 1 per call, or the back-to-back block's size)."""
    import torch

    cuda = device.startswith("cuda")

    # a model run by another runtime (harness.toolkit.RuntimeModel) is timed as that
    # runtime is called: on its own arrays, converted once
    bound = getattr(model, "bound", None)
    forward = bound(example) if callable(bound) else lambda: model(example)

    def make(calls: int) -> Step:
        return cuda_step(forward, torch, calls) if cuda else host_step(forward, calls=calls)

    with torch.inference_mode():
        if cuda:
            torch.cuda.synchronize(device)
        calls = 1 if policy.timing == "per-call" else calls_per_sample(make(1), policy.block_s)
        stats = time_step(make(calls), policy, clocks=clocks)
        if cuda:
            torch.cuda.synchronize(device)
    return stats | {"clock": "cuda-events" if cuda else "perf_counter_ns", "timing": policy.timing,
                    "calls_per_sample": calls}
