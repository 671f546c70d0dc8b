"""What the harness's timer costs per iteration, on an empty callable (CPU clock).

Prints two figures, both should be well under 5 µs:
- the median sample of an empty callable: the bias the timer adds to every sample;
- wall time per iteration of the sampling loop: all the timer's bookkeeping included.

    .venv/bin/python benchmarks/timer_overhead.py
"""

from __future__ import annotations

import sys
import time


def main() -> int:
    from harness.measure.latency import TimingPolicy, host_step, sample, summarize

    def empty() -> None:
        return None

    policy = TimingPolicy(warmup_s=0.0, min_time_s=1.0, min_iterations=1000, max_time_s=5.0, ci_target=0.02)
    step = host_step(empty)
    for _ in range(10_000):  # warm the interpreter's caches
        step()
    t0 = time.perf_counter_ns()
    samples, stopped = sample(step, policy)
    wall_ns = time.perf_counter_ns() - t0
    stats = summarize(samples, policy.ci_target, stopped=stopped)
    bias_us = stats["median_ms"] * 1e3
    loop_us = wall_ns / len(samples) / 1e3
    print(f"empty callable, {stats['n']} samples: median sample {bias_us:.3f} µs (bias per sample), "
          f"{loop_us:.3f} µs wall per iteration (loop cost)")
    ok = bias_us < 5 and loop_us < 5
    print("under 5 µs" if ok else "OVER 5 µs")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
