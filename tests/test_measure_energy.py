"""Energy, CO2e and break-even: codecarbon for real (offline, on this CPU), GPU parts faked."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from harness.measure.carbon import HostEnergy
from harness.measure.energy import (
    EnergyContext,
    EnergyReading,
    IdlePower,
    break_even_inferences,
    compression_figures,
    open_meter,
    window_figures,
)
from harness.measure.figures import Figures, combine
from harness.measure.gpu_energy import GpuEnergy


def test_codecarbon_offline_meter_on_this_cpu(tmp_path):
    cwd = os.getcwd()
    os.chdir(tmp_path)  # anything codecarbon wrote would land here
    try:
        meter = open_meter("cpu", "FRA")
        meter.start()
        deadline = time.perf_counter() + 1.0
        while time.perf_counter() < deadline:
            sum(range(1000))
        reading = meter.stop()
    finally:
        os.chdir(cwd)
    assert list(tmp_path.iterdir()) == []  # no emissions.csv
    assert reading.gpu is None and reading.host is not None
    joules, how = reading.total()
    assert joules is not None and joules > 0
    # RAM power is always codecarbon's heuristic; without RAPL (these machines) the CPU too.
    from codecarbon.core.cpu import is_rapl_available

    assert how.startswith("estimated: ") and "RAM power" in how
    assert ("no RAPL" in how) == (not is_rapl_available())
    assert reading.host.intensity_g_per_kwh is not None and 0 < reading.host.intensity_g_per_kwh < 2000
    assert "FRA" in reading.host.intensity_provenance


def test_a_window_ending_during_a_scheduled_measurement_counts_it_once():
    """codecarbon's stop() used to measure again while its scheduled measurement was still
    running: both counted the same last interval (RAM read ~20 W instead of ~10 W). No two
    measurements may overlap, and the window's RAM power stays the model's."""
    from harness.measure.carbon import HostEnergyMeter

    meter = HostEnergyMeter("USA")
    meter.start()
    tracker = meter._tracker
    measure = tracker._measure_power_and_energy
    calls: list[tuple[float, float]] = []

    def recorded(delay: float):
        def call() -> None:
            t0 = time.perf_counter()
            time.sleep(delay)
            measure()
            calls.append((t0, time.perf_counter()))
        return call

    tracker._scheduler.function = recorded(0.3)  # the measurement at 1 s is still running at 1.1 s
    tracker._measure_power_and_energy = recorded(0.0)
    time.sleep(1.1)
    reading = meter.stop()
    calls.sort()
    assert len(calls) >= 2 and all(end <= start for (_, end), (start, _) in zip(calls, calls[1:])), calls
    ram = next(h for h in tracker._hardware if type(h).__name__ == "RAM")
    assert reading.ram_j / reading.duration_s == pytest.approx(ram.total_power().W, rel=0.05)


def _reading(host_j: float | None = 30.0, gpu: GpuEnergy | None = None) -> EnergyReading:
    host = HostEnergy(host_j, 0.0 if host_j is not None else None, 3.0,
                      "estimated: cpu load × TDP", 400.0, "estimated: grid average for USA")
    return EnergyReading(3.0, host, "", gpu, "no GPU")


def test_window_figures_per_1k_inferences_and_co2():
    f = window_figures(_reading(30.0), inferences=3000, batch_size=64)
    assert f.metrics["energy_j_per_1k"] == pytest.approx(10.0)
    assert f.metrics["co2_g_per_1k"] == pytest.approx(10.0 / 3.6e6 * 400)
    assert f.provenance["energy_j_per_1k"].startswith("estimated: cpu load × TDP")
    assert f.provenance["co2_g_per_1k"].startswith("estimated: grid average for USA")
    assert "gpu_energy_j_per_1k" not in f.metrics
    assert f.provenance["gpu_energy_j_per_1k"] == "absent: no GPU"


def test_gpu_window_total_adds_gpu_and_stays_absent_if_a_part_is_missing():
    gpu = GpuEnergy(60.0, "measured: NVML total energy counter")
    f = window_figures(_reading(30.0, gpu), inferences=3000, batch_size=64)
    assert f.metrics["energy_j_per_1k"] == pytest.approx(30.0)
    assert f.provenance["gpu_energy_j_per_1k"].startswith("measured: NVML")
    assert f.provenance["energy_j_per_1k"].startswith("estimated")  # the CPU part is estimated
    missing = GpuEnergy(None, "absent: no energy counter on this GPU (pre-Volta); power reading: not supported")
    f = window_figures(_reading(30.0, missing), inferences=3000, batch_size=64)
    assert "energy_j_per_1k" not in f.metrics and "co2_g_per_1k" not in f.metrics
    assert f.provenance["energy_j_per_1k"] == f"absent: {missing.provenance[8:]}"


def _host_reading(cpu_j: float, ram_j: float, seconds: float) -> EnergyReading:
    host = HostEnergy(cpu_j, ram_j, seconds, "estimated: cpu and ram", 400.0, "estimated: grid average for USA",
                      "estimated: cpu load × TDP", "estimated: DIMM heuristic")
    return EnergyReading(seconds, host, "", None, "no GPU")


def test_each_joule_is_named_ram_is_shared_and_idle_is_subtracted():
    reading = _host_reading(cpu_j=12.0, ram_j=30.0, seconds=3.0)  # 4 W CPU, 10 W RAM
    idle = IdlePower(cpu_w=0.0, ram_w=10.0, gpu_w=None, seconds=2.0, provenance="estimated: idle power")
    alone = window_figures(reading, inferences=1000, batch_size=64, context=EnergyContext(idle=idle))
    assert alone.metrics["cpu_energy_j_per_1k"] == pytest.approx(12.0)
    assert alone.metrics["ram_energy_j_per_1k"] == pytest.approx(30.0)
    assert alone.metrics["energy_j_per_1k"] == pytest.approx(42.0)
    assert alone.metrics["dynamic_energy_j_per_1k"] == pytest.approx(12.0)  # RAM's floor is idle
    assert "minus idle power 10.00 W × 3.0 s" in alone.provenance["dynamic_energy_j_per_1k"]
    assert alone.provenance["cpu_energy_j_per_1k"].startswith("estimated: cpu load × TDP")
    assert alone.provenance["ram_energy_j_per_1k"].startswith("estimated: DIMM heuristic")
    # two runs at once on this machine: each is charged half of its RAM, once in all
    shared = window_figures(reading, 1000, 64, EnergyContext(ram_share=2, idle=idle, busy="; machine busy (load 3)"))
    assert shared.metrics["ram_energy_j_per_1k"] == pytest.approx(15.0)
    assert "2 runs ran at once" in shared.provenance["ram_energy_j_per_1k"]
    assert shared.metrics["dynamic_energy_j_per_1k"] == pytest.approx(12.0)
    assert "machine busy" in shared.provenance["energy_j_per_1k"]
    assert shared.metrics["co2_g_per_1k"] == pytest.approx(27.0 / 3.6e6 * 400)  # carbon follows the total
    no_idle = window_figures(reading, 1000, 64)
    assert "dynamic_energy_j_per_1k" not in no_idle.metrics
    assert no_idle.provenance["dynamic_energy_j_per_1k"].startswith("absent: no idle measurement")


def test_a_window_below_the_meters_resolution_is_absent_not_noise():
    f = compression_figures(_host_reading(cpu_j=0.0, ram_j=0.1, seconds=0.01))
    assert "compress_energy_j" not in f.metrics
    assert f.provenance["compress_energy_j"].startswith("absent: below the meter's resolution (a 0.010 s window")
    assert "compress_co2_g" not in f.metrics


def test_compression_figures_and_break_even():
    f = compression_figures(_reading(500.0))
    assert f.metrics["compress_energy_j"] == pytest.approx(500.0)
    assert f.provenance["compress_energy_j"].startswith("estimated")
    absent = compression_figures(None, "measure.energy = false")
    assert absent.metrics == {} and absent.provenance["compress_energy_j"] == "absent: measure.energy = false"
    # 500 J repaid by saving 5 J per 1,000 inferences: 100,000 inferences.
    assert break_even_inferences(500.0, 15.0, 10.0) == pytest.approx(100_000)
    assert break_even_inferences(500.0, 10.0, 12.0) is None  # never repaid
    assert break_even_inferences(None, 15.0, 10.0) is None
    assert break_even_inferences(500.0, float("nan"), 10.0) is None  # a leaderboard gap


def test_figures_refuse_zero_for_missing_and_combine_provenance():
    f = Figures()
    with pytest.raises(ValueError):
        f.measured("x", None, "how")
    assert combine(["measured: a", "measured: b"]) == "measured: a; b"
    assert combine(["measured: a", "estimated: b"]) == "estimated: b"


def test_idle_power_is_reused_only_within_idle_reuse_s(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import json
    from types import SimpleNamespace

    from harness import bench

    root = tmp_path / "harness-runs-test"
    root.mkdir(mode=0o700)
    monkeypatch.setattr(bench, "private_runs_root", lambda: root)
    calls, ram_w = [], [3.0]

    class Helpers:  # stands in for the fork server's helper child: python -m harness.measure.idle
        def call(self, module: str, args: list[str]) -> tuple[int, list[str]]:
            calls.append((module, args))
            return 0, [json.dumps({"cpu_w": 0.5, "ram_w": ram_w[0], "gpu_w": None, "seconds": 2.0,
                                   "provenance": "measured"})]

    def runs(reuse_s: float) -> list:
        measure = SimpleNamespace(energy=True, carbon_country="DEU", idle_reuse_s=reuse_s)
        return [SimpleNamespace(device="cpu", measure=measure, placement=SimpleNamespace(idle=None)) for _ in range(2)]

    out = SimpleNamespace(print=lambda *a, **k: None)
    fresh = runs(0)
    bench.measure_idle_power(fresh, out, Helpers())
    assert len(calls) == 1 and calls[0] == ("harness.measure.idle", ["cpu", "DEU"])  # once for both runs
    assert fresh[1].placement.idle["provenance"] == "measured"
    bench.measure_idle_power(runs(0), out, Helpers())  # 0: a fresh window every bench
    assert len(calls) == 2
    kept = runs(600)
    bench.measure_idle_power(kept, out, Helpers())  # measured a moment ago: reused
    assert len(calls) == 2
    assert kept[0].placement.idle["ram_w"] == 3.0 and "reused: measured 0 s before this bench (idle_reuse_s = 600)" in \
        kept[0].placement.idle["provenance"]
    other = runs(600)
    other[0].measure.carbon_country = other[1].measure.carbon_country = "USA"  # another meter set-up: its own figure
    bench.measure_idle_power(other, out, Helpers())
    assert len(calls) == 3
    path = bench._idle_file(("cpu", "DEU"))
    path.write_text(json.dumps(dict(json.loads(path.read_text()), measured_at=time.time() - 700)))
    bench.measure_idle_power(runs(600), out, Helpers())  # too old
    assert len(calls) == 4
    path.unlink()
    ram_w[0] = None  # a figure with a part absent is not kept for later benches
    bench.measure_idle_power(runs(600), out, Helpers())
    bench.measure_idle_power(runs(600), out, Helpers())
    assert len(calls) == 6 and not path.exists()
    path.write_text('{"measured_at": 1e12, "idle": {"cpu_w": 1}}')  # a broken file: measured afresh
    bench.measure_idle_power(runs(600), out, Helpers())
    assert len(calls) == 7
