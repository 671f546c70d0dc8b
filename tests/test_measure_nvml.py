"""The NVML paths, against a stand-in that behaves like the documented pynvml API."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest

from harness.measure.gpu_energy import (
    COUNTER_MODULUS,
    GpuEnergyMeter,
    counter_delta_mj,
    counter_resolution,
    integrate_power_j,
)
from harness.measure.gpu_memory import nvml_figures
from harness.measure.hardware import gpu_state
from harness.measure.nvml import NvmlSampler, NvmlUnavailable, resolve_handle

MY_PID = 4242


class FakeNvml:
    """pynvml's surface as the harness uses it: two GPUs (NVML index = PCI order)."""

    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_ERROR_NOT_FOUND = 6
    NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 1, 2, 0

    class NVMLError(Exception):
        def __init__(self, value: int):
            super().__init__(f"NVML error {value}")
            self.value = value

    def __init__(self, energy: bool = True, power: bool = True, energy_start: int = 1_000_000,
                 mj_per_read: int = 500):
        self.uuids = ["GPU-aaaa1111-0000-0000-0000-000000000000", "GPU-bbbb2222-0000-0000-0000-000000000000"]
        self.energy, self.power = energy, power
        self.counter = energy_start
        self.mj_per_read = mj_per_read
        self.used = itertools.count(1_000, 1_000)  # device memory grows per read
        self.processes = [SimpleNamespace(pid=MY_PID, usedGpuMemory=300 * 2**20),
                          SimpleNamespace(pid=777, usedGpuMemory=5 * 2**30)]
        self.sm_clock = 1530  # MHz; tests move it
        self.reasons = 0x0  # nvmlClocksEventReason* bits
        self.violations = {0: 0, 1: 0}  # perf policy (power, thermal) -> cumulative ns

    # discovery
    def nvmlDeviceGetCount(self) -> int:
        return len(self.uuids)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if not 0 <= index < len(self.uuids):
            raise self.NVMLError(2)
        return index

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> int:
        if uuid not in self.uuids:
            raise self.NVMLError(self.NVML_ERROR_NOT_FOUND)
        return self.uuids.index(uuid)

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return self.uuids[handle]

    # readings
    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(total=16 * 2**30, used=next(self.used) * 2**20, free=0)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list:
        return list(self.processes)

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: int) -> list:
        return []

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        if not self.energy:
            raise self.NVMLError(self.NVML_ERROR_NOT_SUPPORTED)
        self.counter = (self.counter + self.mj_per_read) % COUNTER_MODULUS
        return self.counter

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        if not self.power:
            raise self.NVMLError(self.NVML_ERROR_NOT_SUPPORTED)
        return 150_000  # mW

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        return 300_000

    def nvmlDeviceGetName(self, handle: int) -> bytes:
        return b"Tesla V100-SXM2-16GB"

    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.54.15"

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 12040

    def nvmlDeviceGetClockInfo(self, handle: int, kind: int) -> int:
        return self.sm_clock if kind == self.NVML_CLOCK_SM else 877

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: int) -> int:
        return self.reasons

    def nvmlDeviceGetViolationStatus(self, handle: int, policy: int) -> SimpleNamespace:
        if policy not in self.violations:
            raise self.NVMLError(self.NVML_ERROR_NOT_SUPPORTED)
        return SimpleNamespace(referenceTime=0, violationTime=self.violations[policy])

    def nvmlDeviceGetMaxClockInfo(self, handle: int, kind: int) -> int:
        return 1530

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        return 41

    def nvmlDeviceGetPerformanceState(self, handle: int) -> int:
        raise self.NVMLError(self.NVML_ERROR_NOT_SUPPORTED)


# --- which GPU: torch index -> NVML handle ---------------------------------------------

def test_the_uuid_torch_reports_wins_over_indices():
    nvml = FakeNvml()
    handle, how = resolve_handle(nvml, 0, torch_uuid="bbbb2222-0000-0000-0000-000000000000", visible="0")
    assert handle == 1 and "UUID" in how


