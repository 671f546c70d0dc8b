"""Everything measured about a compressed model after its accuracy: size, latency and
throughput per batch size, sustained throughput with its energy, CO2e and cost, memory,
and its place on the machine's roofline (:mod:`harness.measure.roofline`).

Every figure comes with its provenance (see :mod:`harness.measure.figures`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from typing import Any

from harness.config import MeasureConfig
from harness.machine import usable_cores
from harness.measure import memory, model_stats
from harness.measure.clocks import ClockWatch
from harness.measure.energy import EnergyContext, EnergyMeter, EnergyReading, window_figures
from harness.measure.figures import Figures
from harness.measure.gpu_memory import GpuMemoryWatch, peak_mem_figure
from harness.measure.latency import time_forward
from harness.measure.roofline import roofline_figures
from harness.measure.shared_timing import SharedTiming

DEFAULT_SUSTAINED_S = 3.0  # with energy on; see MeasureConfig.sustained_s


def fingerprint(example: Any) -> str:
    """A short SHA-256 of an input batch: equal across methods iff the inputs are."""
    digest = hashlib.sha256()

    def feed(x: Any) -> None:
        if isinstance(x, dict):
            for key in sorted(x):
                digest.update(str(key).encode())
                feed(x[key])
        elif isinstance(x, (list, tuple)):
            for item in x:
                feed(item)
        elif hasattr(x, "detach") and not getattr(x, "is_quantized", False):
            import torch

            digest.update(str((tuple(x.shape), x.dtype)).encode())
            digest.update(x.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        else:
            digest.update(repr(x).encode())

    feed(example)
    return digest.hexdigest()[:16]


def sustained_window(model: Any, example: Any, seconds: float, device: str,
                     meter: EnergyMeter | None) -> tuple[int, float, EnergyReading | None]:
    """(calls, seconds, energy) of back-to-back ``model(example)`` for ``seconds``; on
    CUDA the device is synchronized at both ends and not in between."""
    import torch

    cuda = device.startswith("cuda")
    with torch.inference_mode():
        if meter is not None:
            meter.start()
        elif cuda:
            torch.cuda.synchronize(device)
        t0 = time.perf_counter_ns()
        deadline = t0 + int(seconds * 1e9)
        calls = 0
        while True:
            model(example)
            calls += 1
            if time.perf_counter_ns() >= deadline:
                break
        if meter is not None:
            reading = meter.stop()  # synchronizes first
            return calls, reading.seconds, reading
        if cuda:
            torch.cuda.synchronize(device)
        return calls, (time.perf_counter_ns() - t0) / 1e9, None


POLICY_KEYS = ("warmup_s", "min_time_s", "min_iterations", "max_time_s", "ci_target")
ENERGY_KEYS = ("energy_j_per_1k", "dynamic_energy_j_per_1k", "cpu_energy_j_per_1k", "ram_energy_j_per_1k",
               "gpu_energy_j_per_1k", "co2_g_per_1k")


TIMED_KEYS = ("latency", "latency_ms_p50", "latency_ms_p99", "throughput_sps", "timing_noisy",
              "timing_clocks_moved", "sustained_throughput_sps", "cost_usd_per_1m") + ENERGY_KEYS


def measure_model(model: Any, task: Any, config: MeasureConfig, device: str,
                  meter: EnergyMeter | None = None, energy: EnergyContext | None = None,
                  shared: SharedTiming | None = None) -> Figures:
    """Size, latency, throughput, energy, cost and memory of ``model``; ``config`` is the
    suite's ``[measure]`` table (one compile mode) and ``meter`` the run's energy meter
    (None: energy absent). With ``shared``, the timed figures of another run on the same
    compressed model and inputs are reused, or this run's are kept for the next."""
    f = model_stats.static_figures(model)
    batch_sizes = sorted(config.batch_sizes)
    key = ""
    if shared is not None:
        import torch

        key = shared.key(config, {str(b): fingerprint(task.example_input(b)) for b in batch_sizes}
                         | {"threads": str(torch.get_num_threads()), "device": device})
        found = shared.load(key)
        if found is not None:
            f.update(found)
            return f
    timed_figures = _timed(model, task, config, device, batch_sizes, meter, energy)
    if shared is not None:
        shared.save(key, timed_figures)
    f.update(timed_figures)
    return f


