"""Results rows → one comparable table (pandas), with deltas against the baseline."""

from __future__ import annotations

from typing import Any

COLUMNS = [
    "model", "task", "method", "status", "accuracy", "accuracy_stderr", "accuracy_ratio",
    "latency_ms_p50", "latency_ms_p99", "throughput_sps", "speedup", "size_mb", "size_ratio",
    "params", "sparsity", "peak_mem_mb", "energy_j_per_1k", "co2_g_per_1k", "cost_usd_per_1m",
    "compress_s", "holds_accuracy", "ttft_ms", "decode_tokens_per_s",
]
# Figures copied from a row's metrics as they are (absent stays empty, never 0).
METRIC_COLUMNS = [
    "accuracy", "accuracy_stderr", "latency_ms_p50", "latency_ms_p99", "throughput_sps",
    "size_mb", "params", "sparsity", "peak_mem_mb", "energy_j_per_1k", "co2_g_per_1k",
    "cost_usd_per_1m", "compress_s", "ttft_ms", "decode_tokens_per_s",
    "perplexity", "bits_per_byte", "top1_agreement", "kl_div_mean",
    "compress_energy_j", "sustained_throughput_sps",
]
# After COLUMNS in the frame: the other figures, then bookkeeping.
EXTRA_COLUMNS = [c for c in METRIC_COLUMNS if c not in COLUMNS] + [
    "break_even_inferences", "rank", "accuracy_delta", "estimated", "timing_caveat", "error",
    "run_id", "suite", "device",
]


def latest_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last row per (suite, model, task, method), in first-seen order."""
    latest: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        latest[(row.get("suite"), row["model"], row["task"], row["method"])] = row
    return list(latest.values())


def _estimated(row: dict[str, Any]) -> list[str]:
    return sorted(k for k, v in (row.get("provenance") or {}).items() if str(v).startswith("estimated"))


def _timing_caveat(row: dict[str, Any]) -> str:
    """'noisy' (the median never settled within ci_target), 'busy' (timed while the load
    exceeded the cores), or '' — the two reasons a latency figure deserves less trust."""
    metrics = row.get("metrics") or {}
    if metrics.get("timing_noisy"):
        return "noisy"
    if "machine busy" in str((row.get("provenance") or {}).get("latency_ms_p50", "")):
        return "busy"
    return ""


def build_frame(rows: list[dict[str, Any]], hide_estimated: bool = False):
    """The leaderboard as a DataFrame with :data:`COLUMNS` (plus rank and extras)."""
    import pandas as pd

    records = []
    for row in latest_rows(rows):
        metrics = row.get("metrics") or {}
        estimated = _estimated(row)
        record = {
            "suite": row.get("suite"), "model": row["model"], "task": row["task"],
            "method": row["method"], "status": row["status"], "run_id": row["run_id"],
            "device": row.get("device"), "estimated": ",".join(estimated),
            "timing_caveat": _timing_caveat(row),
            "error": (row.get("error") or "").splitlines()[0] if row.get("error") else "",
            "gate": (row.get("spec") or {}).get("accuracy_gate", 0.99),
        }
        for key in METRIC_COLUMNS:
            value = metrics.get(key)
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
