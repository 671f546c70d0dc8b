"""The leaderboard's columns as people read them: a short terminal header, a published
label with units, a number format, a priority for narrow terminals, and which marker
(estimated ``*``, noisy ``~``, GPU clock moved ``^``, machine busy ``!``) a cell can carry. No pandas here: the CLI imports it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Column:
    key: str  # the frame's column
    short: str  # terminal header
    label: str  # published header, with units
    kind: str = "num"  # num | int | pct | ratio | text | acc | yesno
    priority: int = 50  # terminal: lower numbers stay longest when the width runs short
    estimable: bool = False  # may be an estimate: marked "*"
    timed: bool = False  # a timing: marked "~" (noisy), "^" (GPU clock moved) or "!" (machine busy)
    optional: bool = False  # shown only when some row has it (task-specific figures)


COLUMNS = [
    Column("rank", "#", "#", "int", 0),
    Column("suite", "suite", "Suite", "text", 90),
    Column("model", "model", "Model", "text", 1),
    Column("task", "task", "Task", "text", 8),
    Column("method", "method", "Method", "text", 2),
    Column("status", "status", "Status", "text", 3),
    Column("accuracy", "acc % ± se", "Accuracy (%)", "acc", 4, optional=True),
    Column("perplexity", "ppl", "Perplexity", "num", 4, optional=True),
    Column("top1_agreement", "top-1 agr", "Top-1 agreement (%)", "pct", 4, optional=True),
    Column("bits_per_byte", "bpb", "Bits per byte", "num", 20, optional=True),
    Column("kl_div_mean", "KL", "KL divergence", "num", 20, optional=True),
    Column("macro_f1", "macro-F1", "Macro-F1 (%)", "pct", 12, optional=True),
    Column("cosine_mean", "cosine", "Cosine similarity to the original (encoder outputs)", "num", 4, optional=True),
    Column("max_abs_diff", "max |Δ|", "Max abs. difference to the original (encoder outputs)", "num", 20, optional=True),
    Column("accuracy_ratio", "acc ratio", "Acc. vs baseline", "ratio3", 26),  # "kept" says it for every metric
    Column("holds", "holds", "Holds quality (paired verdict at the gate)", "text", 4),
    Column("retained", "kept", "Quality kept vs baseline (×, primary metric)", "ratio3", 11),
    Column("quality_metric", "metric", "Primary metric", "text", 13, optional=True),
    Column("p_value", "p", "McNemar p (paired, vs baseline)", "num", 24, optional=True),
    Column("samples_needed", "n to decide", "Samples that would decide (inconclusive)", "int", 25, optional=True),
    Column("latency_ms_p50", "p50 ms", "Latency p50 (ms)", "num", 9, timed=True),
    Column("latency_ms_p99", "p99 ms", "Latency p99 (ms)", "num", 16, timed=True),
    Column("throughput_sps", "samples/s", "Throughput (samples/s)", "num", 14, timed=True),
    Column("speedup", "speedup", "Speedup (×)", "ratio", 5, timed=True),
    Column("speedup_vs_eager", "vs eager", "Speedup vs the torch eager baseline (×)", "ratio", 6, timed=True,
           optional=True),
    Column("size_mb", "size MB", "Size (MB)", "num", 6),
    Column("size_ratio", "size ×", "Smaller by (×)", "ratio", 10),
    Column("params", "params", "Parameters", "int", 18),
    Column("sparsity", "sparsity %", "Sparsity of Linear/Conv weights (%)", "pct", 15),
    Column("peak_mem_mb", "peak MB", "Peak memory (MB)", "num", 19),
    Column("energy_j_per_1k", "J/1k", "Energy (J / 1k inf.)", "num", 13, estimable=True),
    Column("dynamic_energy_j_per_1k", "J/1k >idle", "Energy above idle (J / 1k inf.)", "num", 21, estimable=True),
    Column("co2_g_per_1k", "gCO2e/1k", "CO₂e (g / 1k inf.)", "num", 22, estimable=True),
    Column("cost_usd_per_1m", "$/1M", "Cost ($ / 1M inf.)", "num", 23, estimable=True),
    Column("compress_s", "compress s", "Compression time (s)", "num", 17),
    Column("runtime", "runtime", "Runtime", "text", 5, optional=True),
    Column("kernels", "kernels", "Kernels that ran (profiler: real low-precision, or simulated)", "text", 12,
           optional=True),
    Column("compile", "compile", "torch.compile mode", "text", 6, optional=True),
    Column("compile_s", "compile s", "Compile time (s)", "num", 17, optional=True),
    Column("first_call_ms", "1st call ms", "First call after loading (ms, cold)", "num", 20, optional=True),
    Column("load_s", "load s", "Runtime load (s: session/compilation)", "num", 20, optional=True),
    Column("runtime_prepare_s", "prepare s", "Runtime preparation (s: export, own steps, load)", "num", 20,
           optional=True),
    Column("timing_mode", "timing", "Timing (per-call / back-to-back)", "text", 9, optional=True),
    Column("ttft_ms", "TTFT ms", "Time to first token (ms)", "num", 7, timed=True, optional=True),
    Column("decode_tokens_per_s", "decode tok/s", "Decode (tokens/s)", "num", 7, timed=True, optional=True),
    # The roofline, at the throughput batch (docs/roofline.md): last to stay on a narrow terminal.
    Column("bound", "bound", "Bound (compute / memory / overhead)", "text", 27, estimable=True, timed=True,
           optional=True),
    Column("roofline_share", "roofline %", "Share of the roofline reached (%)", "pct", 28, estimable=True, timed=True),
    Column("gflop_per_s", "GFLOP/s", "Achieved GFLOP/s", "num", 29, timed=True),
    Column("gb_per_s", "GB/s", "Achieved memory traffic (GB/s, counted bytes)", "num", 30, estimable=True, timed=True),
    Column("flops", "FLOPs", "FLOPs per call", "num", 31),
    Column("bytes_moved", "bytes", "Bytes moved per call (counted)", "num", 32, estimable=True),
    Column("arithmetic_intensity", "FLOP/B", "Arithmetic intensity (FLOP / byte)", "num", 33, estimable=True),
    Column("peak_gflop_per_s", "peak GFLOP/s", "Machine peak for the model's dtypes (GFLOP/s)", "num", 34),
    Column("peak_gb_per_s", "peak GB/s", "Machine peak memory bandwidth (GB/s)", "num", 35),
]
BY_KEY = {c.key: c for c in COLUMNS}
# timing_caveat -> (marker, what it means): the legend under a leaderboard.
CAVEATS = {
    "noisy": ("~", "noisy timing (the median's CI never narrowed to ci_target, or the warm-up never settled)"),
    "clocks": ("^", "the GPU's SM clock moved (or it slowed down thermally) while timing: compare with care"),
    "busy": ("!", "timed while the machine was busy (load above its cores): compare with care"),
}
# Where a quality figure lives and which way is better: the y axis of a trade-off plot.
QUALITY = [("accuracy", True), ("perplexity", False), ("top1_agreement", True), ("cosine_mean", True),
           ("bits_per_byte", False), ("kl_div_mean", False)]
QUALITY_KEYS = {k for k, _ in QUALITY} | {"macro_f1", "max_abs_diff", "retained", "accuracy_ratio"}
UNTRAINED = ("?", "the model has weights initialised anew (e.g. a new classification head) that no step "
                  "trained: the quality of random weights, never a result")


def blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def number(value: float) -> str:
    """Three significant figures or whole numbers with separators; never scientific
    notation between 0.001 and a billion."""
    size = abs(value)
    if size == 0:
        return "0"
    if size >= 1e9 or size < 1e-3:
        return f"{value:.2e}"
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def numbers(values: list[Any]) -> list[str]:
    """A column's figures in one notation, three significant figures each: scientific
    only when every figure is below 0.001; otherwise a figure below it reads ``< 0.001``
    (a baseline's compression time of 4.6e-05 s is no figure to read). Blank stays ''."""
    real = [abs(float(v)) for v in values if not blank(v) and float(v) != 0]
    tiny = bool(real) and max(real) < 1e-3
    out = []
    for value in values:
        if blank(value):
            out.append("")
        elif tiny or value == 0 or abs(float(value)) >= 1e-3:
            out.append(number(float(value)))
        else:
            out.append("< 0.001")
    return out


def cell(column: Column, record: dict[str, Any]) -> str:
    """The cell's text, without markers; '' when the figure was not measured."""
    value = record.get(column.key)
    if blank(value):
        return ""
    kind = column.kind
    if kind == "acc":
        stderr = record.get("accuracy_stderr")
        return f"{value * 100:.2f}" + ("" if blank(stderr) else f" ± {stderr * 100:.2f}")
    if kind == "yesno" or isinstance(value, bool):
        return "yes" if value else "no"
    if kind == "text" or isinstance(value, str):
        return str(value)
    if kind == "int":
        return f"{value:,.0f}"
    if kind == "pct":
        return f"{value * 100:.1f}"
    if kind == "ratio":
        return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.2g}"
    if kind == "ratio3":
        return f"{value:.3f}"
    return number(float(value))


