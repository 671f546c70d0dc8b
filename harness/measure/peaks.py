"""The machine's peaks: the fastest matrix multiply per dtype and the fastest memory
traffic this process reaches, measured once per machine and cached.

A peak here is *achievable*, not the datasheet's: short probes through torch itself
(``torch.mm`` per float dtype, ``torch._int_mm`` for int8; a sum and a copy of a buffer
eight times the last-level cache), with the threads the run times with. On CUDA the
device properties are kept beside them, with the DRAM bandwidth they imply. Each probe
lasts well under a second; the whole set is cached under ``$HARNESS_CACHE/peaks``, keyed
by host, CPU model, torch threads, device (and GPU, and float32 matmul precision) and
torch version, so only a machine's first run pays for it — after its timing, never
during it (:func:`machine_peaks` is called once the timed figures are taken).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from harness.machine import usable_cores
from harness.process import exclusive

DTYPES = ("float32", "bfloat16", "float16", "int8")
OVERHEAD_SHARE = 0.10  # below 10 % of its roofline, > 90 % of a call is time no peak explains
PROBE_S = 0.05  # timing windows per matrix size
WINDOW_S = 0.01  # calls per window: enough that the timer and the launch gaps vanish
SIZES = {"cpu": (128, 256, 512, 1024), "cuda": (1024, 2048, 4096, 8192)}
MiB = 2**20
BUFFER_BYTES = (256 * MiB, 1024 * MiB)  # the memory probe's buffer: 8 × the last-level cache, within these


@dataclass
class Peaks:
    """Peak rates of one machine. ``flops``: dtype → FLOP/s; ``bytes_per_s``: memory
    bytes per second (None: the probe failed, ``notes['memory']`` says why)."""

    key: dict[str, Any]
    flops: dict[str, float] = field(default_factory=dict)
    bytes_per_s: float | None = None
    notes: dict[str, str] = field(default_factory=dict)  # what each probe did, or why it has no figure
    cache_bytes: int | None = None  # the last-level cache the working set is compared with
    device_properties: dict[str, Any] = field(default_factory=dict)
    probe_s: float = 0.0  # how long the probes took, once
    load_average: float | None = None  # while probing: the higher of its start and end
    busy: bool = False  # load above the usable cores while probing: peaks may be low
    cached: str = ""  # where it was read from; '' when probed in this process

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Peaks:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def for_mix(self, flops_by_dtype: dict[str, int]) -> tuple[float | None, str]:
        """(the FLOP/s a mix of dtypes could reach: its FLOPs over the time each dtype's
        share takes at that dtype's peak, how); a dtype without a peak (float8; int8 where
        torch has no int8 GEMM) counts at the float32 peak, and says so."""
        total, seconds, parts = sum(flops_by_dtype.values()), 0.0, []
        for dtype, flops in sorted(flops_by_dtype.items(), key=lambda kv: -kv[1]):
            rate, note = self.flops.get(dtype), self.notes.get(dtype, "not probed")
            if not rate:
                if not self.flops.get("float32"):
                    return None, f"no {dtype} or float32 GEMM peak on this machine ({note})"
                rate, note = self.flops["float32"], f"no {dtype} peak ({note}): the float32 peak is used"
            seconds += flops / rate
            parts.append(f"{dtype}: {flops / total:.0%} of the FLOPs, peak {rate / 1e9:,.1f} GFLOP/s ({note})")
        return total / seconds, "; ".join(parts)


    def beyond(self, achieved: float, attainable: float, how: str, runtime: bool) -> str:
        """Why a run that reached ``achieved`` FLOP/s, above the ``attainable`` its peaks
        allow, has no share of that roofline (``runtime``: another runtime ran it)."""
        int8 = self.flops.get("int8")
        lower = f" (int8's probed peak here: {int8 / 1e9:,.4g} GFLOP/s)" if int8 else ""
        why = (f"the FLOPs are counted on the torch model it was exported from, in its dtypes, while this runtime ran "
               f"them in lower precision{lower} or with faster kernels than torch's GEMM" if runtime
               else "the kernels that ran beat the probe's GEMM")
        return (f"the {achieved / 1e9:,.3g} GFLOP/s reached are above the {attainable / 1e9:,.3g} GFLOP/s the probed "
                f"peaks allow ({how}): {why}, so no share of that roof is given")


def place(flops: int, nbytes: int, seconds: float, by_dtype: dict[str, int], peaks: Any) -> dict[str, Any]:
    """One call on the roofline: intensity, the attainable FLOP/s, the share reached and
    the bound (only what the peaks allow: without them, or a memory or GEMM peak, ``why``)."""
    row: dict[str, Any] = {"flops": flops, "bytes": nbytes, "seconds": seconds, "flops_by_dtype": dict(by_dtype),
                           "intensity": flops / nbytes}
    peak, row["peak_how"] = peaks.for_mix(by_dtype) if flops and peaks else (None, "no FLOPs or no peaks")
    if peak is None or not peaks.bytes_per_s:
        row["why"] = row["peak_how"] if peak is None else peaks.notes.get("memory", "no memory peak")
        return row
    attainable = min(peak, row["intensity"] * peaks.bytes_per_s)
    row.update(peak_gflop_per_s=peak / 1e9, ridge=peak / peaks.bytes_per_s, attainable_gflop_per_s=attainable / 1e9,
               share=flops / seconds / attainable)
    row["bound"] = "overhead" if row["share"] < OVERHEAD_SHARE else \
        "compute" if row["intensity"] >= row["ridge"] else "memory"
    return row


def machine_key(device: str) -> dict[str, Any]:
    """What the peaks depend on."""
    import torch

    from harness.measure.environment import cpu_model

    key = {"host": platform.node(), "cpu": cpu_model(), "threads": torch.get_num_threads(),
           "device": device, "torch": torch.__version__}
    if device.startswith("cuda"):
        key["gpu"] = torch.cuda.get_device_name(torch.device(device))
        key["float32_matmul_precision"] = torch.get_float32_matmul_precision()
    return key


def cache_path(key: dict[str, Any]) -> Path:
    """Where ``key``'s peaks are kept: under ``harness.toolkit.cache_dir()`` (spelled out:
    the toolkit imports the worker, which imports this)."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "harness")) / "peaks" / f"{digest}.json"


