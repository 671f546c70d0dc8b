"""The timer's logic on a simulated clock: no assertion here depends on real time."""

from __future__ import annotations

import random

from harness.measure.latency import (
    TimingPolicy,
    median_ci_ranks,
    sample,
    summarize,
    time_step,
    warm_up,
)


class SimulatedWork:
    """A clock and a step: each call "takes" the next duration, advancing the clock."""

    def __init__(self, durations_ns):
        self.now = 0
        self.durations = iter(durations_ns)
        self.calls = 0

    def clock(self) -> int:
        return self.now

    def step(self) -> int:
        d = next(self.durations)
        self.now += d
        self.calls += 1
        return d


def jitter(mean_ns: int, spread: float, seed: int = 0):
    rng = random.Random(seed)
    while True:
        yield int(mean_ns * (1 + rng.uniform(-spread, spread)))


POLICY = TimingPolicy(warmup_s=0.0, min_time_s=0.05, min_iterations=20, max_time_s=2.0, ci_target=0.02)


def test_steady_timings_stop_at_the_minimums_with_the_ci_met():
    work = SimulatedWork(jitter(1_000_000, 0.001))  # 1 ms ± 0.1%
    samples, stopped = sample(work.step, POLICY, work.clock)
    assert stopped == "ci_target"
    assert len(samples) == 50  # 50 ms of 1 ms calls: min_time_s was the binding minimum
    stats = summarize(samples, POLICY.ci_target, stopped=stopped)
    assert not stats["noisy"] and stats["ci_rel_width"] <= 0.02
    assert stats["ci95_ms"][0] <= stats["median_ms"] <= stats["ci95_ms"][1]


def test_min_iterations_bind_when_calls_are_slow():
    work = SimulatedWork(jitter(100_000_000, 0.001))  # 100 ms calls: 20 of them > 50 ms
    samples, stopped = sample(work.step, POLICY, work.clock)
    assert stopped == "ci_target" and len(samples) == 20


def test_spread_timings_sample_on_until_the_ci_narrows():
    work = SimulatedWork(jitter(1_000_000, 0.1))  # 1 ms ± 10%: the CI needs ~400 samples
    samples, stopped = sample(work.step, POLICY, work.clock)
    stats = summarize(samples, POLICY.ci_target, stopped=stopped)
    assert stopped == "ci_target" and not stats["noisy"]
    assert work.now > POLICY.min_time_s * 1e9  # it went on past the minimum ...
    assert stats["ci_rel_width"] <= 0.02  # ... until the target was met
    assert work.now < POLICY.max_time_s * 1e9


def test_timings_that_never_settle_are_flagged_noisy_and_stop_early_when_hopeless():
    policy = TimingPolicy(warmup_s=0.0, min_time_s=0.05, min_iterations=20, max_time_s=0.5, ci_target=0.001)
    work = SimulatedWork(jitter(1_000_000, 0.9))  # ±90%: 0.1% would take hours
    stats = time_step(work.step, policy, work.clock)
    assert stats["stopped"] == "ci_unreachable" and stats["noisy"]
    assert work.now < 0.1e9  # gave up at the first check, not at the cap


def test_timings_within_reach_only_later_run_to_the_cap():
    policy = TimingPolicy(warmup_s=0.0, min_time_s=0.05, min_iterations=20, max_time_s=0.3, ci_target=0.018)
    work = SimulatedWork(jitter(1_000_000, 0.1))  # needs ~0.47 s of samples: not by 0.3 s
    stats = time_step(work.step, policy, work.clock)
    assert stats["stopped"] == "max_time_s" and stats["noisy"]
    assert stats["ci_rel_width"] > 0.018


