"""The GPU's state when a run starts: what it is, how it is clocked, who else uses it.

:func:`record_start_state` is called by the worker before the model loads; the
environment record (``env["gpu_state"]``) reads it back, since the worker writes the
environment only after the run.
"""

from __future__ import annotations

import os
from typing import Any

_recorded: dict[str, Any] | None = None


def _call(nvml: Any, fn_name: str, *args: Any) -> Any:
    try:
        value = getattr(nvml, fn_name)(*args)
    except nvml.NVMLError as exc:
        return f"unavailable: {exc}"
    return value.decode() if isinstance(value, bytes) else value


def gpu_state(nvml: Any, handle: Any, how: str = "", pid: int | None = None) -> dict[str, Any]:
    """Name, driver, CUDA driver version, power limit, clocks, temperature, memory and
    the other processes using the GPU (``other_processes``; ``shared`` is True if any)."""
    pid = os.getpid() if pid is None else pid
    state: dict[str, Any] = {"nvml_device": how}
    state["name"] = _call(nvml, "nvmlDeviceGetName", handle)
    state["uuid"] = _call(nvml, "nvmlDeviceGetUUID", handle)
    state["driver"] = _call(nvml, "nvmlSystemGetDriverVersion")
    cuda = _call(nvml, "nvmlSystemGetCudaDriverVersion")
    state["cuda_driver"] = f"{cuda // 1000}.{cuda % 1000 // 10}" if isinstance(cuda, int) else cuda
    limit = _call(nvml, "nvmlDeviceGetEnforcedPowerLimit", handle)
    state["power_limit_w"] = limit / 1000 if isinstance(limit, int) else limit
    state["sm_clock_mhz"] = _call(nvml, "nvmlDeviceGetClockInfo", handle, nvml.NVML_CLOCK_SM)
    state["mem_clock_mhz"] = _call(nvml, "nvmlDeviceGetClockInfo", handle, nvml.NVML_CLOCK_MEM)
    state["max_sm_clock_mhz"] = _call(nvml, "nvmlDeviceGetMaxClockInfo", handle, nvml.NVML_CLOCK_SM)
    state["temperature_c"] = _call(nvml, "nvmlDeviceGetTemperature", handle, nvml.NVML_TEMPERATURE_GPU)
    state["pstate"] = _call(nvml, "nvmlDeviceGetPerformanceState", handle)
    memory = _call(nvml, "nvmlDeviceGetMemoryInfo", handle)
    if not isinstance(memory, str):
        state["memory_total_mb"] = memory.total / 1e6
        state["memory_used_mb"] = memory.used / 1e6
    others = []
    for fn_name in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
        procs = _call(nvml, fn_name, handle)
        for proc in procs if isinstance(procs, list) else []:
            if proc.pid != pid:
                used = proc.usedGpuMemory
                others.append({"pid": int(proc.pid), "used_mb": used / 1e6 if used is not None else None})
    state["other_processes"] = others
    state["shared"] = bool(others)
    return state


def record_start_state(device: str, nvml: Any = None) -> dict[str, Any]:
    """Snapshot the run's GPU (or say why there is none) and keep it for :func:`recorded`."""
    global _recorded
    if not device.startswith("cuda"):
        _recorded = {"absent": "no GPU"}
        return _recorded
    from harness.measure.nvml import NvmlUnavailable, open_device

    try:
        nvml, handle, how = open_device(device, nvml)
        _recorded = gpu_state(nvml, handle, how)
    except NvmlUnavailable as exc:
        _recorded = {"absent": str(exc)}
    return _recorded


def recorded() -> dict[str, Any] | None:
    return _recorded
