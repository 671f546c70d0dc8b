"""The GPU's SM clock around each timing window, through NVML: whether the clock the
timings ran at held still, and why it did not.

A GPU idles at a low SM clock (an H100: 345 MHz) and boosts under load (to 1980 MHz)
within a fraction of a second; power and thermal limits pull it down again. A timing
window whose clock moved measured a mix of two GPUs. :class:`ClockWatch` reads, at the
start and end of each window (outside every timed call): the SM clock
(``nvmlDeviceGetClockInfo``), the current clock-event ("throttle") reasons
(``nvmlDeviceGetCurrentClocksEventReasons``, bit flags) and NVML's cumulative power and
thermal violation counters (``nvmlDeviceGetViolationStatus``: ns spent below the
requested clock because of that limit), whose difference covers the whole window, not
just its edges. During warm-up, :meth:`ClockWatch.steady` says when two readings at
least 0.1 s apart agree: the clock has reached what this load sustains.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

# nvmlClocksEventReason* bit flags (NVML API reference, "Clock Event Reasons").
REASONS = {0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
           0x10: "sync_boost", 0x20: "sw_thermal_slowdown", 0x40: "hw_thermal_slowdown",
           0x80: "hw_power_brake_slowdown", 0x100: "display_clock_setting"}
POLICIES = {"power": 0, "thermal": 1}  # NVML_PERF_POLICY_POWER, NVML_PERF_POLICY_THERMAL
READ_GAP_NS = 100_000_000  # NVML's clock reading is refreshed every few tens of ms


def reason_names(mask: int | None) -> list[str]:
    if mask is None:
        return []
    return [name for bit, name in REASONS.items() if mask & bit]


@dataclass
class ClockReading:
    ns: int
    sm_mhz: int | None = None
    reasons: int | None = None  # bit mask; None when NVML cannot say
    violation_ns: dict[str, int] = field(default_factory=dict)  # policy -> cumulative ns


class ClockWatch:
    """Reads the SM clock of one GPU; ``nvml`` and ``handle`` as :func:`nvml.open_device` gives."""

    def __init__(self, nvml: Any, handle: Any, tolerance: float = 0.03, clock: Any = time.perf_counter_ns):
        self.nvml, self.handle, self.tolerance, self.clock = nvml, handle, tolerance, clock
        self.errors: dict[str, str] = {}
        self._last: tuple[int, int | None] | None = None
        self._steady = False

    @classmethod
    def open(cls, device: str, tolerance: float = 0.03, nvml: Any = None) -> ClockWatch | str:
        """A watch on ``device``'s GPU, or why there is none (CPU, no NVML)."""
        if not device.startswith("cuda"):
            return "no GPU"
        from harness.measure.nvml import NvmlUnavailable, open_device

        try:
            nvml, handle, _ = open_device(device, nvml)
        except NvmlUnavailable as exc:
            return str(exc)
        return cls(nvml, handle, tolerance)

    def _get(self, what: str, fn_names: tuple[str, ...], *args: Any) -> Any:
        if what in self.errors:
            return None
        for fn_name in fn_names:  # the newer name first; older pynvml has only the deprecated one
            fn = getattr(self.nvml, fn_name, None)
            if fn is None:
                continue
            try:
                return fn(self.handle, *args)
            except self.nvml.NVMLError as exc:
                self.errors[what] = str(exc)
                return None
        self.errors[what] = "not in this pynvml"
        return None

    def read(self) -> ClockReading:
        reading = ClockReading(self.clock())
        mhz = self._get("sm_clock", ("nvmlDeviceGetClockInfo",), getattr(self.nvml, "NVML_CLOCK_SM", 0))
        reading.sm_mhz = int(mhz) if mhz is not None else None
        mask = self._get("reasons", ("nvmlDeviceGetCurrentClocksEventReasons",
                                     "nvmlDeviceGetCurrentClocksThrottleReasons"))
        reading.reasons = int(mask) if mask is not None else None
        for policy, code in POLICIES.items():
            status = self._get(f"violation_{policy}", ("nvmlDeviceGetViolationStatus",), code)
            if status is not None:
                reading.violation_ns[policy] = int(status.violationTime)
        return reading

    def steady(self) -> bool:
        """True once two SM clock readings at least 0.1 s apart agree within the
        tolerance (True at once when the clock cannot be read: nothing to wait for)."""
        now = self.clock()
        if self._last is not None and now - self._last[0] < READ_GAP_NS:
            return self._steady
        reading = self.read()
        previous = self._last[1] if self._last is not None else None
        if reading.sm_mhz is None:
            self._steady = True
        elif previous is not None:
            self._steady = abs(reading.sm_mhz - previous) <= self.tolerance * max(reading.sm_mhz, previous)
        self._last = (now, reading.sm_mhz)
        return self._steady

    def window(self, start: ClockReading, end: ClockReading) -> dict[str, Any]:
        """What the clock did between two readings; ``moved`` is True when the SM clock
        changed beyond the tolerance or the GPU spent time thermally slowed down."""
        out: dict[str, Any] = {"sm_clock_mhz": [start.sm_mhz, end.sm_mhz],
                               "reasons": sorted(set(reason_names(start.reasons)) | set(reason_names(end.reasons)))}
        throttled = {p: (end.violation_ns[p] - start.violation_ns[p]) / 1e6
                     for p in POLICIES if p in start.violation_ns and p in end.violation_ns}
        out["throttled_ms"] = throttled
        moved = False
        if start.sm_mhz is not None and end.sm_mhz is not None:
            moved = abs(end.sm_mhz - start.sm_mhz) > self.tolerance * max(start.sm_mhz, end.sm_mhz, 1)
        out["moved"] = moved or throttled.get("thermal", 0.0) > 0
        if self.errors:
            out["unreadable"] = dict(self.errors)
        return out
