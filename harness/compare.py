"""Two results directories side by side: the same runs on two machines or versions."""

from __future__ import annotations

from harness.leaderboard import build_frame
from harness.result import RunResult

KEY = ["model", "task", "method"]
COMPARED = ["accuracy", "latency_ms_p50", "throughput_sps", "size_mb", "sparsity", "energy_j_per_1k"]


def compare_frames(results_a: list[RunResult], results_b: list[RunResult]):
    """(one row per (model, task, method) present in both, with B / A ratios; the keys
    present in only one of the two)."""
    a = build_frame(results_a).set_index(KEY)
    b = build_frame(results_b).set_index(KEY)
    both = a.index.intersection(b.index)
    out = a.loc[both, []].copy()
    for column in COMPARED:
        out[f"{column}_a"] = a.loc[both, column]
        out[f"{column}_b"] = b.loc[both, column]
        out[f"{column}_b/a"] = b.loc[both, column] / a.loc[both, column]
    return out.reset_index(), sorted(set(a.index) ^ set(b.index))