def _timed(model: Any, task: Any, config: MeasureConfig, device: str, batch_sizes: list[int],
           meter: EnergyMeter | None, energy: EnergyContext | None) -> Figures:
    """The figures of timing ``model``: latency, throughput, energy, cost, memory, compile."""
    f = Figures()
    timed, compile_note = compiled_model(f, model, task, batch_sizes, config, device)
    gpu = GpuMemoryWatch(device)
    gpu.start()  # with only the model resident: inputs come next
    examples = {b: task.example_input(b) for b in batch_sizes}
    rss_reset = memory.reset_peak_rss()
    load = _load_average()
    cores = usable_cores()
    if timed is not None:
        clocks = ClockWatch.open(device, config.clock_tolerance)
        watch = clocks if isinstance(clocks, ClockWatch) else None
        ok = [b for b in batch_sizes if b not in compile_note.failed_batches]  # all of them, eager
        latency = {str(b): time_forward(timed, examples[b], config, device, watch) for b in ok}
        for b in ok:
            latency[str(b)]["throughput_sps"] = b / (latency[str(b)]["median_ms"] / 1e3)
            if b in compile_note.seconds:
                latency[str(b)]["compile_s"] = compile_note.seconds[b]
        load = max(load, _load_average())
        busy = f"; machine busy (load average {load:.1f} on {cores} cores): calls may wait for a CPU" \
            if load > cores else ""
        f.update(latency_figures(latency, busy, compile_note.how if compile_note.model is not None else ""))
        f.update(clock_figures(latency, clocks if isinstance(clocks, str) else ""))
        energy = dataclasses.replace(energy or EnergyContext(), busy=busy)
        sps, basis = sustained_figures(f, timed, examples[ok[-1]], ok[-1], config, device, meter, energy)
        cost_figure(f, config, sps, basis)
        missing_batch_figures(f, compile_note.failed_batches, batch_sizes)
    else:
        for name in TIMED_KEYS:
            f.absent(name, compile_note.failed)
    f.update(gpu.stop())
    memory_figures(f, device, rss_reset)
    f.update(roofline_figures(model, examples, f.metrics.get("latency"), device, config.compile_modes[0],
                              f.provenance["latency"].removeprefix("absent: ")))  # after timing: it may probe
    f.measured("timing", timing_settings(config, batch_sizes, load, cores, load > cores, examples),
               "settings in force while timing; input_sha256 is equal across methods iff the inputs are")
    return f


def missing_batch_figures(f: Figures, failed: dict[int, str], batch_sizes: list[int]) -> None:
    """Headline figures of a batch size that did not compile are absent, with why — never
    taken from another batch size than the baseline's."""
    if batch_sizes[0] in failed:
        for key in ("latency_ms_p50", "latency_ms_p99"):
            f.absent(key, failed[batch_sizes[0]])
    if batch_sizes[-1] in failed:
        for key in ("throughput_sps", "sustained_throughput_sps", "cost_usd_per_1m") + ENERGY_KEYS:
            f.absent(key, failed[batch_sizes[-1]])


def compiled_model(f: Figures, model: Any, task: Any, batch_sizes: list[int], config: MeasureConfig,
                   device: str) -> tuple[Any, Any]:
    """(what to time: the model, its compiled form, or None when compilation failed;
    the :class:`Compiled` record), with ``compile_s`` added to ``f``. Compiles on inputs
    of its own, dropped before the memory watch starts."""
    from harness.measure.compiled import Compiled, compile_for_timing

    mode = config.compile_modes[0]
    if mode == "none":
        f.absent("compile_s", "measure.compile = 'none': timed eager")
        return model, Compiled(model)
    done = compile_for_timing(model, {b: task.example_input(b) for b in batch_sizes}, mode, device)
    if done.model is None:
        f.absent("compile_s", done.failed)
        return None, done
    f.measured("compile_s", sum(done.seconds.values()),
               f"{done.how}; the first call at each batch size ({', '.join(map(str, sorted(done.seconds)))}), "
               "device synchronized; not in any latency or throughput figure")
    return done.model, done


def cost_figure(f: Figures, config: MeasureConfig, sps: float, basis: str) -> None:
    if config.price_per_hour <= 0:
        f.absent("cost_usd_per_1m", "measure.price_per_hour is 0: set the hardware's USD per hour for a cost")
    else:
        f.measured("cost_usd_per_1m", config.price_per_hour / 3600 * 1e6 / sps,
                   f"measure.price_per_hour {config.price_per_hour} USD/h × time per inference at {basis}")


def clock_figures(latency: dict[str, dict[str, Any]], absent: str) -> Figures:
    """``timing_clocks_moved``: whether the GPU's SM clock moved during a timing window."""
    f = Figures()
    if absent:
        f.absent("timing_clocks_moved", absent)
        return f
    unread = [b for b, s in latency.items() if None in s["clocks"]["sm_clock_mhz"] and not s["clocks"]["moved"]]
    if unread:  # an unread clock is not a steady one
        f.absent("timing_clocks_moved", f"NVML could not read the SM clock around the timing of batch {', '.join(unread)}")
        return f
    moved = [b for b, s in latency.items() if s["clocks"]["moved"]]
    edges = "; ".join(f"batch {b}: {s['clocks']['sm_clock_mhz'][0]}→{s['clocks']['sm_clock_mhz'][1]} MHz"
                      for b, s in latency.items())
    f.measured("timing_clocks_moved", bool(moved),
               f"NVML SM clock at the start and end of each timing window ({edges}) and thermal violation "
               f"time; moved at batch: {', '.join(moved) or 'none'}")
    return f