def machine_peaks(device: str) -> Peaks:
    """This machine's peaks: from the cache, or probed now and cached. A probe made on a
    busy machine is kept until a run finds the machine quiet, which probes again.
    Concurrent runs probe once: the others wait on a lock and read the cache."""
    key = machine_key(device)
    path = cache_path(key)
    with exclusive(path):
        try:
            found = Peaks.from_dict(json.loads(path.read_text()))
            if found.key == key and not (found.busy and not _busy(_load())):
                found.cached = str(path)
                return found
        except (OSError, ValueError, TypeError):
            pass
        peaks = probe(device, key)
        if "float32" not in peaks.flops or not peaks.bytes_per_s:  # failed (out of memory?): not for good
            return peaks
        with contextlib.suppress(OSError):  # an unwritable cache costs a probe per run, nothing else
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(peaks.to_dict(), indent=1))
            os.replace(tmp, path)
    return peaks


def probe(device: str, key: dict[str, Any]) -> Peaks:
    """Measure the peaks now (each probe well under a second)."""
    import torch

    started = time.perf_counter()
    cuda = device.startswith("cuda")
    sync = (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None)
    peaks = Peaks(key, load_average=_load())
    if cuda:
        peaks.device_properties = device_properties(device)
        peaks.cache_bytes = peaks.device_properties.get("L2_cache_size") or None
    else:
        peaks.cache_bytes = last_level_cache()
    for dtype in DTYPES:
        try:
            rate, note = gemm_rate(dtype, device, sync)
            peaks.flops[dtype] = rate
            peaks.notes[dtype] = note
        except Exception as exc:  # no kernel for this dtype here: no peak, and why
            peaks.notes[dtype] = f"no {dtype} GEMM probe: {type(exc).__name__}: {exc}"[:200]
    try:
        peaks.bytes_per_s, peaks.notes["memory"] = memory_rate(device, sync, peaks.cache_bytes)
    except Exception as exc:
        peaks.notes["memory"] = f"no memory probe: {type(exc).__name__}: {exc}"[:200]
    peaks.probe_s = round(time.perf_counter() - started, 3)
    peaks.load_average = max((x for x in (peaks.load_average, _load()) if x is not None), default=None)
    peaks.busy = _busy(peaks.load_average)
    return peaks


