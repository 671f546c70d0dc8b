"""Two results directories side by side: the same runs on two machines or versions,
with B / A ratios, their 95% intervals, which differences are significant, and how the
two environments differ.

A difference is called **significant** only when all of these hold:

- the two 95% intervals do not overlap — latency: the CI of the median at the smallest
  batch (``latency[batch].ci95_ms``); throughput: the same at the largest batch;
  accuracy: ± 1.96 standard errors; size, params, sparsity: exact (no interval);
  energy: no interval;
- the ratio differs from 1 by more than the figure's floor (:data:`MARGINS`);
- for timings and energy: the log-ratio exceeds what **between-run variation** explains.
  Each run's own CI says nothing about how a separate process minutes later will time
  the same work, so the spread between runs is measured from the comparison itself: the
  standard deviation of the log-ratios of every row compared — each row's two runs are
  independent processes, so the rows scatter around their common shift by the
  between-run variation (the common shift itself, a whole machine being slower, stays
  visible; a real change in some rows widens the spread, so it errs towards caution). A row is significant only beyond z × that spread, with z
  Bonferroni-corrected for the number of rows (``between_run`` in the output). With
  fewer than :data:`MIN_ROWS_FOR_SPREAD` rows, :data:`DEFAULT_BETWEEN_RUN` stands in;
- neither side's timing carries a caveat: a row timed on a busy machine, with a noisy
  median or a moving GPU clock makes the comparison **inconclusive** (``None``) and
  ``<figure>_why`` says why (a change below the floor stays not significant).

The ratio's interval ``[lo_B / hi_A, hi_B / lo_A]`` is conservative: it holds whenever
both figures lie in their intervals.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from harness.leaderboard import build_frame, latest
from harness.result import RunResult

KEY = ["model", "task", "method"]
COMPARED = ["accuracy", "latency_ms_p50", "throughput_sps", "size_mb", "sparsity", "energy_j_per_1k"]
TIMING_MARGIN = 0.05  # timings: below a 5% change, never significant
ENERGY_MARGIN = 0.10  # energy (often estimated, no interval): below 10%, never significant
MARGINS = {"accuracy": 0.0, "latency_ms_p50": TIMING_MARGIN, "throughput_sps": TIMING_MARGIN, "size_mb": 0.0,
           "sparsity": 0.0, "energy_j_per_1k": ENERGY_MARGIN}
EXACT = {"size_mb", "sparsity"}
TIMED = ("latency_ms_p50", "throughput_sps", "energy_j_per_1k")  # judged against between-run variation
DEFAULT_BETWEEN_RUN = 0.05  # log-ratio SD assumed when too few rows measure it (separate processes)
MIN_ROWS_FOR_SPREAD = 5
ALPHA = 0.05
Z95 = 1.959964
# (label, how to read it from a row's env)
ENV_KEYS = [
    ("torch", lambda e: e.get("torch")), ("harness", lambda e: e.get("harness")),
    ("GPU", lambda e: e.get("gpu") or (e.get("gpu_state") or {}).get("name")),
    ("driver", lambda e: (e.get("gpu_state") or {}).get("driver")), ("CPU", lambda e: e.get("cpu")),
    ("cores", lambda e: e.get("cpu_affinity") or e.get("cpu_count")), ("threads", lambda e: e.get("torch_threads")),
    ("python", lambda e: e.get("python")), ("CUDA", lambda e: e.get("cuda")),
]


def _batch_stats(result: RunResult, pick: Any) -> tuple[int, dict[str, Any]] | None:
    latency = result.metrics.get("latency")
    if not isinstance(latency, dict):
        return None
    batches = sorted((int(b), s) for b, s in latency.items() if str(b).isdigit() and isinstance(s, dict))
    return pick(batches) if batches else None


def interval(result: RunResult | None, figure: str) -> tuple[float, float] | None:
    """The 95% interval of ``figure`` in ``result``: (lo, hi), or None when it has none."""
    if result is None:
        return None
    value = result.metrics.get(figure)
    if not isinstance(value, (int, float)):
        return None
    if figure in EXACT:
        return float(value), float(value)
    if figure == "accuracy":
        se = result.metrics.get("accuracy_stderr")
        return (value - Z95 * se, value + Z95 * se) if isinstance(se, (int, float)) else None
    if figure in ("latency_ms_p50", "throughput_sps"):
        found = _batch_stats(result, (lambda b: b[0]) if figure == "latency_ms_p50" else (lambda b: b[-1]))
        ci = found[1].get("ci95_ms") if found else None
        if not (isinstance(ci, list) and len(ci) == 2 and all(isinstance(v, (int, float)) and v > 0 for v in ci)):
            return None
        if figure == "latency_ms_p50":
            return float(ci[0]), float(ci[1])
        return found[0] * 1000 / ci[1], found[0] * 1000 / ci[0]
    return None


def judge(figure: str, a: float | None, b: float | None, ia: tuple | None, ib: tuple | None) -> dict[str, Any]:
    """ratio, its interval, and whether the difference is significant (None: unknown)."""
    out: dict[str, Any] = {"ratio": None, "lo": None, "hi": None, "significant": None}
    if a is None or b is None or a != a or b != b or a == 0:
        return out
    out["ratio"] = b / a
    if ia and ib and ia[0] > 0 and ib[0] > 0:
        out["lo"], out["hi"] = ib[0] / ia[1], ib[1] / ia[0]
    apart = abs(out["ratio"] - 1) > MARGINS.get(figure, TIMING_MARGIN)
    if figure == "energy_j_per_1k":
        out["significant"] = apart  # then judged against between-run variation
    elif ia and ib:
        out["significant"] = apart and (ib[0] > ia[1] or ib[1] < ia[0])
    return out


def between_run_spread(ratios: list[float]) -> tuple[float, bool]:
    """(the SD of log-ratios that between-run variation explains, measured?): the sample
    standard deviation of the rows' log-ratios. Not a robust spread: timings between
    processes are heavy-tailed (most rows within 2 %, one in ten off by 8 % on a shared
    machine), and a real change in a few rows only makes the judgement more cautious."""
    logs = [math.log(r) for r in ratios if isinstance(r, (int, float)) and r > 0 and r == r]
    if len(logs) < MIN_ROWS_FOR_SPREAD:
        return DEFAULT_BETWEEN_RUN, False
    return statistics.stdev(logs), True


def z_for(rows: int, measured: bool = True) -> float:
    """Two-sided critical value at ALPHA, Bonferroni-corrected for ``rows`` comparisons:
    Student's t with rows − 1 degrees of freedom when the spread was measured from those
    rows (Cornish–Fisher expansion of the normal quantile), else the normal's."""
    z = statistics.NormalDist().inv_cdf(1 - ALPHA / (2 * max(1, rows)))
    if not measured or rows < 2:
        return z
    v = rows - 1
    return (z + (z ** 3 + z) / (4 * v) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * v ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * v ** 3))


