"""Results rows → one comparable table (pandas), with deltas against the baseline.

Each run is compared with the baseline of its own (suite, model, task), runtime and
torch.compile mode: a compiled int8 run with the compiled baseline, an ONNX Runtime one
with ONNX Runtime's baseline, an eager one with the eager baseline; compiled and other
runtimes' rows also get their speed against the torch eager baseline (``speedup_vs_eager``). Quality is judged on
the task's primary metric, in its own direction, by a paired verdict (:mod:`harness.verdict`).
"""

from __future__ import annotations

from typing import Any

from harness.config import COMPILE_MODES
from harness.result import RunResult
from harness.spec import BASELINE, variant_name

COLUMNS = [
    "model", "task", "method", "status", "accuracy", "accuracy_stderr", "accuracy_ratio",
    "latency_ms_p50", "latency_ms_p99", "throughput_sps", "speedup", "size_mb", "size_ratio",
    "params", "sparsity", "peak_mem_mb", "energy_j_per_1k", "dynamic_energy_j_per_1k", "co2_g_per_1k",
    "cost_usd_per_1m", "compress_s", "compile", "compile_s", "timing_mode", "holds", "ttft_ms",
    "decode_tokens_per_s", "quality_metric", "quality", "retained", "retained_lo", "retained_hi", "p_value",
    "samples_needed", "verdict", "speedup_vs_eager", "runtime", "runtime_prepare_s", "load_s", "first_call_ms",
]
# Figures copied from a row's metrics as they are (absent stays empty, never 0).
METRIC_COLUMNS = [
    "accuracy", "accuracy_stderr", "latency_ms_p50", "latency_ms_p99", "throughput_sps",
    "size_mb", "params", "sparsity", "peak_mem_mb", "energy_j_per_1k", "dynamic_energy_j_per_1k",
    "cpu_energy_j_per_1k", "ram_energy_j_per_1k", "gpu_energy_j_per_1k", "co2_g_per_1k",
    "cost_usd_per_1m", "compress_s", "compile_s", "ttft_ms", "decode_tokens_per_s",
    "perplexity", "bits_per_byte", "top1_agreement", "kl_div_mean", "macro_f1", "cosine_mean", "max_abs_diff",
    "compress_energy_j", "sustained_throughput_sps", "embedding_sparsity", "untrained_weights",
    "runtime_prepare_s", "export_s", "load_s", "first_call_ms",
    "flops", "bytes_moved", "gflop_per_s", "gb_per_s", "arithmetic_intensity", "peak_gflop_per_s", "peak_gb_per_s",
    "roofline_share",
]
TEXT_METRIC_COLUMNS = ["bound", "kernels"]  # figures that are words: copied as they are, never made numbers
# After COLUMNS in the frame: the other figures, then bookkeeping.
EXTRA_COLUMNS = [c for c in METRIC_COLUMNS if c not in COLUMNS] + TEXT_METRIC_COLUMNS + [
    "break_even_inferences", "rank", "accuracy_delta", "estimated", "timing_caveat", "error",
    "run_id", "suite", "device", "environment",
]


def _quality_verdicts(frame: Any, results: dict[str, RunResult], base_ids: list[Any]) -> None:
    """Fill the quality columns: the primary metric, its value, and the paired verdict
    against the baseline's run (``base_ids``: that run's id per row, or None)."""
    from harness.metrics import metric_of
    from harness.outcomes import read_samples
    from harness.verdict import judge_quality

    samples: dict[str, Any] = {}

    def samples_of(run_id: str) -> Any:
        if run_id not in samples:
            samples[run_id] = read_samples(results[run_id].results_dir, run_id) \
                if results[run_id].samples is None else results[run_id].samples
        return samples[run_id]

    out: dict[str, list[Any]] = {k: [] for k in ("quality_metric", "quality", "retained", "retained_lo",
                                                  "retained_hi", "p_value", "samples_needed", "holds", "verdict")}
    for run_id, base_id, gate in zip(frame["run_id"], base_ids, frame["gate"]):
        result = results[run_id]
        metric = metric_of(result.metrics) if result.status == "ok" else None
        value = result.metrics.get(metric.name) if metric else None
        base = results.get(base_id) if isinstance(base_id, str) else None
        base_value = base.metrics.get(metric.name) if metric and base and metric_of(base.metrics) == metric else None
        if metric is None or not isinstance(value, (int, float)):
            judged = None
        else:
            judged = judge_quality(metric, value, base_value, gate,
                                   samples_of(base.run_id) if base_value is not None else None, samples_of(run_id),
                                   untrained=bool(result.metrics.get("untrained_weights")))
        out["quality_metric"].append(metric.name if metric else None)
        out["quality"].append(value if metric else None)
        for key, attr in (("retained", "retained"), ("retained_lo", "lo"), ("retained_hi", "hi"),
                          ("p_value", "p_mcnemar"), ("samples_needed", "n_needed")):
            out[key].append(getattr(judged, attr) if judged else None)
        out["holds"].append((judged.holds or None) if judged else None)
        out["verdict"].append(judged.why if judged else "")
    for key, values in out.items():
        frame[key] = values


def latest(results: list[RunResult]) -> list[RunResult]:
    """The last result per (suite, model, task, method), in first-seen order."""
    last: dict[tuple, RunResult] = {}
    for result in results:
        last[(result.suite, result.model, result.task, result.method)] = result
    return list(last.values())


HOLDS_ORDER = {"yes": 0, "inconclusive": 1, "no": 3}


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


