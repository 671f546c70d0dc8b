"""Energy of a window of work: CPU + RAM through codecarbon, GPU through NVML.

An :class:`EnergyMeter` is opened once per run (:func:`open_meter`) and used for each
window: the compression steps, and the sustained inference window. On CUDA the device is
synchronized at both ends, so the window holds exactly the work it claims.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from typing import Any

from harness.measure.carbon import J_PER_KWH, HostEnergy, HostEnergyMeter
from harness.measure.figures import Figures, combine
from harness.measure.gpu_energy import GpuEnergy, GpuEnergyMeter


@dataclass
class EnergyReading:
    seconds: float
    host: HostEnergy | None
    host_absent: str  # why ``host`` is None
    gpu: GpuEnergy | None  # None off CUDA
    gpu_absent: str

    def total(self) -> tuple[float | None, str]:
        """(joules, provenance) of CPU + RAM (+ GPU on CUDA); absent if a part is."""
        parts: list[tuple[float | None, str]] = [
            (self.host.joules, self.host.provenance) if self.host else (None, f"absent: {self.host_absent}")]
        if self.gpu is not None:
            parts.append((self.gpu.joules, self.gpu.provenance))
        missing = [p.removeprefix("absent: ") for j, p in parts if j is None]
        if missing:
            return None, "absent: " + "; ".join(missing)
        return sum(j for j, _ in parts if j is not None), combine([p for _, p in parts])


class EnergyMeter:
    def __init__(self, device: str, host: HostEnergyMeter | None, host_absent: str,
                 gpu: GpuEnergyMeter | None, gpu_absent: str, sync: Any = None):
        self.device, self.host, self.host_absent = device, host, host_absent
        self.gpu, self.gpu_absent, self.sync = gpu, gpu_absent, sync or (lambda: None)
        self._t0 = 0.0

    def start(self) -> None:
        if self.host is not None:
            try:
                self.host.start()  # first: the one-off codecarbon setup stays outside the window
            except Exception as exc:  # codecarbon's failure must not fail the run
                self.host, self.host_absent = None, f"codecarbon failed: {type(exc).__name__}: {exc}"
        self.sync()
        if self.gpu is not None:
            self.gpu.start()
        self._t0 = time.perf_counter()

    def stop(self) -> EnergyReading:
        self.sync()
        seconds = time.perf_counter() - self._t0
        gpu = self.gpu.stop() if self.gpu is not None else None
        if gpu is None and self.device.startswith("cuda"):
            gpu = GpuEnergy(None, f"absent: {self.gpu_absent}")
        host = None
        if self.host is not None:
            try:
                host = self.host.stop()
            except Exception as exc:
                self.host_absent = f"codecarbon failed: {type(exc).__name__}: {exc}"
        return EnergyReading(seconds, host, self.host_absent, gpu, self.gpu_absent)


def open_meter(device: str, country: str, nvml: Any = None) -> EnergyMeter:
    """A meter for ``device``; parts that cannot be had are recorded with the reason."""
    host: HostEnergyMeter | None = None
    host_absent = ""
    if importlib.util.find_spec("codecarbon") is None:
        host_absent = "codecarbon is not installed (pip install harness[measure])"
    else:
        host = HostEnergyMeter(country)
    gpu: GpuEnergyMeter | None = None
    gpu_absent = "no GPU"
    sync = None
    if device.startswith("cuda"):
        import torch

        from harness.measure.nvml import NvmlUnavailable, open_device

        def sync() -> None:
            torch.cuda.synchronize(device)

        try:
            nvml, handle, _ = open_device(device, nvml)
            gpu = GpuEnergyMeter(nvml, handle)
        except NvmlUnavailable as exc:
            gpu_absent = str(exc)
    return EnergyMeter(device, host, host_absent, gpu, gpu_absent, sync)


def window_figures(reading: EnergyReading, inferences: int, batch_size: int) -> Figures:
    """Per-inference energy and CO2e from a sustained window of ``inferences``."""
    f = Figures()
    per_1k = 1000 / inferences
    window = f"over a {reading.seconds:.1f} s sustained window of {inferences} inferences at batch {batch_size}"
    if reading.host is not None and reading.host.joules is not None:
        f.put("cpu_energy_j_per_1k", reading.host.joules * per_1k, f"{reading.host.provenance}; {window}")
    else:
        f.absent("cpu_energy_j_per_1k", reading.host_absent)
    if reading.gpu is not None and reading.gpu.joules is not None:
        f.put("gpu_energy_j_per_1k", reading.gpu.joules * per_1k, f"{reading.gpu.provenance}; {window}")
    else:
        f.absent("gpu_energy_j_per_1k", reading.gpu.provenance.removeprefix("absent: ") if reading.gpu else "no GPU")
    joules, how = reading.total()
    if joules is None:
        f.absent("energy_j_per_1k", how.removeprefix("absent: "))
    else:
        f.put("energy_j_per_1k", joules * per_1k, f"{how}; {window}")
    co2, co2_how = co2_grams(joules, reading, how)
    if co2 is None:
        f.absent("co2_g_per_1k", co2_how)
    else:
        f.put("co2_g_per_1k", co2 * per_1k, co2_how)
    return f


def co2_grams(joules: float | None, reading: EnergyReading, energy_how: str) -> tuple[float | None, str]:
    """(gCO2e, provenance) of ``joules`` at the grid intensity codecarbon reported."""
    if joules is None:
        return None, f"no energy figure ({energy_how.removeprefix('absent: ')})"
    host = reading.host
    if host is None or host.intensity_g_per_kwh is None:
        return None, host.intensity_provenance.removeprefix("absent: ") if host else reading.host_absent
    why = combine([host.intensity_provenance, energy_how]).removeprefix("estimated: ")
    return joules / J_PER_KWH * host.intensity_g_per_kwh, f"estimated: {why}"


def compression_figures(reading: EnergyReading | None, absent_why: str = "") -> Figures:
    """The energy and CO2e the compression steps cost (all steps together)."""
    f = Figures()
    if reading is None:
        f.absent("compress_energy_j", absent_why)
        f.absent("compress_co2_g", absent_why)
        return f
    joules, how = reading.total()
    if joules is None:
        f.absent("compress_energy_j", how.removeprefix("absent: "))
    else:
        f.put("compress_energy_j", joules, f"{how}; over the {reading.seconds:.1f} s of the method steps")
    co2, co2_how = co2_grams(joules, reading, how)
    if co2 is None:
        f.absent("compress_co2_g", co2_how)
    else:
        f.put("compress_co2_g", co2, co2_how)
    return f


def break_even_inferences(compress_j: float | None, baseline_j_per_1k: float | None,
                          method_j_per_1k: float | None) -> float | None:
    """Inferences after which a method's energy saving repays its compression energy;
    None when it saves nothing or a figure is missing (None or NaN, as from a DataFrame)."""
    if any(v is None or v != v for v in (compress_j, baseline_j_per_1k, method_j_per_1k)):
        return None
    saving_per_inference = (baseline_j_per_1k - method_j_per_1k) / 1000
    if saving_per_inference <= 0:
        return None
    return compress_j / saving_per_inference
