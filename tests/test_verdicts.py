"""The verdict: quality judged on each task's primary metric in its own direction, paired
with the baseline sample by sample; speed differences judged against between-run
variation. Logic in-process on hand-made rows; the stored outcomes of real runs are
checked on the shared zoo bench (every model source × task kind)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest

from harness.compare import compare_frames
from harness.leaderboard import build_frame
from harness.metrics import REGISTRY, Metric, aggregate
from harness.result import RunResult
from harness.verdict import RESAMPLES, SEED, judge_quality, mcnemar_exact


def _row(method: str, metric: str, values: list[float], weights: list[float] | None = None, *,
         task: str = "t", throughput: float = 100.0, gate: float = 0.99, **metrics) -> RunResult:
    m = REGISTRY.get(metric)
    figure = aggregate(m.aggregate, values, weights)
    samples = {"metric": metric, "values": values} | ({"weights": weights} if weights else {})
    return RunResult.from_row({
        "run_id": f"{method}-{task}", "suite": "s", "model": "m", "task": task, "method": method, "status": "ok",
        "metrics": {metric: figure, "quality_metric": m.to_dict(), "throughput_sps": throughput} | metrics,
        "provenance": {}, "spec": {"accuracy_gate": gate}, "samples": samples})


def _flip(values: list[float], every: int, to: float) -> list[float]:
    return [to if i % every == 0 else v for i, v in enumerate(values)]


def test_a_method_that_misses_the_gate_never_ranks_above_one_that_holds() -> None:
    rng = random.Random(0)
    base = [1.0 if rng.random() < 0.9 else 0.0 for _ in range(2000)]
    # top-1 agreement (fidelity): the worse method is much faster, and must still rank below
    rows = [_row("baseline", "top1_agreement", base), _row("fast-bad", "top1_agreement", _flip(base, 5, 0.0),
                                                           throughput=500.0),
            _row("slow-good", "top1_agreement", base, throughput=110.0)]
    frame = build_frame(rows).set_index("method")
    assert frame.loc["fast-bad", "holds"] == "no" and frame.loc["slow-good", "holds"] == "yes"
    assert frame.loc["fast-bad", "rank"] > frame.loc["slow-good", "rank"]
    assert frame.loc["fast-bad", "quality_metric"] == "top1_agreement"


def test_perplexity_is_judged_lower_is_better_with_its_own_aggregate() -> None:
    rng = random.Random(1)
    nll = [2.0 + rng.random() for _ in range(300)]
    tokens = [float(rng.randint(50, 128)) for _ in range(300)]
    worse = [v * 1.2 for v in nll]  # every window's loss 20 % higher: perplexity far above the gate
    better = [v * 0.999 for v in nll]
    rows = [_row("baseline", "perplexity", nll, tokens), _row("worse", "perplexity", worse, tokens, throughput=900.0),
            _row("better", "perplexity", better, tokens)]
    frame = build_frame(rows).set_index("method")
    ppl = math.exp(sum(v * w for v, w in zip(nll, tokens)) / sum(tokens))
    assert frame.loc["baseline", "perplexity"] == pytest.approx(ppl)
    assert frame.loc["worse", "holds"] == "no" and frame.loc["worse", "retained"] < 0.7
    assert frame.loc["better", "holds"] == "yes" and frame.loc["better", "retained"] > 1
    assert frame.loc["worse", "rank"] == 3  # fastest, but it wrecks perplexity


def test_too_few_samples_is_inconclusive_with_how_many_would_decide() -> None:
    acc = REGISTRY.get("accuracy")
    base = [1.0] * 95 + [0.0] * 5
    method = [1.0] * 94 + [0.0] * 6  # 0.94 / 0.95 = 0.989: a hair under the gate, on 100 samples
    verdict = judge_quality(acc, 0.94, 0.95, 0.99, {"metric": "accuracy", "values": base},
                            {"metric": "accuracy", "values": method})
    assert verdict.holds == "inconclusive" and verdict.lo < 0.99 < verdict.hi
    assert verdict.n_needed and verdict.n_needed > 100
    assert verdict.p_mcnemar == 1.0  # one discordant pair


def test_identical_outcomes_hold_with_p_one() -> None:
    acc = REGISTRY.get("accuracy")
    same = {"metric": "accuracy", "values": [1.0, 0.0, 1.0, 1.0]}
    verdict = judge_quality(acc, 0.75, 0.75, 0.99, same, same)
    assert (verdict.holds, verdict.retained, verdict.lo, verdict.hi, verdict.p_mcnemar) == ("yes", 1.0, 1.0, 1.0, 1.0)


def test_an_untrained_head_never_holds_and_is_marked() -> None:
    values = [1.0, 0.0] * 50
    rows = [_row("baseline", "accuracy", values, untrained_weights=2),
            _row("int8", "accuracy", values, untrained_weights=2)]
    frame = build_frame(rows).set_index("method")
    assert (frame["holds"] == "no").all() and frame.loc["int8", "verdict"].startswith("weights initialised anew")
    from harness.report.columns import BY_KEY, marker

    assert marker(BY_KEY["accuracy"], frame.reset_index().iloc[0].to_dict()) == "?"


def test_a_third_party_metric_gates_and_ranks_without_the_core_knowing_it() -> None:
    wer = Metric("wer", "WER", higher_is_better=False, unit="%", scale=100)
    rows = []
    for method, shift, speed in (("baseline", 0.0, 100.0), ("fast", 0.05, 300.0), ("ok", 0.0, 120.0)):
        values = [0.2 + shift + 0.01 * (i % 7) for i in range(400)]
        row = RunResult.from_row({
            "run_id": method, "suite": "s", "model": "m", "task": "asr", "method": method, "status": "ok",
            "metrics": {"wer": sum(values) / len(values), "quality_metric": wer.to_dict(), "throughput_sps": speed},
            "provenance": {}, "spec": {"accuracy_gate": 0.99}, "samples": {"metric": "wer", "values": values}})
        rows.append(row)
    frame = build_frame(rows).set_index("method")
    assert frame.loc["fast", "holds"] == "no" and frame.loc["ok", "holds"] == "yes"
    assert frame.loc["ok", "rank"] < frame.loc["fast", "rank"]


def _timing_row(method: str, ms: float, busy: bool = False) -> dict:
    from test_report import make_row

    row = make_row(method, latency_ms=ms)
    if busy:
        row["provenance"]["latency_ms_p50"] += "; machine busy (load average 3.1 on 2 cores)"
    return row


def test_compare_calls_between_run_noise_no_difference_and_a_real_slowdown_one() -> None:
    rng = random.Random(3)
    methods = [f"m{i}" for i in range(10)]
    a = [RunResult.from_row(_timing_row(m, 0.1)) for m in methods]
    noisy = [RunResult.from_row(_timing_row(m, 0.1 * math.exp(rng.gauss(0, 0.03)))) for m in methods]
    noisy[0] = RunResult.from_row(_timing_row("m0", 0.1 * 1.07))  # one heavy-tailed row, as seen on this machine
    frame, _ = compare_frames(a, noisy)
    assert not frame["latency_ms_p50_significant"].fillna(False).any(), frame["latency_ms_p50_b/a"].tolist()
    assert frame.attrs["between_run"]["latency_ms_p50"]["measured"]
    slower = [RunResult.from_row(_timing_row(m, 0.1 * 1.4 * math.exp(rng.gauss(0, 0.01)))) for m in methods]
    frame, _ = compare_frames(a, slower)
    assert frame["latency_ms_p50_significant"].all()  # a whole machine 40 % slower stays visible


def test_compare_of_a_busy_side_is_inconclusive_and_says_why() -> None:
    a = [RunResult.from_row(_timing_row("int8", 0.1))]
    b = [RunResult.from_row(_timing_row("int8", 0.2, busy=True))]
    frame, _ = compare_frames(a, b)
    assert frame.loc[0, "latency_ms_p50_significant"] is None
    assert frame.loc[0, "latency_ms_p50_why"] == "inconclusive: B: timed while the machine was busy"


@pytest.mark.e2e
def test_every_task_kind_stores_outcomes_that_an_independent_test_reproduces(zoo_bench) -> None:
    root, _, rows = zoo_bench
    results = root / "results" / "zoo"
    ok = [r for r in rows.values() if r["status"] == "ok"]
    assert {r["task"] for r in ok} >= {"ppl", "fid", "sentiment", "shapes", "blobs"}
    from harness.results import read_results

    frame = build_frame(read_results(results)).set_index(["model", "task", "method"])
    for row in ok:
        samples = json.loads((results / "samples" / f"{row['run_id']}.json").read_text())
        metric = row["metrics"]["quality_metric"]
        assert samples["metric"] == metric["name"]
        figure = aggregate(metric["aggregate"], samples["values"], samples.get("weights"))
        assert figure == pytest.approx(row["metrics"][metric["name"]], rel=1e-9)
        line = frame.loc[(row["model"], row["task"], row["method"])]
        assert line["holds"] in ("yes", "no", "inconclusive"), (row["model"], row["task"], row["method"])
        if row["method"] == "baseline":
            continue
        base = json.loads((results / "samples" / f"{rows[(row['model'], row['task'], 'baseline')]['run_id']}.json")
                          .read_text())
        xb, xm = np.array(base["values"]), np.array(samples["values"])
        if set(np.unique(np.concatenate([xb, xm]))) <= {0.0, 1.0}:  # exact McNemar, by scipy
            b, c = int(((xb == 1) & (xm == 0)).sum()), int(((xb == 0) & (xm == 1)).sum())
            expected = binomtest(min(b, c), b + c, 0.5).pvalue if b + c else 1.0
            assert line["p_value"] == pytest.approx(expected, rel=1e-12)
        # the paired bootstrap, written out plainly: the same resamples for both runs
        higher = metric["higher_is_better"]
        w = np.array(base.get("weights") or [1.0] * len(xb))
        idx = np.random.default_rng(SEED).integers(0, len(xb), size=(RESAMPLES, len(xb)))
        mb = (xb[idx] * w[idx]).sum(1) / w[idx].sum(1)
        mm = (xm[idx] * w[idx]).sum(1) / w[idx].sum(1)
        if metric["aggregate"] == "exp_mean":
            mb, mm = np.exp(mb), np.exp(mm)
        ratio = mm / mb if higher else mb / mm
        ratio = ratio[np.isfinite(ratio)]
        if not np.isnan(line["retained_lo"]):
            assert line["retained_lo"] == pytest.approx(np.quantile(ratio, 0.05), rel=1e-9)
            assert line["retained_hi"] == pytest.approx(np.quantile(ratio, 0.95), rel=1e-9)


@pytest.mark.e2e
def test_a_models_speed_is_measured_once_and_shared_by_its_tasks(zoo_bench) -> None:
    _, _, rows = zoo_bench
    ppl, fid = rows[("gpt2", "ppl", "baseline")], rows[("gpt2", "fid", "baseline")]
    assert ppl["metrics"]["latency_ms_p50"] == fid["metrics"]["latency_ms_p50"]
    assert ppl["metrics"]["throughput_sps"] == fid["metrics"]["throughput_sps"]
    notes = [r["provenance"]["latency_ms_p50"] for r in (ppl, fid)]
    assert sum("reused: timed once by run" in n for n in notes) == 1, notes


def test_samples_are_stored_beside_the_results_not_in_them(tmp_path: Path) -> None:
    from harness.results import append_result, read_results

    row = _row("int8", "accuracy", [1.0, 0.0, 1.0])
    append_result(tmp_path / "results.jsonl", row)
    assert "samples" not in json.loads((tmp_path / "results.jsonl").read_text())
    assert json.loads((tmp_path / "samples" / "int8-t.json").read_text())["values"] == [1.0, 0.0, 1.0]
    (back,) = read_results(tmp_path)
    assert back.samples is None and back.results_dir == tmp_path


def test_mcnemar_matches_scipy() -> None:
    rng = random.Random(5)
    for _ in range(20):
        base = [float(rng.random() < 0.8) for _ in range(200)]
        method = [v if rng.random() < 0.9 else 1 - v for v in base]
        b = sum(1 for x, y in zip(base, method) if x and not y)
        c = sum(1 for x, y in zip(base, method) if y and not x)
        assert mcnemar_exact(base, method) == pytest.approx(binomtest(min(b, c), b + c, 0.5).pvalue, rel=1e-12)


def test_compiled_runs_show_their_speed_against_the_eager_baseline_too() -> None:
    def row(method: str, compile_mode: str, sps: float) -> RunResult:
        r = _row(method, "accuracy", [1.0, 0.0, 1.0, 1.0], throughput=sps)
        r.run_id, r.spec = f"{method}-{compile_mode}", {"accuracy_gate": 0.99, "measure": {"compile": compile_mode}}
        return r

    frame = build_frame([row("baseline", "none", 239.0), row("magnitude", "none", 230.0),
                         row("baseline+compile", "default", 118.0), row("magnitude+compile", "default", 171.0)])
    frame = frame.set_index("method")
    assert frame.loc["magnitude+compile", "speedup"] == pytest.approx(171 / 118)  # vs its compiled baseline
    assert frame.loc["magnitude+compile", "speedup_vs_eager"] == pytest.approx(171 / 239)  # slower than eager
    assert np.isnan(frame.loc["magnitude", "speedup_vs_eager"])


def test_a_baseline_from_another_machine_gives_no_speed_ratio() -> None:
    base = _row("baseline", "accuracy", [1.0, 1.0, 0.0, 1.0], throughput=100.0)
    int8 = _row("int8", "accuracy", [1.0, 1.0, 0.0, 1.0], throughput=150.0)
    base.env = {"hostname": "a", "torch": "2.13.0"}
    int8.env = {"hostname": "b", "torch": "2.13.0"}
    frame = build_frame([base, int8]).set_index("method")
    assert np.isnan(frame.loc["int8", "speedup"]) and "another environment" in frame.loc["int8", "verdict"]
    assert frame.loc["int8", "holds"] == "yes"  # quality does not depend on the machine
    int8.env = {"hostname": "a", "torch": "2.13.0"}
    assert build_frame([base, int8]).set_index("method").loc["int8", "speedup"] == 1.5