def marker(column: Column, record: dict[str, Any], hide_estimated: bool = False) -> str:
    """'*' estimated, '~' noisy timing, '^' GPU clock moved, '!' timed on a busy machine,
    '?' the quality of weights initialised anew that no step trained, or ''."""
    if column.key in QUALITY_KEYS and not blank(record.get("untrained_weights")) and record.get("untrained_weights"):
        return "?"
    if column.estimable and column.key in str(record.get("estimated") or "").split(","):
        return "*"
    if column.timed:
        return CAVEATS.get(record.get("timing_caveat") or "", ("", ""))[0]
    return ""


def with_data(frame: Any, columns: list[Column]) -> list[Column]:
    """The columns of ``frame`` that some row has a value in (text columns always, unless
    optional)."""
    kept = []
    for column in columns:
        if column.key not in frame.columns:
            continue
        if (column.kind == "text" and not column.optional) or frame[column.key].notna().any():
            kept.append(column)
    return kept


def resolve(names: list[str]) -> list[Column]:
    """Columns named by key ('latency_ms_p50') or terminal header ('p50 ms'); ValueError
    naming the valid keys for an unknown one."""
    lookup = {c.key.lower(): c for c in COLUMNS} | {c.short.lower(): c for c in COLUMNS}
    unknown = [n for n in names if n.strip().lower() not in lookup]
    if unknown:
        raise ValueError(f"unknown column(s) {', '.join(unknown)}; choose from {', '.join(c.key for c in COLUMNS)}")
    return list(dict.fromkeys(lookup[n.strip().lower()] for n in names))