def environment_key(result: RunResult) -> str:
    """Where a run's speed was measured: host, torch, device and GPU (rows without an env:
    '' — they pair with anything, as before)."""
    env = result.env or {}
    if not env.get("hostname"):
        return ""
    gpu = env.get("gpu") or (env.get("gpu_state") or {}).get("name") or ""
    return "|".join(str(v) for v in (env.get("hostname"), env.get("torch"), result.device, gpu))


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
    rows = latest(results)
    for result in rows:
        estimated = _estimated(result)
        record = {
            "suite": result.suite, "model": result.model, "task": result.task,
            "method": result.method, "status": result.status, "run_id": result.run_id,
            "device": result.device, "estimated": ",".join(estimated),
            "timing_caveat": _timing_caveat(result), "error": result.first_error_line,
            "gate": result.accuracy_gate, "compile": _measure(result, "compile", "none"),
            "runtime": _measure(result, "runtime", "torch"),
            "timing_mode": _measure(result, "timing", "per-call"),
            "environment": environment_key(result),
        }
        for key in METRIC_COLUMNS + TEXT_METRIC_COLUMNS:
            value = result.metrics.get(key)
            if hide_estimated and key in estimated:
                value = None
            record[key] = value
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=list(dict.fromkeys(
        ["suite", "model", "task", "method", "status", "run_id", "device", "estimated", "timing_caveat", "error",
         "gate", "runtime", "compile", "timing_mode", "environment"] + METRIC_COLUMNS + TEXT_METRIC_COLUMNS)))
    for key in METRIC_COLUMNS:
        frame[key] = pd.to_numeric(frame[key], errors="coerce")

    group = ["suite", "model", "task", "runtime", "compile"]  # each runtime and compile mode has its baseline
    is_base = [m == variant_name(BASELINE, r, c, True) or m == BASELINE
               for m, r, c in zip(frame["method"], frame["runtime"], frame["compile"])]
    base = frame[pd.Series(is_base, index=frame.index, dtype=bool) & (frame["status"] == "ok")]
    base = base.drop_duplicates(group, keep="last").set_index(group)
    keys = list(zip(*(frame[c] for c in group)))

    def from_base(column: str):
        return pd.Series([base[column].get(k) if k in base.index else None for k in keys],
                         index=frame.index, dtype="float64")

    frame["accuracy_ratio"] = frame["accuracy"] / from_base("accuracy")
    by_id = {r.run_id: r for r in rows}
    base_ids = [base["run_id"].get(k) if k in base.index else None for k in keys]
    eager_keys = [(s, m, t, "torch", "none") for s, m, t, _, _ in keys]  # the torch eager baseline
    # a runtime's (or compile mode's) own baseline is judged against torch eager: did the export keep quality?
    base_ids = [base["run_id"].get(e) if b and e != k and e in base.index else i
                for b, k, e, i in zip(is_base, keys, eager_keys, base_ids)]
    _quality_verdicts(frame, by_id, base_ids)
    eager = pd.Series([base["throughput_sps"].get(k) for k in eager_keys], index=frame.index, dtype="float64")
    frame["speedup_vs_eager"] = frame["throughput_sps"] / eager
    frame.loc[(frame["compile"] == "none") & (frame["runtime"] == "torch"), "speedup_vs_eager"] = None
    frame["accuracy_delta"] = frame["accuracy"] - from_base("accuracy")
    frame["speedup"] = frame["throughput_sps"] / from_base("throughput_sps")
    # a speed ratio holds only within one environment: never against another machine's baseline
    def apart(envs: list[Any]) -> Any:  # both known and different
        return pd.Series([bool(b) and bool(e) and b != e for b, e in zip(envs, frame["environment"])],
                         index=frame.index, dtype=bool)

    elsewhere = apart([base["environment"].get(k) if k in base.index else None for k in keys])
    frame.loc[elsewhere, "speedup"] = None
    frame.loc[apart([base["environment"].get(k) for k in eager_keys]), "speedup_vs_eager"] = None
    frame.loc[elsewhere, "verdict"] = [(v + "; " if v else "") + "the baseline ran in another environment "
                                       "(host, torch, device or GPU): no speed ratio" for v in frame.loc[elsewhere, "verdict"]]
    frame["size_ratio"] = from_base("size_mb") / frame["size_mb"]
    from harness.measure.energy import break_even_inferences

    frame["break_even_inferences"] = pd.Series(
        [break_even_inferences(c, b, m) for c, b, m in
         zip(frame["compress_energy_j"], from_base("energy_j_per_1k"), frame["energy_j_per_1k"])],
        index=frame.index, dtype="float64")
    ok = frame["status"] == "ok"
    frame["_ok"] = ok
    frame["_mode"] = frame["compile"].map({m: i for i, m in enumerate(COMPILE_MODES)}).fillna(len(COMPILE_MODES))
    runtimes = list(dict.fromkeys(["torch"] + list(frame["runtime"])))
    frame["_runtime"] = frame["runtime"].map({r: i for i, r in enumerate(runtimes)})
    # holds first, then inconclusive, then what has no verdict, then what does not hold
    frame["_holds"] = frame["holds"].map(HOLDS_ORDER).fillna(2)
    frame = frame.sort_values(
        ["suite", "model", "task", "_runtime", "_mode", "_ok", "_holds", "speedup", "size_ratio"],
        ascending=[True, True, True, True, True, False, True, False, False], na_position="last", kind="stable")
    frame["rank"] = frame.groupby(group).cumcount() + 1
    frame.loc[~frame["_ok"], "rank"] = None
    _only_if_used(frame, "compile", "none")
    _only_if_used(frame, "runtime", "torch")
    _only_if_used(frame, "timing_mode", "per-call")
    frame = frame.drop(columns=["_ok", "_holds", "_mode", "_runtime", "gate"])
    return frame[COLUMNS + EXTRA_COLUMNS].reset_index(drop=True)
