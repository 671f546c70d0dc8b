"""NVML: find the GPU a torch device is, and sample its memory and power from the driver.

Everything takes the NVML module as an argument (``pynvml`` from nvidia-ml-py in real
runs; a stand-in in tests), so the logic is the same with and without a GPU.

NVML semantics relied on (NVML API reference):
- NVML enumerates GPUs in PCI bus order; CUDA (and torch) in ``CUDA_DEVICE_ORDER``
  (default FASTEST_FIRST) restricted to ``CUDA_VISIBLE_DEVICES`` (indices or UUIDs, a
  unique UUID prefix is enough). The one identity both share is the UUID.
- ``nvmlDeviceGetComputeRunningProcesses`` lists (pid, usedGpuMemory) per process;
  ``usedGpuMemory`` is None where the driver cannot tell (Windows WDDM). Inside a container
  the pids are the host's, so this process may not be found by its own pid.
- ``nvmlDeviceGetMemoryInfo(...).used`` is the whole device's used memory.
- ``nvmlDeviceGetPowerUsage`` is the board's power draw in mW.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any


class NvmlUnavailable(Exception):
    """NVML cannot be used here; the message says why, for provenance."""


def load_nvml() -> Any:
    """The initialised ``pynvml`` module, or :class:`NvmlUnavailable`."""
    try:
        import pynvml
    except ImportError:
        raise NvmlUnavailable("nvidia-ml-py is not installed (pip install 'compression-harness[measure]')") from None
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        raise NvmlUnavailable(f"NVML could not be initialised: {exc}") from None
    return pynvml


def not_supported(nvml: Any, exc: BaseException) -> bool:
    """True when ``exc`` is NVML's NVML_ERROR_NOT_SUPPORTED."""
    return isinstance(exc, nvml.NVMLError) and getattr(exc, "value", None) == nvml.NVML_ERROR_NOT_SUPPORTED


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _by_uuid_prefix(nvml: Any, prefix: str) -> Any:
    matches = []
    for i in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(i)
        if _text(nvml.nvmlDeviceGetUUID(handle)).startswith(prefix):
            matches.append(handle)
    if len(matches) != 1:
        raise NvmlUnavailable(f"CUDA_VISIBLE_DEVICES entry '{prefix}' matches {len(matches)} NVML devices")
    return matches[0]


def resolve_handle(nvml: Any, torch_index: int, torch_uuid: str | None = None,
                   visible: str | None = None, order: str | None = None) -> tuple[Any, str]:
    """(NVML handle, how it was found) for torch's ``cuda:<torch_index>``.

    ``torch_uuid`` is ``torch.cuda.get_device_properties(i).uuid`` where torch has it: the
    UUID names the same GPU in both worlds whatever the orders. Otherwise the
    ``CUDA_VISIBLE_DEVICES`` entry (``visible``) is followed: a UUID (prefix) is exact, an
    index is NVML's only when ``CUDA_DEVICE_ORDER`` (``order``) is PCI_BUS_ID.
    """
    if torch_uuid:
        bare = torch_uuid.split("-", 1)[1] if torch_uuid.startswith(("GPU-", "MIG-")) else torch_uuid
        for prefix in ("GPU-", "MIG-"):
            try:
                return nvml.nvmlDeviceGetHandleByUUID(prefix + bare), "by the device UUID torch reports"
            except nvml.NVMLError:
                continue
    entries = [e.strip() for e in visible.split(",")] if visible else None
    entry = str(torch_index)
    if entries is not None:
        if torch_index >= len(entries) or not entries[torch_index]:
            raise NvmlUnavailable(f"cuda:{torch_index} is not in CUDA_VISIBLE_DEVICES={visible!r}")
        entry = entries[torch_index]
    if entry.isdigit():
        caveat = "" if order == "PCI_BUS_ID" else \
            " (assumes CUDA and NVML order alike; set CUDA_DEVICE_ORDER=PCI_BUS_ID to be sure)"
        where = f"CUDA_VISIBLE_DEVICES entry {entry}" if entries is not None else f"index {entry}"
        return nvml.nvmlDeviceGetHandleByIndex(int(entry)), f"by {where}{caveat}"
    if entry.startswith("MIG-"):
        return nvml.nvmlDeviceGetHandleByUUID(entry), "by MIG UUID from CUDA_VISIBLE_DEVICES"
    return _by_uuid_prefix(nvml, entry), "by UUID from CUDA_VISIBLE_DEVICES"