def test_warm_up_waits_for_a_drifting_start_to_settle():
    # Calls get faster by 15% of the excess each time (caches, allocator, clocks ramping).
    durations = (int(1_000_000 * (1 + 4 * 0.85**i)) for i in range(10**6))
    work = SimulatedWork(durations)
    assert warm_up(work.step, TimingPolicy(warmup_s=0.01), work.clock)
    assert work.calls >= 30  # 4 * 0.85**i is still > 5% of 1 ms per window before that


def test_warm_up_that_never_settles_is_reported_and_makes_the_timing_noisy():
    alternating = (5_000_000 if (i // 10) % 2 else 1_000_000 for i in range(10**6))
    work = SimulatedWork(alternating)
    assert not warm_up(work.step, TimingPolicy(warmup_s=0.05), work.clock)
    stats = summarize([1_000_000] * 100, 0.02, warmup_settled=False)
    assert stats["noisy"] and not stats["warmup_settled"]


def test_summary_percentiles_and_ci_ranks():
    stats = summarize([i * 1_000_000 for i in range(1, 101)], 0.5)
    assert stats["n"] == 100 and stats["median_ms"] == 50.5
    assert stats["p90_ms"] == 90 and stats["p99_ms"] == 99 and stats["iqr_ms"] == 50
    lo, hi = median_ci_ranks(100)
    assert (lo, hi) == (39, 60)  # ranks 40 and 61 (1-based): the textbook n=100 interval
    assert median_ci_ranks(3) == (0, 2)


def test_warm_up_waits_for_the_gpu_clock_to_hold_still_within_its_bound():
    work = SimulatedWork(jitter(1_000_000, 0.001))  # settled at once ...
    answers = iter([False] * 30 + [True] * 10**6)  # ... but the SM clock ramps for 30 windows
    asked = []

    def steady() -> bool:
        asked.append(work.now)
        return next(answers)

    assert warm_up(work.step, TimingPolicy(warmup_s=0.0), work.clock, steady)
    assert len(asked) == 31 and work.calls >= 300  # one question per 10-call window

    never = SimulatedWork(jitter(1_000_000, 0.001))
    bounded = TimingPolicy(warmup_s=0.0, clock_ramp_max_s=0.5)
    assert warm_up(never.step, bounded, never.clock, lambda: False)  # the timing settled; the clock never did
    assert 0.5e9 <= never.now < 0.52e9  # gave up at clock_ramp_max_s, not before, not much after


def test_back_to_back_samples_are_blocks_of_calls_reported_per_call():
    from harness.measure.latency import calls_per_sample, host_step

    work = SimulatedWork(jitter(100_000, 0.0))  # 0.1 ms calls
    one = host_step(lambda: work.step(), work.clock)
    assert calls_per_sample(one, 0.01) == 100  # 10 ms blocks of 0.1 ms calls
    block = host_step(lambda: work.step(), work.clock, calls=100)
    before = work.calls
    assert block() == 100_000 and work.calls - before == 100  # ns per call, from one block
    slow = SimulatedWork(jitter(50_000_000, 0.0))  # a 50 ms call is a block of one
    assert calls_per_sample(host_step(lambda: slow.step(), slow.clock), 0.01) == 1


def test_time_forward_labels_the_timing_mode_on_cpu():
    import torch

    from harness.measure.latency import time_forward

    model = torch.nn.Linear(8, 4).eval()
    policy = TimingPolicy(warmup_s=0.0, min_time_s=0.01, min_iterations=5, max_time_s=0.1, ci_target=0.5,
                          timing="back-to-back", block_s=0.002)
    stats = time_forward(model, torch.ones(2, 8), policy, "cpu")
    assert stats["timing"] == "back-to-back" and stats["calls_per_sample"] > 1 and stats["median_ms"] > 0
    per_call = time_forward(model, torch.ones(2, 8), TimingPolicy(warmup_s=0.0, min_time_s=0.01, max_time_s=0.1,
                                                                   ci_target=0.5), "cpu")
    assert per_call["timing"] == "per-call" and per_call["calls_per_sample"] == 1
