"""Results rows → one comparable table (pandas), with deltas against the baseline."""

from __future__ import annotations

from harness.result import RunResult

COLUMNS = [
    "model", "task", "method", "status", "accuracy", "accuracy_stderr", "accuracy_ratio",
    "latency_ms_p50", "latency_ms_p99", "throughput_sps", "speedup", "size_mb", "size_ratio",
    "params", "sparsity", "peak_mem_mb", "energy_j_per_1k", "dynamic_energy_j_per_1k", "co2_g_per_1k",
    "cost_usd_per_1m", "compress_s", "holds_accuracy", "ttft_ms", "decode_tokens_per_s",
]
# Figures copied from a row's metrics as they are (absent stays empty, never 0).
METRIC_COLUMNS = [
    "accuracy", "accuracy_stderr", "latency_ms_p50", "latency_ms_p99", "throughput_sps",
    "size_mb", "params", "sparsity", "peak_mem_mb", "energy_j_per_1k", "dynamic_energy_j_per_1k",
    "cpu_energy_j_per_1k", "ram_energy_j_per_1k", "gpu_energy_j_per_1k", "co2_g_per_1k",
    "cost_usd_per_1m", "compress_s", "ttft_ms", "decode_tokens_per_s",
    "perplexity", "bits_per_byte", "top1_agreement", "kl_div_mean",
    "compress_energy_j", "sustained_throughput_sps",
]
# After COLUMNS in the frame: the other figures, then bookkeeping.
EXTRA_COLUMNS = [c for c in METRIC_COLUMNS if c not in COLUMNS] + [
    "break_even_inferences", "rank", "accuracy_delta", "estimated", "timing_caveat", "error",
    "run_id", "suite", "device",
]


def latest(results: list[RunResult]) -> list[RunResult]:
    """The last result per (suite, model, task, method), in first-seen order."""
    last: dict[tuple, RunResult] = {}
    for result in results:
        last[(result.suite, result.model, result.task, result.method)] = result
    return list(last.values())


def _estimated(result: RunResult) -> list[str]:
    return sorted(k for k, v in result.provenance.items() if str(v).startswith("estimated"))


def _timing_caveat(result: RunResult) -> str:
    """'noisy' (the median never settled within ci_target), 'busy' (timed while the load
    exceeded the cores), or '' — the two reasons a latency figure deserves less trust."""
    if result.metrics.get("timing_noisy"):
        return "noisy"
    if "machine busy" in str(result.provenance.get("latency_ms_p50", "")):
        return "busy"
    return ""


def build_frame(results: list[RunResult], hide_estimated: bool = False):
    """The leaderboard as a DataFrame with :data:`COLUMNS` (plus rank and extras)."""
    import pandas as pd

    records = []
    for result in latest(results):
        estimated = _estimated(result)
        record = {
            "suite": result.suite, "model": result.model, "task": result.task,
            "method": result.method, "status": result.status, "run_id": result.run_id,
            "device": result.device, "estimated": ",".join(estimated),
            "timing_caveat": _timing_caveat(result), "error": result.first_error_line,
            "gate": result.accuracy_gate,
        }
        for key in METRIC_COLUMNS:
            value = result.metrics.get(key)
            if hide_estimated and key in estimated:
                value = None
            record[key] = value
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=list(dict.fromkeys(
        ["suite", "model", "task", "method", "status", "run_id", "device", "estimated", "timing_caveat", "error", "gate"] + METRIC_COLUMNS)))
    for key in METRIC_COLUMNS:
        frame[key] = pd.to_numeric(frame[key], errors="coerce")

    base = frame[(frame["method"] == "baseline") & (frame["status"] == "ok")]
    base = base.set_index(["suite", "model", "task"])
    keys = list(zip(frame["suite"], frame["model"], frame["task"]))

    def from_base(column: str):
        return pd.Series([base[column].get(k) if k in base.index else None for k in keys],
                         index=frame.index, dtype="float64")

    frame["accuracy_ratio"] = frame["accuracy"] / from_base("accuracy")
    frame["accuracy_delta"] = frame["accuracy"] - from_base("accuracy")
    frame["speedup"] = frame["throughput_sps"] / from_base("throughput_sps")
    frame["size_ratio"] = from_base("size_mb") / frame["size_mb"]
    from harness.measure.energy import break_even_inferences

    frame["break_even_inferences"] = pd.Series(
        [break_even_inferences(c, b, m) for c, b, m in
         zip(frame["compress_energy_j"], from_base("energy_j_per_1k"), frame["energy_j_per_1k"])],
        index=frame.index, dtype="float64")
    holds = frame["accuracy_ratio"] >= frame["gate"]
    frame["holds_accuracy"] = holds.where(frame["accuracy_ratio"].notna(), None).astype("object")

    ok = frame["status"] == "ok"
    frame["_ok"] = ok
    frame["_holds"] = frame["holds_accuracy"].fillna(False).astype(bool)
    frame = frame.sort_values(
        ["suite", "model", "task", "_ok", "_holds", "speedup", "size_ratio"],
        ascending=[True, True, True, False, False, False, False], na_position="last", kind="stable")
    frame["rank"] = frame.groupby(["suite", "model", "task"]).cumcount() + 1
    frame.loc[~frame["_ok"], "rank"] = None
    frame = frame.drop(columns=["_ok", "_holds", "gate"])
    return frame[COLUMNS + EXTRA_COLUMNS].reset_index(drop=True)
