"""The CUDA code paths end to end, with torch.cuda and pynvml replaced by stand-ins.

No GPU here: CUDA events are timed on the host clock, the allocator's counters are fixed
numbers, and NVML is the documented-API stand-in of test_measure_nvml. What is checked
is the wiring: which figures appear, from where, with which provenance.
"""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import pytest
import torch
from test_measure_nvml import FakeNvml

from harness.config import MeasureConfig
from harness.measure import hardware, nvml
from harness.measure.energy import open_meter
from harness.measure.perf import measure_model


class FakeEvent:
    def __init__(self, enable_timing: bool = False):
        self.t = 0.0

    def record(self, stream=None) -> None:
        self.t = time.perf_counter()

    def synchronize(self) -> None:
        pass

    def elapsed_time(self, end: FakeEvent) -> float:
        return (end.t - self.t) * 1e3


class Task:
    def example_input(self, batch_size: int):
        return torch.arange(batch_size * 64, dtype=torch.float32).reshape(batch_size, 64) / 1e3


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    fake = FakeNvml()
    fake.processes[0] = SimpleNamespace(pid=os.getpid(), usedGpuMemory=700 * 2**20)
    monkeypatch.setattr(nvml, "load_nvml", lambda: fake)
    calls = {"sync": 0}
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.__setitem__("sync", calls["sync"] + 1))
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 40 * 10**6)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 60 * 10**6)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda device=None: 80 * 10**6)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda index: SimpleNamespace(uuid="bbbb2222-0000-0000-0000-000000000000"))
    fake.calls = calls
    return fake


MEASURE = {"batch_sizes": [1, 4], "warmup_s": 0.0, "min_time_s": 0.02, "min_iterations": 5,
           "max_time_s": 0.2, "ci_target": 0.05, "energy": True, "sustained_s": 1.0,
           "carbon_country": "USA", "price_per_hour": 3.6}


def test_a_cuda_run_reports_gpu_memory_energy_and_state(fake_cuda: FakeNvml) -> None:
    model = torch.nn.Linear(64, 10).eval()
    meter = open_meter("cuda:0", "USA")
    figures = measure_model(model, Task(), MeasureConfig(**MEASURE), "cuda:0", meter)
    metrics, provenance = figures.metrics, figures.provenance

    assert metrics["latency"]["1"]["clock"] == "cuda-events"
    assert fake_cuda.calls["sync"] >= 4  # edges of timings and of the sustained window
    assert metrics["gpu_peak_mem_mb"] == pytest.approx(700 * 2**20 / 1e6)  # ours, not pid 777's
    assert metrics["peak_mem_mb"] == metrics["gpu_peak_mem_mb"]
    assert metrics["gpu_model_mem_mb"] == 40 and metrics["torch_peak_reserved_mb"] == 80
    assert metrics["gpu_other_pids"] == [777]
    assert "other processes [777]" in provenance["gpu_device_peak_mem_mb"]
    assert metrics["gpu_energy_j_per_1k"] > 0
    assert provenance["gpu_energy_j_per_1k"].startswith("measured: NVML total energy counter")
    assert metrics["energy_j_per_1k"] > metrics["gpu_energy_j_per_1k"]  # + CPU and RAM
    assert provenance["energy_j_per_1k"].startswith("estimated")  # the codecarbon part
    assert metrics["cost_usd_per_1m"] == pytest.approx(1e6 / metrics["sustained_throughput_sps"] / 1000)

    state = hardware.record_start_state("cuda:0")
    assert state["name"] == "Tesla V100-SXM2-16GB" and state["shared"]
    assert state["nvml_device"] == "by the device UUID torch reports"


def test_without_nvml_gpu_figures_are_absent_with_the_reason(fake_cuda, monkeypatch) -> None:
    def unavailable():
        raise nvml.NvmlUnavailable("NVML could not be initialised: Driver Not Loaded")

    monkeypatch.setattr(nvml, "load_nvml", unavailable)
    model = torch.nn.Linear(64, 10).eval()
    figures = measure_model(model, Task(), MeasureConfig(**(MEASURE | {"energy": False})), "cuda:0")
    metrics, provenance = figures.metrics, figures.provenance
    assert "gpu_peak_mem_mb" not in metrics
    assert provenance["gpu_peak_mem_mb"] == "absent: NVML could not be initialised: Driver Not Loaded"
    assert metrics["peak_mem_mb"] == 80  # torch's reserved peak stands in, and says so
    assert "NVML process figure absent" in provenance["peak_mem_mb"]
    assert provenance["energy_j_per_1k"] == "absent: measure.energy = false"
