"""Results rows → one comparable table (pandas), with deltas against the baseline.

Each run is compared with the baseline of its own (suite, model, task) and torch.compile
mode: a compiled int8 run with the compiled baseline, an eager one with the eager baseline.
"""

from __future__ import annotations

from typing import Any

from harness.config import COMPILE_MODES
from harness.result import RunResult
from harness.suite.methods import BASELINE, compiled_name

COLUMNS = [
    "model", "task", "method", "status", "accuracy", "accuracy_stderr", "accuracy_ratio",
    "latency_ms_p50", "latency_ms_p99", "throughput_sps", "speedup", "size_mb", "size_ratio",
    "params", "sparsity", "peak_mem_mb", "energy_j_per_1k", "dynamic_energy_j_per_1k", "co2_g_per_1k",
    "cost_usd_per_1m", "compress_s", "compile", "compile_s", "timing_mode", "holds_accuracy", "ttft_ms",
    "decode_tokens_per_s",
]
# Figures copied from a row's metrics as they are (absent stays empty, never 0).
METRIC_COLUMNS = [
    "accuracy", "accuracy_stderr", "latency_ms_p50", "latency_ms_p99", "throughput_sps",
    "size_mb", "params", "sparsity", "peak_mem_mb", "energy_j_per_1k", "dynamic_energy_j_per_1k",
    "cpu_energy_j_per_1k", "ram_energy_j_per_1k", "gpu_energy_j_per_1k", "co2_g_per_1k",
    "cost_usd_per_1m", "compress_s", "compile_s", "ttft_ms", "decode_tokens_per_s",
    "perplexity", "bits_per_byte", "top1_agreement", "kl_div_mean", "macro_f1", "cosine_mean", "max_abs_diff",
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
    """'clocks' (the GPU's SM clock moved while timing: the more specific cause, first),
    'noisy' (the median never settled within ci_target), 'busy' (timed while the load
    exceeded the cores), or '' — the reasons a latency figure deserves less trust."""
    if result.metrics.get("timing_clocks_moved"):
        return "clocks"
    if result.metrics.get("timing_noisy"):
        return "noisy"
    if "machine busy" in str(result.provenance.get("latency_ms_p50", "")):
        return "busy"
    return ""


def _measure(result: RunResult, key: str, default: str) -> str:
    """A ``[measure]`` setting the run was made with (rows from before it existed: the default)."""
    value = (result.spec.get("measure") or {}).get(key, default)
    return value if isinstance(value, str) else default


def _only_if_used(frame: Any, column: str, default: str) -> None:
    """Blank ``column`` when every row has the default: a suite that never compiles
    shows no compile column."""
    if (frame[column] == default).all():
        frame[column] = None


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
            "gate": result.accuracy_gate, "compile": _measure(result, "compile", "none"),
            "timing_mode": _measure(result, "timing", "per-call"),
        }
        for key in METRIC_COLUMNS:
            value = result.metrics.get(key)
            if hide_estimated and key in estimated:
                value = None
            record[key] = value
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=list(dict.fromkeys(
        ["suite", "model", "task", "method", "status", "run_id", "device", "estimated", "timing_caveat", "error",
         "gate", "compile", "timing_mode"] + METRIC_COLUMNS)))
    for key in METRIC_COLUMNS:
        frame[key] = pd.to_numeric(frame[key], errors="coerce")

    is_base = [m in (BASELINE, compiled_name(BASELINE, c)) for m, c in zip(frame["method"], frame["compile"])]
    base = frame[pd.Series(is_base, index=frame.index, dtype=bool) & (frame["status"] == "ok")]
    base = base.drop_duplicates(["suite", "model", "task", "compile"], keep="last")
    base = base.set_index(["suite", "model", "task", "compile"])
    keys = list(zip(frame["suite"], frame["model"], frame["task"], frame["compile"]))

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
    frame["_mode"] = frame["compile"].map({m: i for i, m in enumerate(COMPILE_MODES)}).fillna(len(COMPILE_MODES))
    frame["_holds"] = frame["holds_accuracy"].fillna(False).astype(bool)
    frame = frame.sort_values(
        ["suite", "model", "task", "_mode", "_ok", "_holds", "speedup", "size_ratio"],
        ascending=[True, True, True, True, False, False, False, False], na_position="last", kind="stable")
    frame["rank"] = frame.groupby(["suite", "model", "task", "compile"]).cumcount() + 1
    frame.loc[~frame["_ok"], "rank"] = None
    _only_if_used(frame, "compile", "none")
    _only_if_used(frame, "timing_mode", "per-call")
    frame = frame.drop(columns=["_ok", "_holds", "_mode", "gate"])
    return frame[COLUMNS + EXTRA_COLUMNS].reset_index(drop=True)