def sustained_seconds(config: MeasureConfig) -> float:
    """The sustained window: ``sustained_s``, or 3 s with energy on, else ``min_time_s``."""
    if config.sustained_s is not None:
        return config.sustained_s
    return DEFAULT_SUSTAINED_S if config.energy else config.min_time_s


def latency_figures(latency: dict[str, dict[str, Any]], busy: str, compiled: str = "") -> Figures:
    """Headline latency and throughput from per-batch-size timings (smallest batch for
    latency, largest for throughput)."""
    f = Figures()
    smallest, largest = min(latency, key=int), max(latency, key=int)
    per = "one call per sample" if latency[smallest].get("timing", "per-call") == "per-call" else \
        "back-to-back: a block of calls per sample (calls_per_sample), synchronized at its ends"
    how = f"{latency[smallest]['clock']}, {per}, inference_mode{busy}" + (f"; {compiled}" if compiled else "")
    f.measured("latency", latency, f"{how}; per batch size, until the median's 95% CI is within ci_target")
    f.measured("latency_ms_p50", latency[smallest]["p50_ms"], f"{how}; median at batch {smallest}")
    f.measured("latency_ms_p99", latency[smallest]["p99_ms"], f"{how}; 99th percentile at batch {smallest}")
    f.measured("throughput_sps", latency[largest]["throughput_sps"],
               f"batch {largest} / median latency at batch {largest}")
    noisy = [b for b, s in latency.items() if s["noisy"]]
    f.measured("timing_noisy", bool(noisy), "a batch size's timing missed ci_target or never settled: "
               + (", ".join(noisy) if noisy else "none"))
    return f


def sustained_figures(f: Figures, model: Any, example: Any, batch_size: int, config: MeasureConfig,
                      device: str, meter: EnergyMeter | None, energy: EnergyContext) -> tuple[float, str]:
    """Add the sustained window's throughput and energy to ``f``; return (samples/s, what
    it is based on) for the cost figure."""
    seconds = sustained_seconds(config)
    if seconds <= 0:
        f.absent("sustained_throughput_sps", "measure.sustained_s = 0")
        for key in ENERGY_KEYS:
            f.absent(key, "measure.sustained_s = 0: no sustained window to measure energy over")
        return f.metrics["throughput_sps"], f"the median latency at batch {batch_size}"
    calls, elapsed, reading = sustained_window(model, example, seconds, device, meter if config.energy else None)
    sps = calls * batch_size / elapsed
    f.measured("sustained_throughput_sps", sps, f"{calls} back-to-back calls at batch {batch_size} over "
                                                f"{elapsed:.2f} s (synchronized at both ends)")
    if reading is not None:
        f.update(window_figures(reading, calls * batch_size, batch_size, energy))
    else:
        for key in ENERGY_KEYS:
            f.absent(key, "measure.energy = false" if not config.energy else "no energy meter was given")
    return sps, f"the sustained throughput at batch {batch_size}"


def memory_figures(f: Figures, device: str, rss_reset: bool) -> None:
    """Add peak RSS, and the headline ``peak_mem_mb`` (GPU memory on CUDA, from the GPU
    figures already in ``f``; process RSS on CPU)."""
    peak_rss, rss_how = memory.peak_rss_figure(rss_reset)  # above the run's start: warm and cold agree
    f.measured("peak_rss_mb", peak_rss, rss_how)
    if device.startswith("cuda"):
        peak_mem_figure(f)
    else:
        f.measured("peak_mem_mb", peak_rss, f"{rss_how} (CPU run: process RSS)")


def timing_settings(config: MeasureConfig, batch_sizes: list[int], load: float, cores: int, busy: bool,
                    examples: dict[int, Any]) -> dict[str, Any]:
    import torch

    return {
        "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
        "inference_mode": True, "gc": "disabled while timing", "batch_sizes": batch_sizes,
        "policy": {k: getattr(config, k) for k in POLICY_KEYS},
        "compile": config.compile_modes[0], "timing": config.timing,
        "sustained_s": sustained_seconds(config),
        "load_average": round(load, 2), "cores": cores, "machine_busy": busy,
        "input_sha256": {str(b): fingerprint(x) for b, x in examples.items()},
    }


def _load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0
