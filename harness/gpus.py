"""Which GPUs this machine lets runs use, found without initialising CUDA in the driver
(a driver that initialised CUDA could no longer fork warm workers that use it), and which
run has which: one run per GPU.

Each GPU is named as its run's ``CUDA_VISIBLE_DEVICES`` will name it:

- where the driver's ``CUDA_VISIBLE_DEVICES`` is set, its entries as written (indices,
  ``GPU-``/``MIG-`` UUIDs), up to the first that CUDA would stop at (an empty one, or a
  negative index); the run inherits ``CUDA_DEVICE_ORDER`` too, so an index means there
  what it means here;
- else every GPU NVML lists, by UUID (``GPU-…``): exact whatever ``CUDA_DEVICE_ORDER`` is,
  and what :mod:`harness.measure.nvml` maps back to the NVML device the run measures.
"""

from __future__ import annotations

import os
import queue
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from harness.plural import plural


class GpusUnknown(Exception):
    """The GPUs cannot be listed here; the message says why."""


def _visible_entries(value: str) -> list[str]:
    entries = []
    for entry in (e.strip() for e in value.split(",")):
        if not entry or re.fullmatch(r"-\d+", entry):  # CUDA ignores this entry and all after it
            break
        entries.append(entry)
    return entries


def _nvml_uuids() -> list[str]:
    from harness.measure.nvml import NvmlUnavailable, load_nvml

    try:
        pynvml = load_nvml()
    except NvmlUnavailable as exc:
        raise GpusUnknown(str(exc)) from None
    try:
        uuids = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            uuids.append(uuid.decode() if isinstance(uuid, bytes) else str(uuid))
            if _mig_enabled(pynvml, handle):
                raise GpusUnknown(f"GPU {uuids[-1]} is in MIG mode: list its MIG devices in CUDA_VISIBLE_DEVICES")
        return uuids
    except GpusUnknown:
        raise
    except Exception as exc:
        raise GpusUnknown(f"NVML could not list the GPUs: {exc}") from None
    finally:
        with suppress(Exception):
            pynvml.nvmlShutdown()


def _mig_enabled(nvml: object, handle: object) -> bool:
    """Whether the GPU is split into MIG devices (then its UUID alone names none of them)."""
    try:
        return nvml.nvmlDeviceGetMigMode(handle)[0] == 1  # type: ignore[attr-defined]
    except Exception:  # not supported (pre-Ampere, consumer GPUs): no MIG
        return False


def visible_gpus() -> list[str]:
    """The GPUs runs may use, each as a ``CUDA_VISIBLE_DEVICES`` entry (see the module's
    docstring); :class:`GpusUnknown` when they cannot be listed without CUDA."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is not None:
        return _visible_entries(value)
    return _nvml_uuids()


def placement(device: str, jobs: int) -> tuple[list[str | None], str]:
    """(one GPU per slot of runs at a time, a note for the user or "") for runs on
    ``device`` with ``--jobs jobs``.

    ``cuda`` spreads runs over the visible GPUs, one run per GPU, so at most as many run at
    once as there are GPUs (the others queue); ``cuda:N`` names one GPU, so its runs take
    turns on it; a CPU device, or GPUs that cannot be listed, leave runs as they are
    (``None``: the run sees what the driver sees), ``jobs`` at a time.
    """
    if not device.startswith("cuda"):
        return [None] * jobs, ""
    if device != "cuda":  # cuda:N: the run must see the same GPUs for N to name the same one
        note = f"device {device} names one GPU: runs take turns on it (device = 'cuda' spreads them)"
        return [None], note if jobs > 1 else ""
    try:
        gpus = visible_gpus()
    except GpusUnknown as exc:
        return [None] * jobs, f"cannot list the GPUs ({exc}): every run uses the default GPU"
    if not gpus:
        return [None] * jobs, "no GPU is visible (CUDA_VISIBLE_DEVICES lists none): CUDA runs will fail"
    note = f"--jobs {jobs} but {plural(len(gpus), 'GPU')}: {plural(len(gpus), 'run')} at a time, one per GPU" \
        if jobs > len(gpus) else ""
    return gpus[:jobs], note


class GpuPool:
    """Hands each run a slot of :func:`placement` no other run holds meanwhile."""

    def __init__(self, slots: list[str | None]):
        self.free: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        for slot in slots:
            self.free.put(slot)

    @contextmanager
    def take(self) -> Iterator[str | None]:
        slot = self.free.get()  # never waits long: no more runs at once than slots
        try:
            yield slot
        finally:
            self.free.put(slot)