def caveat_of(result: RunResult | None) -> str:
    """Why this side's timing cannot decide a comparison ('' when it can)."""
    from harness.leaderboard import _timing_caveat

    caveat = _timing_caveat(result) if result is not None else ""
    return {"busy": "timed while the machine was busy", "noisy": "noisy timing",
            "clocks": "the GPU clock moved while timing"}.get(caveat, "")


def compare_frames(results_a: list[RunResult], results_b: list[RunResult]):
    """(one row per run present in both — keyed by (model, task, method), and by suite
    too when either side has several — with A, B, B / A, its interval and significance
    per figure; the keys present in only one of the two)."""
    several = len({r.suite for r in results_a}) > 1 or len({r.suite for r in results_b}) > 1
    key = (["suite"] if several else []) + KEY
    a = build_frame(results_a).set_index(key)
    b = build_frame(results_b).set_index(key)
    by_a = {tuple(getattr(r, k) for k in key): r for r in latest(results_a)}
    by_b = {tuple(getattr(r, k) for k in key): r for r in latest(results_b)}
    both = a.index.intersection(b.index)
    out = a.loc[both, []].copy()
    spreads: dict[str, dict[str, Any]] = {}
    for column in COMPARED:
        values_a, values_b = a.loc[both, column], b.loc[both, column]
        judged = [judge(column, va, vb, interval(by_a.get(k), column), interval(by_b.get(k), column))
                  for k, va, vb in zip(both, values_a, values_b)]
        why = [""] * len(judged)
        if column in TIMED:
            sd, measured = between_run_spread([j["ratio"] for j in judged])
            rows = sum(1 for j in judged if j["ratio"])
            z = z_for(rows, measured)
            spreads[column] = {"sd_log": sd, "measured": measured, "rows": rows, "z": z}
            for i, (k, j) in enumerate(zip(both, judged)):
                caveats = [f"{side}: {c}" for side, c in (("A", caveat_of(by_a.get(k))), ("B", caveat_of(by_b.get(k))))
                           if c]
                if j["ratio"] is None or j["ratio"] <= 0:
                    continue
                if caveats and j["significant"] is not False:  # below the floor stays not significant
                    j["significant"], why[i] = None, "inconclusive: " + "; ".join(caveats)
                elif caveats:
                    why[i] = "; ".join(caveats)
                elif j["significant"] and abs(math.log(j["ratio"])) <= z * sd:
                    j["significant"] = False
                    why[i] = f"within between-run variation (±{math.expm1(z * sd):.0%})"
        out[f"{column}_a"] = values_a
        out[f"{column}_b"] = values_b
        out[f"{column}_b/a"] = [j["ratio"] for j in judged]
        out[f"{column}_b/a_lo"] = [j["lo"] for j in judged]
        out[f"{column}_b/a_hi"] = [j["hi"] for j in judged]
        out[f"{column}_significant"] = [j["significant"] for j in judged]
        out[f"{column}_why"] = why
    frame = out.reset_index()
    frame.attrs["between_run"] = spreads
    return frame, sorted(set(a.index) ^ set(b.index))


def env_differences(results_a: list[RunResult], results_b: list[RunResult]) -> list[tuple[str, str, str]]:
    """(what, A's values, B's values) for each environment fact that differs."""
    diffs = []
    for label, read in ENV_KEYS:
        values = []
        for results in (results_a, results_b):
            seen = {str(v) for r in latest(results) if r.env and (v := read(r.env)) not in (None, "")}
            values.append(", ".join(sorted(seen)) or "—")
        if values[0] != values[1]:
            diffs.append((label, values[0], values[1]))
    return diffs
