"""Everything measured about a compressed model after its accuracy: size, sparsity,
latency and throughput per batch size, and memory."""

from __future__ import annotations

from typing import Any

from harness.measure import memory, model_stats
from harness.measure.latency import TimingPolicy, time_forward


def measure_model(model: Any, task: Any, measure: dict[str, Any], device: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(metrics, provenance) for ``model``; ``measure`` is the suite's [measure] table."""
    metrics: dict[str, Any] = {}
    metrics["size_bytes"] = model_stats.serialized_size_bytes(model)
    metrics["size_mb"] = metrics["size_bytes"] / 1e6
    metrics["params"] = model_stats.count_params(model)
    sparsity = model_stats.weight_sparsity(model)
    if sparsity is not None:
        metrics["sparsity"] = sparsity
    provenance = {k: "measured" for k in metrics}

    m = measure
    policy = TimingPolicy(m["warmup_s"], m["min_time_s"], m["min_iterations"], m["max_time_s"], m["ci_target"])
    rss_reset = memory.reset_peak_rss()
    latency = {}
    for batch_size in m["batch_sizes"]:
        example = task.example_input(batch_size)
        stats = time_forward(model, example, policy, device)
        stats["throughput_sps"] = batch_size / (stats["median_ms"] / 1e3)
        latency[str(batch_size)] = stats
    metrics["latency"] = latency
    smallest, largest = str(min(m["batch_sizes"])), str(max(m["batch_sizes"]))
    metrics["latency_ms_p50"] = latency[smallest]["p50_ms"]
    metrics["latency_ms_p99"] = latency[smallest]["p99_ms"]
    metrics["throughput_sps"] = latency[largest]["throughput_sps"]
    for key in ("latency", "latency_ms_p50", "latency_ms_p99", "throughput_sps"):
        provenance[key] = "measured"
    metrics["peak_rss_mb"] = memory.peak_rss_bytes() / 1e6
    provenance["peak_rss_mb"] = "measured" + ("" if rss_reset else " (whole process, peak could not be reset)")
    if not device.startswith("cuda"):
        metrics["peak_mem_mb"] = metrics["peak_rss_mb"]
        provenance["peak_mem_mb"] = "measured (process RSS during timing, CPU run)"
    return metrics, provenance