def open_device(device: str, nvml: Any | None = None) -> tuple[Any, Any, str]:
    """(nvml, handle, how) for a torch CUDA device string such as ``cuda:1``."""
    import torch

    nvml = nvml if nvml is not None else load_nvml()
    index = torch.device(device).index
    index = torch.cuda.current_device() if index is None else index
    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    try:
        handle, how = resolve_handle(nvml, index, str(uuid) if uuid else None,
                                     os.environ.get("CUDA_VISIBLE_DEVICES"),
                                     os.environ.get("CUDA_DEVICE_ORDER"))
    except nvml.NVMLError as exc:
        raise NvmlUnavailable(f"no NVML device for {device}: {exc}") from None
    return nvml, handle, how


@dataclass
class GpuSamples:
    """What a :class:`NvmlSampler` saw. Byte figures are None when never readable."""

    n: int = 0
    peak_device_bytes: int | None = None
    peak_process_bytes: int | None = None
    process_listed: bool = False  # this pid appeared in the compute-process list
    other_pids: set[int] = field(default_factory=set)
    power: list[tuple[int, int]] = field(default_factory=list)  # (ns, mW)
    energy: list[tuple[int, int]] = field(default_factory=list)  # (ns, mJ) each time the counter changed
    errors: dict[str, str] = field(default_factory=dict)


class NvmlSampler:
    """A background thread reading NVML every ``interval_s`` (10 ms by default).

    Use as a context manager or ``start()``/``stop()``; ``stop()`` takes a last sample
    and returns the :class:`GpuSamples`. ``sample_once()`` is the unit of work.
    """

    def __init__(self, nvml: Any, handle: Any, pid: int | None = None, interval_s: float = 0.01,
                 memory: bool = True, power: bool = False, clock: Any = time.perf_counter_ns,
                 energy: bool = False):
        self.nvml, self.handle = nvml, handle
        self.pid = os.getpid() if pid is None else pid
        self.interval_s, self.memory, self.power, self.clock = interval_s, memory, power, clock
        self.energy = energy
        self.result = GpuSamples()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read(self, what: str, fn: Any, *args: Any) -> Any:
        if what in self.result.errors:
            return None  # failed before: do not retry 100 times a second
        try:
            return fn(self.handle, *args)
        except self.nvml.NVMLError as exc:
            self.result.errors[what] = "not supported" if not_supported(self.nvml, exc) else str(exc)
            return None

    def sample_once(self) -> None:
        r = self.result
        r.n += 1
        if self.memory:
            info = self._read("memory", self.nvml.nvmlDeviceGetMemoryInfo)
            if info is not None:
                r.peak_device_bytes = max(r.peak_device_bytes or 0, int(info.used))
            for proc in self._read("processes", self.nvml.nvmlDeviceGetComputeRunningProcesses) or []:
                if proc.pid != self.pid:
                    r.other_pids.add(int(proc.pid))
                    continue
                r.process_listed = True
                if proc.usedGpuMemory is not None:
                    r.peak_process_bytes = max(r.peak_process_bytes or 0, int(proc.usedGpuMemory))
        if self.power:
            milliwatts = self._read("power", self.nvml.nvmlDeviceGetPowerUsage)
            if milliwatts is not None:
                r.power.append((self.clock(), int(milliwatts)))
        if self.energy:
            millijoules = self._read("energy", self.nvml.nvmlDeviceGetTotalEnergyConsumption)
            if millijoules is not None and (not r.energy or r.energy[-1][1] != int(millijoules)):
                r.energy.append((self.clock(), int(millijoules)))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample_once()
            self._stop.wait(self.interval_s)

    def start(self) -> NvmlSampler:
        self.sample_once()
        self._thread = threading.Thread(target=self._loop, name="nvml-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> GpuSamples:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample_once()
        return self.result

    def __enter__(self) -> NvmlSampler:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
