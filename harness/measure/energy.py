"""Energy of a window of work: CPU + RAM through codecarbon, GPU through NVML.

An :class:`EnergyMeter` is opened once per run (:func:`open_meter`) and used for each
window: the compression steps, and the sustained inference window. On CUDA the device is
synchronized at both ends, so the window holds exactly the work it claims.
"""

from __future__ import annotations

import importlib.util
import os
import time
from dataclasses import dataclass
from typing import Any

from harness.measure.carbon import J_PER_KWH, HostEnergy, HostEnergyMeter
from harness.measure.concurrency import RUNNING_FILE_VAR, mean_running
from harness.measure.figures import Figures, combine
from harness.measure.gpu_energy import GpuEnergy, GpuEnergyMeter


@dataclass
class EnergyReading:
    seconds: float
    host: HostEnergy | None
    host_absent: str  # why ``host`` is None
    gpu: GpuEnergy | None  # None off CUDA
    gpu_absent: str
    ended: float = 0.0  # time.monotonic() at the window's end (0: unknown)

    def total(self) -> tuple[float | None, str]:
        """(joules, provenance) of CPU + RAM (+ GPU on CUDA); absent if a part is."""
        return _total(_parts(self, EnergyContext()))


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
        return EnergyReading(seconds, host, self.host_absent, gpu, self.gpu_absent, time.monotonic())


def open_meter(device: str, country: str, nvml: Any = None) -> EnergyMeter:
    """A meter for ``device``; parts that cannot be had are recorded with the reason."""
    host: HostEnergyMeter | None = None
    host_absent = ""
    if importlib.util.find_spec("codecarbon") is None:
        host_absent = "codecarbon is not installed (pip install 'compression-harness[measure]')"
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


HOST_RESOLUTION_S = 1.0  # codecarbon samples CPU load each second, from CPU time in 10 ms ticks
GPU_RESOLUTION_S = 0.1  # NVML's energy counter refreshes every 20-100 ms


@dataclass
class IdlePower:
    """This machine's power while nothing runs, measured once per suite (``measure/idle.py``):
    what a window would have cost anyway. CPU is this process's share (≈0 when idle)."""

    cpu_w: float | None
    ram_w: float | None
    gpu_w: float | None
    seconds: float
    provenance: str

    def total_w(self, ram_share: float, gpu: bool) -> float | None:
        parts = [self.cpu_w, None if self.ram_w is None else self.ram_w / ram_share] + ([self.gpu_w] if gpu else [])
        return None if any(p is None for p in parts) else sum(parts)


@dataclass
class EnergyContext:
    """How a window's energy is attributed: RAM shared by the runs that ran at once on the
    machine (``ram_share``, or where the executor keeps one, their number over the window
    from ``running_file``: :mod:`.concurrency`), the idle power to subtract, and a note
    when the machine was busy."""

    ram_share: int = 1
    idle: IdlePower | None = None
    busy: str = ""
    running_file: str | None = None

    def share(self, reading: EnergyReading) -> float:
        """The runs that shared the machine's RAM during ``reading``'s window (at least 1)."""
        if self.running_file and reading.ended:
            mean = mean_running(self.running_file, reading.ended - reading.seconds, reading.ended)
            if mean is not None:
                return max(1.0, mean)
        return float(max(1, self.ram_share))


def energy_context(concurrent: int, idle: dict[str, Any] | None) -> EnergyContext:
    """The context of a run: ``concurrent`` runs on the machine (their number over each
    window instead, where the executor logs it), the suite's idle power."""
    return EnergyContext(ram_share=max(1, concurrent), idle=IdlePower(**idle) if idle else None,
                         running_file=os.environ.get(RUNNING_FILE_VAR) or None)


def _parts(reading: EnergyReading, context: EnergyContext) -> dict[str, tuple[float | None, str]]:
    """(joules, provenance) of each part of a window: cpu, ram (this run's share), gpu."""
    host = reading.host
    if host is not None and reading.seconds < HOST_RESOLUTION_S:
        host, host_absent = None, (f"below the meter's resolution (a {reading.seconds:.3f} s window; codecarbon "
                                   f"samples CPU load every {HOST_RESOLUTION_S:g} s from CPU time in 10 ms ticks)")
    else:
        host_absent = reading.host_absent
    parts: dict[str, tuple[float | None, str]] = {}
    if host is None or host.cpu_j is None or host.ram_j is None:
        parts["cpu"] = parts["ram"] = (None, f"absent: {host_absent}")
    else:
        parts["cpu"] = (host.cpu_j, host.cpu_provenance or host.provenance)
        share = context.share(reading)
        mean = "" if share.is_integer() else " on average over the window"
        shared = f"; 1/{share:.3g} of the machine's RAM power: {share:.3g} runs ran at once{mean}" \
            if share > 1 else ""
        parts["ram"] = (host.ram_j / share, (host.ram_provenance or host.provenance) + shared)
    if reading.gpu is not None:
        joules, how = reading.gpu.joules, reading.gpu.provenance
        if joules is not None and reading.seconds < GPU_RESOLUTION_S:
            joules, how = None, f"absent: below the GPU counter's resolution (a {reading.seconds:.3f} s window)"
        parts["gpu"] = (joules, how)
    return parts


