"""Small pure pieces: param checking, the results file, the leaderboard's arithmetic."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.leaderboard import build_frame
from harness.params import build
from harness.result import RunResult
from harness.results import append_result, finished_ids, read_results


@dataclass(frozen=True)
class P:
    amount: float = 0.5
    scope: Literal["layer", "global"] = "layer"
    sizes: list[int] | None = None
    on: bool = False


def test_params_coerce_and_report_every_problem() -> None:
    problems: list[str] = []
    assert build(P, {"amount": 1, "sizes": [1, 2]}, "m", problems) == P(amount=1.0, sizes=[1, 2])
    assert problems == []
    assert build(P, {"amount": "x", "scope": "row", "on": 1, "sizs": [1]}, "m.params", problems) is None
    assert problems == [
        "m.params.amount: expected float, got 'x'",
        "m.params.scope: expected 'layer' | 'global', got 'row'",
        "m.params.on: expected bool, got 1",
        "m.params.sizs: unknown key; did you mean 'sizes'?",
    ]


def test_append_is_line_atomic_and_a_torn_tail_is_closed_off(tmp_path: Path) -> None:
    path = tmp_path / "r" / "results.jsonl"
    append_result(path, _row("a"))
    with open(path, "a") as fh:
        fh.write('{"run_id": "b", "sta')  # torn
    assert [r.run_id for r in read_results(path, warn=False)] == ["a"]
    append_result(path, _row("c", status="failed"))
    rows = read_results(path, warn=False)
    assert [r.run_id for r in rows] == ["a", "c"]  # c did not glue onto the torn line
    assert finished_ids(rows) == {"a"}  # failures are retried


def _row(method: str, status: str = "ok", **metrics) -> RunResult:
    return RunResult.from_row({
        "run_id": method, "suite": "s", "model": "m", "task": "t", "method": method, "status": status,
        "metrics": metrics, "provenance": {k: "measured" for k in metrics}, "spec": {"accuracy_gate": 0.99}})


def test_leaderboard_deltas_and_empty_never_zero() -> None:
    rows = [
        _row("baseline", accuracy=0.90, throughput_sps=100.0, size_mb=4.0),
        _row("int8", accuracy=0.895, throughput_sps=150.0, size_mb=1.0),
        _row("prune", accuracy=0.80, throughput_sps=100.0, size_mb=4.0),
        _row("broken", status="failed"),
    ]
    rows[1].provenance["energy_j_per_1k"] = "estimated: no RAPL"
    rows[1].metrics["energy_j_per_1k"] = 3.0
    frame = build_frame(rows).set_index("method")
    assert frame.loc["int8", "size_ratio"] == 4.0
    assert frame.loc["int8", "speedup"] == 1.5
    assert abs(frame.loc["int8", "accuracy_ratio"] - 0.895 / 0.90) < 1e-12
    assert frame.loc["int8", "holds"] == "yes" and frame.loc["int8", "verdict"].startswith("point estimate")
    assert frame.loc["prune", "holds"] == "no"
    assert frame.loc["int8", "rank"] == 1  # holds accuracy and fastest
    assert frame.isna().loc["broken", "accuracy"] and frame.isna().loc["baseline", "energy_j_per_1k"]
    assert frame.loc["int8", "estimated"] == "energy_j_per_1k"
    hidden = build_frame(rows, hide_estimated=True).set_index("method")
    assert hidden.isna().loc["int8", "energy_j_per_1k"]
    # the latest row per (model, task, method) wins
    again = build_frame(rows + [_row("prune", accuracy=0.85, throughput_sps=90.0, size_mb=4.0)]).set_index("method")
    assert again.loc["prune", "accuracy"] == 0.85
    json.dumps([r.to_row() for r in rows])  # rows stay JSON
