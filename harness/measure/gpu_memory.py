"""GPU memory over the measured phase: NVML (process and device) and torch's allocator.

``GpuMemoryWatch.start()`` resets torch's peak counters, notes the memory the resident
model takes, and starts an :class:`NvmlSampler`; ``stop()`` gives the figures. Off CUDA
every figure is absent because there is no GPU.
"""

from __future__ import annotations

from typing import Any

from harness.measure.figures import Figures
from harness.measure.nvml import GpuSamples, NvmlSampler, NvmlUnavailable, open_device

GPU_KEYS = ("gpu_peak_mem_mb", "gpu_device_peak_mem_mb", "gpu_model_mem_mb",
            "torch_peak_allocated_mb", "torch_peak_reserved_mb")
MB = 1e6


class GpuMemoryWatch:
    def __init__(self, device: str, nvml: Any = None, interval_s: float = 0.01):
        self.device, self.interval_s = device, interval_s
        self.sampler: NvmlSampler | None = None
        self.nvml_absent = ""
        self.model_bytes = 0
        if device.startswith("cuda"):
            try:
                nvml, handle, _ = open_device(device, nvml)
                self.sampler = NvmlSampler(nvml, handle, interval_s=interval_s)
            except NvmlUnavailable as exc:
                self.nvml_absent = str(exc)

    def start(self) -> None:
        """Call with only the model on the device (before inputs are made)."""
        if not self.device.startswith("cuda"):
            return
        import torch

        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self.model_bytes = torch.cuda.memory_allocated(self.device)
        if self.sampler is not None:
            self.sampler.start()

    def stop(self) -> Figures:
        f = Figures()
        if not self.device.startswith("cuda"):
            for key in GPU_KEYS:
                f.absent(key, "no GPU")
            return f
        import torch

        torch.cuda.synchronize(self.device)
        f.measured("gpu_model_mem_mb", self.model_bytes / MB,
                   "torch.cuda.memory_allocated with the model resident, before inputs")
        f.measured("torch_peak_allocated_mb", torch.cuda.max_memory_allocated(self.device) / MB,
                   "torch.cuda.max_memory_allocated over timing, peaks reset at its start")
        f.measured("torch_peak_reserved_mb", torch.cuda.max_memory_reserved(self.device) / MB,
                   "torch.cuda.max_memory_reserved over timing (allocator cache, no CUDA context)")
        if self.sampler is None:
            f.absent("gpu_peak_mem_mb", self.nvml_absent)
            f.absent("gpu_device_peak_mem_mb", self.nvml_absent)
        else:
            f.update(nvml_figures(self.sampler.stop(), self.interval_s))
        return f


def nvml_figures(samples: GpuSamples, interval_s: float) -> Figures:
    """Peak process and device memory from NVML samples, with why a figure is missing."""
    f = Figures()
    every = f"sampled every {interval_s * 1000:.0f} ms ({samples.n} samples)"
    if samples.peak_process_bytes is not None:
        f.measured("gpu_peak_mem_mb", samples.peak_process_bytes / MB,
                   f"NVML used memory of this process (includes the CUDA context), {every}")
    elif "processes" in samples.errors:
        f.absent("gpu_peak_mem_mb", f"NVML process list: {samples.errors['processes']}")
    elif samples.process_listed:
        f.absent("gpu_peak_mem_mb", "NVML lists this process without its memory (WDDM?)")
    else:
        f.absent("gpu_peak_mem_mb", "this process is not in NVML's process list "
                                    "(a container's PID namespace?)")
    if samples.peak_device_bytes is not None:
        shared = f"; includes other processes {sorted(samples.other_pids)}" if samples.other_pids else ""
        f.measured("gpu_device_peak_mem_mb", samples.peak_device_bytes / MB,
                   f"NVML used memory of the whole device, {every}{shared}")
    else:
        f.absent("gpu_device_peak_mem_mb", f"NVML memory info: {samples.errors.get('memory', 'not read')}")
    if samples.other_pids:
        f.measured("gpu_other_pids", sorted(samples.other_pids), "NVML compute processes other than this one")
    return f


def peak_mem_figure(f: Figures) -> None:
    """``peak_mem_mb`` on CUDA: NVML's process peak, else torch's reserved peak."""
    if "gpu_peak_mem_mb" in f.metrics:
        f.put("peak_mem_mb", f.metrics["gpu_peak_mem_mb"], f.provenance["gpu_peak_mem_mb"])
    elif "torch_peak_reserved_mb" in f.metrics:
        why = f.provenance["gpu_peak_mem_mb"].removeprefix("absent: ")
        f.put("peak_mem_mb", f.metrics["torch_peak_reserved_mb"],
              f"{f.provenance['torch_peak_reserved_mb']}; NVML process figure absent: {why}")