def test_visible_devices_remap_indices_and_accept_uuid_prefixes():
    nvml = FakeNvml()
    assert resolve_handle(nvml, 0, visible="1,0", order="PCI_BUS_ID") == (1, "by CUDA_VISIBLE_DEVICES entry 1")
    handle, how = resolve_handle(nvml, 1, visible="1,0")
    assert handle == 0 and "CUDA_DEVICE_ORDER=PCI_BUS_ID" in how  # the caveat is recorded
    assert resolve_handle(nvml, 0, visible="GPU-bbbb")[0] == 1
    with pytest.raises(NvmlUnavailable, match="not in CUDA_VISIBLE_DEVICES"):
        resolve_handle(nvml, 2, visible="0,1")
    with pytest.raises(NvmlUnavailable, match="matches 2"):
        resolve_handle(nvml, 0, visible="GPU-")


# --- memory sampler -----------------------------------------------------------------------

def test_sampler_keeps_peaks_and_only_this_process_memory():
    nvml = FakeNvml()
    sampler = NvmlSampler(nvml, 0, pid=MY_PID)
    for _ in range(3):
        sampler.sample_once()
    nvml.processes[0] = SimpleNamespace(pid=MY_PID, usedGpuMemory=900 * 2**20)  # a peak ...
    sampler.sample_once()
    nvml.processes[0] = SimpleNamespace(pid=MY_PID, usedGpuMemory=400 * 2**20)  # ... then less
    samples = sampler.stop()
    assert samples.n == 5
    assert samples.peak_process_bytes == 900 * 2**20  # never the other process's 5 GiB
    assert samples.peak_device_bytes == 5_000 * 2**20  # the device's own peak (5th read)
    assert samples.other_pids == {777}


def test_sampler_thread_samples_every_few_ms():
    nvml = FakeNvml()
    with NvmlSampler(nvml, 0, pid=MY_PID, interval_s=0.001) as sampler:
        import time

        time.sleep(0.05)
    assert sampler.result.n >= 5
    assert sampler.result.process_listed


def test_process_memory_absent_with_reason_when_pid_not_listed():
    nvml = FakeNvml()
    samples = NvmlSampler(nvml, 0, pid=1).stop()  # e.g. a container's pid namespace
    f = nvml_figures(samples, 0.01)
    assert "gpu_peak_mem_mb" not in f.metrics
    assert f.provenance["gpu_peak_mem_mb"].startswith("absent: this process is not in NVML")
    assert f.metrics["gpu_device_peak_mem_mb"] > 0
    assert "other processes" in f.provenance["gpu_device_peak_mem_mb"]


def test_unsupported_reading_is_recorded_once_not_retried():
    nvml = FakeNvml(power=False)
    sampler = NvmlSampler(nvml, 0, pid=MY_PID, memory=False, power=True)
    sampler.sample_once()
    sampler.sample_once()
    assert sampler.result.errors == {"power": "not supported"} and sampler.result.power == []


# --- energy ---------------------------------------------------------------------------------

def test_energy_counter_delta_plain_wrap_and_reset():
    assert counter_delta_mj(1_000, 61_000, 1.0, 300) == (60_000, "")
    # A wrap of the 64-bit counter: 200 J in 1 s at a 300 W limit is plausible.
    delta, note = counter_delta_mj(COUNTER_MODULUS - 100_000, 100_000, 1.0, 300)
    assert delta == 200_000 and note == "counter wrapped"
    # Going back by a lot is a reset (driver reloaded), not 10^16 J: unknown.
    delta, note = counter_delta_mj(5_000_000_000, 1_000, 1.0, 300)
    assert delta is None and "backwards" in note


def test_energy_meter_reads_the_counter_and_handles_its_wrap():
    nvml = FakeNvml(energy_start=COUNTER_MODULUS - 1_200, mj_per_read=500)  # the probe reads once
    seconds = itertools.count(0, 1_000_000_000)
    meter = GpuEnergyMeter(nvml, 0, clock=lambda: next(seconds), counter_poll_s=None)  # two reads exactly
    assert meter.mode == "counter"
    meter.start()
    energy = meter.stop()
    assert energy.joules == pytest.approx(0.5)  # one read apart, across the wrap
    assert energy.provenance.startswith("measured: NVML total energy counter") and "wrapped" in energy.provenance


