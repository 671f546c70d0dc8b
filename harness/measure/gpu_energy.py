"""GPU energy over a window: NVML's energy counter, or integrated power where it has none.

``nvmlDeviceGetTotalEnergyConsumption`` is the board's energy in mJ since the driver was
loaded (Volta and newer); elsewhere it fails with NVML_ERROR_NOT_SUPPORTED and the meter
samples ``nvmlDeviceGetPowerUsage`` (mW) every 10 ms in a background thread and integrates
it (trapezoids). The caller synchronizes the device at both ends of the window. The
counter refreshes every 20-100 ms, so windows should last seconds, not milliseconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from harness.measure.nvml import NvmlSampler, not_supported
from harness.plural import plural

COUNTER_MODULUS = 2**64  # unsigned long long
COUNTER_POLL_S = 0.005  # how often the counter is read during a window to see it tick
FALLBACK_MAX_POWER_W = 10_000.0  # plausibility bound when the power limit is unknown


def counter_delta_mj(start: int, end: int, elapsed_s: float, max_power_w: float | None) -> tuple[int | None, str]:
    """(mJ between two counter reads, note). A smaller end is a wrap when the wrapped
    delta is physically possible (≤ 1.5 × max power × time), else a reset (driver
    reloaded) and the delta is unknown (None)."""
    if end >= start:
        return end - start, ""
    wrapped = end + COUNTER_MODULUS - start
    bound_mj = 1.5 * (max_power_w or FALLBACK_MAX_POWER_W) * 1000 * max(elapsed_s, 1e-3)
    if wrapped <= bound_mj:
        return wrapped, "counter wrapped"
    return None, "the energy counter went backwards (driver reloaded?)"


def integrate_power_j(samples: list[tuple[int, int]]) -> float | None:
    """Joules from (ns, mW) samples by trapezoids; None with fewer than two samples."""
    if len(samples) < 2:
        return None
    joules = 0.0
    for (t0, p0), (t1, p1) in zip(samples, samples[1:]):
        joules += (p0 + p1) / 2 / 1000 * (t1 - t0) / 1e9
    return joules


def counter_resolution(ticks: list[tuple[int, int]], window_s: float) -> str:
    """How finely the counter resolved the window: updates seen, their interval, and the
    share of the window one update interval is (each end of the window can be off by up
    to one interval's energy)."""
    updates = len(ticks) - 1
    if updates < 2:
        return f"{plural(max(updates, 0), 'counter update')} seen in the {window_s:.2f} s window: too short to resolve"
    interval = (ticks[-1][0] - ticks[1][0]) / 1e9 / (updates - 1)  # ticks[0] is the reading at the start
    share = interval / window_s if window_s > 0 else float("inf")
    verdict = "" if share <= 0.01 else f"; over 1%: a sustained_s of {interval * 100:.0f} s would make it ≤ 1%"
    return (f"{updates} counter updates seen in the {window_s:.2f} s window (every ~{interval * 1000:.0f} ms, "
            f"{share:.1%} of the window){verdict}")


@dataclass
class GpuEnergy:
    joules: float | None
    provenance: str  # "measured: ..." or "absent: ..."


class GpuEnergyMeter:
    """``start()``/``stop()`` around a synchronized window; ``stop()`` gives :class:`GpuEnergy`."""

    def __init__(self, nvml: Any, handle: Any, interval_s: float = 0.01, clock: Any = time.perf_counter_ns,
                 counter_poll_s: float | None = COUNTER_POLL_S):
        self.nvml, self.handle, self.interval_s, self.clock = nvml, handle, interval_s, clock
        self.counter_poll_s = counter_poll_s  # None: do not watch the counter tick
        self.mode, self.reason = self._probe()
        self.max_power_w = self._power_limit_w()
        self._start_mj = 0
        self._t0 = 0
        self._sampler: NvmlSampler | None = None

    def _probe(self) -> tuple[str | None, str]:
        try:
            self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            return "counter", ""
        except self.nvml.NVMLError as exc:
            why = "no energy counter on this GPU (pre-Volta)" if not_supported(self.nvml, exc) else f"energy counter: {exc}"
        try:
            self.nvml.nvmlDeviceGetPowerUsage(self.handle)
            return "power", why
        except self.nvml.NVMLError as exc:
            return None, f"{why}; power reading: {'not supported' if not_supported(self.nvml, exc) else exc}"

    def _power_limit_w(self) -> float | None:
        try:
            return self.nvml.nvmlDeviceGetEnforcedPowerLimit(self.handle) / 1000
        except self.nvml.NVMLError:
            return None

    def start(self) -> None:
        self._t0 = self.clock()
        if self.mode == "counter":
            self._start_mj = self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            # Watch the counter tick: how often it refreshes bounds what the window resolves.
            if self.counter_poll_s:
                self._sampler = NvmlSampler(self.nvml, self.handle, interval_s=self.counter_poll_s, memory=False,
                                            energy=True, clock=self.clock).start()
        elif self.mode == "power":
            self._sampler = NvmlSampler(self.nvml, self.handle, interval_s=self.interval_s,
                                        memory=False, power=True, clock=self.clock).start()

    def stop(self) -> GpuEnergy:
        elapsed_s = (self.clock() - self._t0) / 1e9
        if self.mode == "counter":
            ticks = self._sampler.stop().energy if self._sampler is not None else []
            try:
                end = self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            except self.nvml.NVMLError as exc:
                return GpuEnergy(None, f"absent: energy counter failed at the end of the window: {exc}")
            delta, note = counter_delta_mj(self._start_mj, end, elapsed_s, self.max_power_w)
            if delta is None:
                return GpuEnergy(None, f"absent: {note}")
            how = "NVML total energy counter (nvmlDeviceGetTotalEnergyConsumption) delta, 1 mJ resolution"
            if self._sampler is not None:
                how += f", {counter_resolution(ticks, elapsed_s)}"
            return GpuEnergy(delta / 1000, f"measured: {how}" + (f", {note}" if note else ""))
        if self.mode == "power":
            assert self._sampler is not None
            samples = self._sampler.stop()
            joules = integrate_power_j(samples.power)
            if joules is None:
                return GpuEnergy(None, f"absent: {self.reason}; too few power samples")
            return GpuEnergy(joules, f"measured: NVML power (nvmlDeviceGetPowerUsage) sampled every "
                                     f"{self.interval_s * 1000:.0f} ms and integrated, {len(samples.power)} "
                                     f"samples ({self.reason})")
        return GpuEnergy(None, f"absent: {self.reason}")