def best_seconds(fn: Callable[[], Any], sync: Callable[[], None], budget_s: float | None = None) -> float:
    """The best seconds per call over windows of back-to-back calls within ``budget_s``
    (default :data:`PROBE_S`; at least three windows), after a warm-up call."""
    fn()
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    once = time.perf_counter() - t0
    calls = max(1, int(WINDOW_S / max(once, 1e-9)))
    best, windows, deadline = once, 0, time.perf_counter() + (budget_s or PROBE_S)
    while windows < 3 or time.perf_counter() < deadline:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        best = min(best, (time.perf_counter() - t0) / calls)
        windows += 1
    return best


def gemm_rate(dtype: str, device: str, sync: Callable[[], None]) -> tuple[float, str]:
    """(the best FLOP/s of an n×n by n×n product in ``dtype``, how): n grows through
    :data:`SIZES` while the next size would still fit the budget (a slow path, such as
    float16 on most CPUs, stops early instead of taking seconds)."""
    import torch

    sizes = SIZES["cuda" if device.startswith("cuda") else "cpu"]
    best, at = 0.0, 0
    for n in sizes:
        if dtype == "int8":  # the int8 GEMM torch has on CPU and CUDA
            a, b = (torch.randint(-128, 128, (n, n), dtype=torch.int8, device=device) for _ in range(2))
            fn = partial(torch._int_mm, a, b)
        else:
            a, b = (torch.randn(n, n, device=device, dtype=getattr(torch, dtype)) for _ in range(2))
            fn = partial(torch.mm, a, b)
        seconds = best_seconds(fn, sync)
        if 2 * n**3 / seconds > best:
            best, at = 2 * n**3 / seconds, n
        if seconds * 8 > PROBE_S:  # a call of the next size (8× the work) would not fit the budget
            break
    op = "torch._int_mm" if dtype == "int8" else "torch.mm"
    return best, f"{op} {dtype}, best of square sizes up to {n} (peak at {at}×{at}×{at})"


def memory_rate(device: str, sync: Callable[[], None], cache_bytes: int | None) -> tuple[float, str]:
    """(the best bytes/s of reading a buffer (``sum``) or copying half of it onto the
    other half (read + write), how). The buffer is 8 × the last-level cache (at least
    256 MiB, at most 1 GiB), so neither fits in it."""
    import torch

    size = min(max(8 * (cache_bytes or 0), BUFFER_BYTES[0]), BUFFER_BYTES[1])
    buffer = torch.ones(size // 4, dtype=torch.float32, device=device)
    half = buffer.numel() // 2
    read = best_seconds(lambda: buffer.sum(), sync)
    copy = best_seconds(lambda: buffer[half:].copy_(buffer[:half]), sync)
    rates = {"read (sum)": size / read, "copy (read + write)": 2 * half * 4 / copy}
    best = max(rates, key=rates.get)
    return rates[best], (f"{best} of a {size // MiB} MiB buffer: "
                         + ", ".join(f"{k} {v / 1e9:.1f} GB/s" for k, v in rates.items()))


def device_properties(device: str) -> dict[str, Any]:
    """The CUDA device's properties (``torch.cuda.get_device_properties``), with the DRAM
    bandwidth they imply (double data rate × memory clock × bus width), where given."""
    import torch

    props = torch.cuda.get_device_properties(torch.device(device))
    names = ("name", "major", "minor", "multi_processor_count", "total_memory", "L2_cache_size", "clock_rate",
             "memory_clock_rate", "memory_bus_width")
    out = {n: getattr(props, n) for n in names if getattr(props, n, None) is not None}
    if out.get("memory_clock_rate") and out.get("memory_bus_width"):  # kHz and bits
        out["dram_bytes_per_s"] = 2 * out["memory_clock_rate"] * 1e3 * out["memory_bus_width"] / 8
    return out


def last_level_cache() -> int | None:
    """Bytes of the CPU's largest cache (Linux sysfs), or None."""
    sizes = []
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        with contextlib.suppress(OSError, ValueError):
            text = (index / "size").read_text().strip()
            scale = {"K": 2**10, "M": MiB, "G": 2**30}.get(text[-1:], 1)
            sizes.append(int(text.rstrip("KMG")) * scale)
    return max(sizes) if sizes else None


def _busy(load: float | None) -> bool:
    return load is not None and load > usable_cores()


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None