def _total(parts: dict[str, tuple[float | None, str]]) -> tuple[float | None, str]:
    missing = [how.removeprefix("absent: ") for joules, how in parts.values() if joules is None]
    if missing:
        return None, "absent: " + "; ".join(dict.fromkeys(missing))
    return sum(j for j, _ in parts.values()), combine([how for _, how in parts.values()])


def window_figures(reading: EnergyReading, inferences: int, batch_size: int,
                   context: EnergyContext | None = None) -> Figures:
    """Per-inference energy (by part, total, above idle) and CO2e from a sustained window."""
    context = context or EnergyContext()
    f = Figures()
    per_1k = 1000 / inferences
    window = (f"over a {reading.seconds:.1f} s sustained window of {inferences} inferences at batch "
              f"{batch_size}{context.busy}")
    parts = _parts(reading, context)
    for part in ("cpu", "ram", "gpu"):
        joules, how = parts.get(part, (None, "absent: no GPU"))
        _put(f, f"{part}_energy_j_per_1k", joules, how, per_1k, window)
    joules, how = _total(parts)
    _put(f, "energy_j_per_1k", joules, how, per_1k, window)
    _put(f, "dynamic_energy_j_per_1k", *_dynamic(joules, how, reading, context), per_1k, window)
    _put(f, "co2_g_per_1k", *co2_grams(joules, reading, how), per_1k)
    return f


def _put(f: Figures, key: str, value: float | None, how: str, scale: float = 1.0, window: str = "") -> None:
    """``value × scale`` under ``how`` (+ the window it was measured over), or absent with why."""
    if value is None:
        f.absent(key, how.removeprefix("absent: "))
    else:
        f.put(key, value * scale, f"{how}; {window}" if window else how)


def _dynamic(joules: float | None, how: str, reading: EnergyReading,
             context: EnergyContext) -> tuple[float | None, str]:
    """Energy above what the idle machine draws over the same seconds."""
    if joules is None:
        return None, how
    if context.idle is None:
        return None, "absent: no idle measurement (it runs once per suite, before the runs)"
    idle_w = context.idle.total_w(context.share(reading), reading.gpu is not None)
    if idle_w is None:
        return None, f"absent: the idle measurement lacks a part ({context.idle.provenance})"
    why = combine([how, context.idle.provenance]).split(": ", 1)
    return joules - idle_w * reading.seconds, (f"{why[0]}: total minus idle power {idle_w:.2f} W × "
                                               f"{reading.seconds:.1f} s; {why[1]}")


def co2_grams(joules: float | None, reading: EnergyReading, energy_how: str) -> tuple[float | None, str]:
    """(gCO2e, provenance) of ``joules`` at the grid intensity codecarbon reported."""
    if joules is None:
        return None, f"no energy figure ({energy_how.removeprefix('absent: ')})"
    host = reading.host
    if host is None or host.intensity_g_per_kwh is None:
        return None, host.intensity_provenance.removeprefix("absent: ") if host else reading.host_absent
    why = combine([host.intensity_provenance, energy_how]).removeprefix("estimated: ")
    return joules / J_PER_KWH * host.intensity_g_per_kwh, f"estimated: {why}"


def compression_figures(reading: EnergyReading | None, absent_why: str = "",
                        context: EnergyContext | None = None) -> Figures:
    """The energy and CO2e the compression steps cost (all steps together)."""
    f = Figures()
    if reading is None:
        f.absent("compress_energy_j", absent_why)
        f.absent("compress_co2_g", absent_why)
        return f
    joules, how = _total(_parts(reading, context or EnergyContext()))
    _put(f, "compress_energy_j", joules, how, window=f"over the {reading.seconds:.2f} s of the method steps")
    _put(f, "compress_co2_g", *co2_grams(joules, reading, how))
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