def test_the_counters_update_interval_is_stated_against_the_window():
    ticks = [(i * 50_000_000, 1000 + i * 20) for i in range(61)]  # an update every 50 ms for 3 s
    fine = counter_resolution(ticks, 3.0)
    assert fine.startswith("60 counter updates seen in the 3.00 s window (every ~50 ms, 1.7% of the window)")
    assert "a sustained_s of 5 s would make it ≤ 1%" in fine
    assert "over 1%" not in counter_resolution(ticks, 10.0)
    assert "too short to resolve" in counter_resolution(ticks[:2], 0.05)


def test_energy_falls_back_to_integrated_power_where_the_counter_is_not_supported():
    ticks = itertools.count(0, 10_000_000)  # a clock advancing 10 ms per read
    meter = GpuEnergyMeter(FakeNvml(energy=False), 0, interval_s=0.001, clock=lambda: next(ticks))
    assert meter.mode == "power" and "pre-Volta" in meter.reason
    meter.start()
    energy = meter.stop()
    assert energy.joules is not None and energy.joules > 0
    assert energy.provenance.startswith("measured: NVML power")
    assert integrate_power_j([(0, 100_000), (2_000_000_000, 100_000)]) == pytest.approx(200.0)
    assert integrate_power_j([(0, 100_000)]) is None


def test_energy_absent_with_reason_when_neither_counter_nor_power():
    meter = GpuEnergyMeter(FakeNvml(energy=False, power=False), 0)
    meter.start()
    energy = meter.stop()
    assert energy.joules is None
    assert energy.provenance == "absent: no energy counter on this GPU (pre-Volta); power reading: not supported"


# --- hardware state -------------------------------------------------------------------------

def test_gpu_state_records_clocks_limits_and_flags_other_processes():
    state = gpu_state(FakeNvml(), 0, "by UUID", pid=MY_PID)
    assert state["name"] == "Tesla V100-SXM2-16GB" and state["cuda_driver"] == "12.4"
    assert state["power_limit_w"] == 300 and state["sm_clock_mhz"] == 1530 and state["temperature_c"] == 41
    assert state["pstate"].startswith("unavailable")
    assert state["shared"] and state["other_processes"] == [{"pid": 777, "used_mb": 5 * 2**30 / 1e6}]


# --- SM clock while timing ----------------------------------------------------------------

def test_clock_watch_waits_for_the_ramp_and_flags_a_window_whose_clock_moved():
    from harness.measure.clocks import ClockWatch

    nvml, now = FakeNvml(), [0]
    watch = ClockWatch(nvml, 0, tolerance=0.03, clock=lambda: now[0])
    ramp = iter([345, 900, 1700, 1950, 1965, 1965])
    steady = []
    for _ in range(6):  # one question every 0.1 s while the clock ramps from idle
        nvml.sm_clock = next(ramp)
        steady.append(watch.steady())
        now[0] += 100_000_000
    assert steady == [False, False, False, False, True, True]
    start = watch.read()
    nvml.sm_clock, nvml.reasons = 1700, 0x4 | 0x20  # power cap and thermal slowdown
    nvml.violations = {0: 2_000_000, 1: 5_000_000}
    window = watch.window(start, watch.read())
    assert window["sm_clock_mhz"] == [1965, 1700] and window["moved"]
    assert window["reasons"] == ["sw_power_cap", "sw_thermal_slowdown"]
    assert window["throttled_ms"] == {"power": 2.0, "thermal": 5.0}


def test_clock_watch_within_tolerance_and_without_the_newer_nvml_calls():
    from harness.measure.clocks import ClockWatch

    nvml = FakeNvml()
    nvml.violations = {}  # NOT_SUPPORTED, as on many consumer GPUs
    watch = ClockWatch(nvml, 0, tolerance=0.03)
    start = watch.read()
    nvml.sm_clock = 1515  # one 15 MHz step: within 3%
    window = watch.window(start, watch.read())
    assert not window["moved"] and window["throttled_ms"] == {}
    assert "violation_power" in window["unreadable"]
    nvml.nvmlDeviceGetCurrentClocksEventReasons = None  # an old pynvml: the deprecated name only
    nvml.nvmlDeviceGetCurrentClocksThrottleReasons = lambda handle: 0x1
    assert ClockWatch(nvml, 0).read().reasons == 0x1
