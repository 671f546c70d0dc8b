"""torch.compile as a measured choice: the plan (eager and compiled side by side, run ids of
existing suites unchanged), compile time kept apart from latency, a failed compilation
that leaves its figures absent, the leaderboard's same-mode baselines, the GPU clock
caveat, and the GPU reference suite's validity."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from test_measure_cuda_paths import MEASURE, Task, fake_cuda  # noqa: F401 (a fixture)

from harness.config import MeasureConfig
from harness.plan import build_plan, run_id_of
from harness.plugins import load_plugins
from harness.result import RunResult
from harness.suite import load_suite

from conftest import FAST_MEASURE, ROOT, cli, digits_suite, write_suite

# MeasureConfig's fields before compile and timing existed: run ids were hashed over these.
FIELDS_BEFORE_COMPILE = ["batch_sizes", "warmup_s", "min_time_s", "min_iterations", "max_time_s", "ci_target",
                         "energy", "carbon_country", "price_per_hour", "threads", "sustained_s"]


def old_run_id(run: Any) -> str:
    """The run id as harness computed it before ``[measure] compile`` existed."""
    measure = {k: v for k, v in dataclasses.asdict(run.measure).items() if k in FIELDS_BEFORE_COMPILE}
    return run_id_of({"model": run.model.to_dict(), "task": run.task.to_dict(),
                      "steps": [s.to_dict() for s in run.steps], "measure": measure,
                      "seed": run.seed, "device": run.device, "versions": run.versions})


def plan_of(path: Path) -> list[Any]:
    plugins = load_plugins()
    return build_plan(load_suite(path, plugins), plugins)


def test_the_quickstarts_run_ids_are_what_they_were_before_compile_existed() -> None:
    runs = plan_of(ROOT / "suites" / "quickstart.toml")
    assert [r.run_id for r in runs] == [old_run_id(r) for r in runs]
    shown = cli("validate", str(ROOT / "suites" / "quickstart.toml"))
    assert shown.returncode == 0 and all(r.run_id in shown.stdout for r in runs)


def test_compile_modes_run_side_by_side_with_eager_ids_unchanged(tmp_path: Path) -> None:
    methods = '[[methods]]\nname = "int8"\nuse = "quant.int8-dynamic"\n'
    eager = plan_of(digits_suite(tmp_path, "eager", methods, measure=FAST_MEASURE))
    side = tmp_path / "side"
    side.mkdir()
    both = plan_of(digits_suite(side, "eager", methods, measure=FAST_MEASURE + 'compile = ["none", "default"]\n'))
    assert [r.method for r in both] == ["baseline", "baseline+compile", "int8", "int8+compile"]
    assert [r.measure.compile for r in both] == ["none", "default"] * 2
    assert [r.run_id for r in both if r.measure.compile == "none"] == [r.run_id for r in eager]
    assert len({r.run_id for r in both}) == 4
    only = tmp_path / "only"
    only.mkdir()
    compiled = plan_of(digits_suite(only, "eager", methods, measure='[measure]\ncompile = "max-autotune"\n'))
    assert [r.method for r in compiled] == ["baseline", "int8"]  # one mode: names as written


def test_an_unknown_compile_mode_or_timing_is_one_clear_sentence(tmp_path: Path) -> None:
    bad = digits_suite(tmp_path, "bad", measure='[measure]\ncompile = ["none", "fast"]\ntiming = "blocked"\n')
    done = cli("validate", str(bad))
    assert done.returncode == 2
    assert "compile ['none', 'fast'] must be one of 'none', 'default', 'reduce-overhead', 'max-autotune'" in done.stderr
    with pytest.raises(ValueError, match="timing 'blocked' must be one of 'per-call', 'back-to-back'"):
        MeasureConfig(timing="blocked")


def test_the_gpu_reference_suite_is_valid_without_a_gpu() -> None:
    done = cli("validate", str(ROOT / "suites" / "gpu.toml"))
    assert done.returncode == 0, done.stderr
    runs = plan_of(ROOT / "suites" / "gpu.toml")
    assert {r.method for r in runs} >= {"fp8", "fp8+compile", "sparse-2-4+compile", "structured-50"}


def test_a_failed_compilation_leaves_the_timings_absent_not_the_run_failed(monkeypatch) -> None:
    from harness.measure.perf import measure_model

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("inductor: no C++ compiler found\ndetails")

    monkeypatch.setattr(torch, "compile", broken)
    config = MeasureConfig(**(MEASURE | {"energy": False, "compile": "default"}))
    figures = measure_model(torch.nn.Linear(64, 10).eval(), Task(), config, "cpu")
    why = "absent: torch.compile(mode='default', dynamic=False) failed: RuntimeError: inductor: no C++ compiler found"
    assert figures.provenance["latency_ms_p50"] == why and figures.provenance["compile_s"] == why
    assert "latency" not in figures.metrics and "throughput_sps" not in figures.metrics
    assert figures.metrics["size_mb"] > 0  # what does not need the compiled model is still there


def test_a_batch_size_that_does_not_compile_leaves_only_its_figures_absent(monkeypatch) -> None:
    """As torchao's compiled int8 matmul on an H200: batch 1 refused (M must exceed 16),
    the larger batch sizes compiled and timed."""
    import harness.measure.compiled as compiled
    from harness.measure.perf import measure_model

    def picky(model: Any, **kwargs: Any) -> Any:
        def call(x: Any) -> Any:
            if x.shape[0] == 1:
                raise RuntimeError("self.size(0) needs to be greater than 16, but got 1")
            return model(x)
        return call

    counts = iter([(0, 0), (1, 0)])
    monkeypatch.setattr(torch, "compile", picky)
    monkeypatch.setattr(compiled, "_dynamo_counts", lambda: next(counts))
    config = MeasureConfig(**(MEASURE | {"energy": False, "compile": "default", "batch_sizes": [1, 8]}))
    figures = measure_model(torch.nn.Linear(64, 10).eval(), Task(), config, "cpu")
    assert figures.provenance["latency_ms_p50"].startswith("absent: torch.compile(mode='default', dynamic=False) "
                                                           "failed at batch 1: RuntimeError: self.size(0)")
    assert figures.metrics["throughput_sps"] > 0 and set(figures.metrics["latency"]) == {"8"}


def test_a_moving_gpu_clock_is_flagged_and_marked(fake_cuda) -> None:  # noqa: F811
    from harness.measure.perf import measure_model

    readings = iter(range(345, 10**6, 15))  # the SM clock climbs 15 MHz per reading, never settling
    fake_cuda.nvmlDeviceGetClockInfo = lambda handle, kind: next(readings)
    config = MeasureConfig(**(MEASURE | {"energy": False, "batch_sizes": [1]}))
    MeasureConfig.clock_ramp_max_s, saved = 0.3, MeasureConfig.clock_ramp_max_s
    try:
        figures = measure_model(torch.nn.Linear(64, 10).eval(), Task(), config, "cuda:0")
    finally:
        MeasureConfig.clock_ramp_max_s = saved
    clocks = figures.metrics["latency"]["1"]["clocks"]
    assert clocks["moved"] and clocks["sm_clock_mhz"][1] > clocks["sm_clock_mhz"][0]
    assert figures.metrics["timing_clocks_moved"] is True
    assert "moved at batch: 1" in figures.provenance["timing_clocks_moved"]

    from harness.leaderboard import build_frame
    from harness.report.columns import BY_KEY, marker

    row = RunResult("r1", "s", "m", "baseline", "t", "ok", metrics=figures.metrics, provenance=figures.provenance)
    record = build_frame([row]).to_dict("records")[0]
    assert record["timing_caveat"] == "clocks" and marker(BY_KEY["latency_ms_p50"], record) == "^"


def _row(method: str, mode: str, sps: float, compile_s: float | None = None) -> RunResult:
    metrics = {"throughput_sps": sps, "accuracy": 0.9} | ({"compile_s": compile_s} if compile_s else {})
    return RunResult(f"{method}-{mode}", "s", "mlp", method, "digits", "ok", metrics=metrics,
                     spec={"measure": {"compile": mode}})


def test_the_leaderboard_compares_each_run_with_the_baseline_of_its_compile_mode() -> None:
    from harness.leaderboard import build_frame

    rows = [_row("baseline", "none", 100.0), _row("baseline+compile", "default", 200.0, 3.0),
            _row("int8", "none", 50.0), _row("int8+compile", "default", 400.0, 4.0)]
    frame = build_frame(rows).set_index("method")
    assert frame.loc["int8", "speedup"] == 0.5 and frame.loc["int8+compile", "speedup"] == 2.0
    assert frame.loc["int8+compile", "compile"] == "default" and frame.loc["int8", "compile"] == "none"
    assert frame.loc["int8+compile", "compile_s"] == 4.0
    assert list(frame.index[:2]) == ["baseline", "int8"]  # eager first, then compiled
    eager_only = build_frame([_row("baseline", "none", 100.0)])
    assert eager_only["compile"].isna().all()  # no compile column for a suite that never compiles


@pytest.mark.e2e
def test_a_compiled_run_on_cpu_has_its_compile_time_apart_from_its_latency(tmp_path: Path) -> None:
    torch.manual_seed(0)  # one Linear: inductor compiles it in ~0.5 s (the digits MLP's C++ kernels: ~8 s)
    torch.save(torch.nn.Linear(64, 10), tmp_path / "linear.pt")
    suite = write_suite(tmp_path, """
[suite]
name = "compiled"

[measure]
batch_sizes = [1]
warmup_s = 0
min_time_s = 0.05
max_time_s = 0.5
energy = false
sustained_s = 0
threads = 1
compile = "default"

[[models]]
name = "linear"
source = "file"
ref = "linear.pt"
options = { unsafe_pickle = true }

[[tasks]]
name = "digits"
kind = "classification"
dataset = "digits"
""")
    results = tmp_path / "results"
    done = cli("bench", str(suite), "--results", str(results))
    assert done.returncode == 0, done.stdout + done.stderr
    row = json.loads((results / "compiled" / "results.jsonl").read_text().splitlines()[0])
    assert row["method"] == "baseline" and row["status"] == "ok", row.get("error")
    metrics, provenance = row["metrics"], row["provenance"]
    assert metrics["compile_s"] > 0 and metrics["latency_ms_p50"] > 0
    assert metrics["latency"]["1"]["compile_s"] == metrics["compile_s"]
    assert "1 graph," in provenance["compile_s"] and "cold compile" in provenance["compile_s"]
    assert "torch.compile(mode='default', dynamic=False)" in provenance["latency_ms_p50"]
    assert metrics["timing"]["compile"] == "default"
    assert metrics["latency_ms_p50"] < 1e3 * metrics["compile_s"] / 10  # the compilation is not in it
    board = cli("leaderboard", str(results), "--wide")
    assert "compile s" in board.stdout and "default" in board.stdout


# --- where a GPU is (issue 10's done-when, checked on the real thing) ----------------------

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def launch_bound_mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 768), torch.nn.ReLU(), torch.nn.Linear(768, 768),
                               torch.nn.ReLU(), torch.nn.Linear(768, 10)).cuda().eval()


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("batch", [1, 64, 512])
def test_cuda_back_to_back_reproduces_and_agrees_with_timer(batch: int) -> None:
    from torch.utils.benchmark import Timer

    from harness.measure.clocks import ClockWatch
    from harness.measure.latency import time_forward

    model, x = launch_bound_mlp(), torch.randn(batch, 64, device="cuda")
    config = MeasureConfig(warmup_s=0.5, min_time_s=1.0, max_time_s=5.0, timing="back-to-back")
    watch = ClockWatch.open("cuda", config.clock_tolerance)
    runs = [time_forward(model, x, config, "cuda", watch if isinstance(watch, ClockWatch) else None)["p50_ms"]
            for _ in range(3)]
    with torch.inference_mode():
        timer = Timer("model(x)", globals={"model": model, "x": x}).blocked_autorange(min_run_time=2.0).median * 1e3
    assert max(runs) / min(runs) <= 1.06, runs  # each within ±3% of the others
    assert all(abs(r / timer - 1) <= 0.05 for r in runs), (runs, timer)


@pytest.mark.cuda
@needs_cuda
def test_cuda_compiled_timing_records_compile_time_and_clocks() -> None:
    from harness.measure.perf import measure_model

    class CudaTask:
        def example_input(self, batch_size: int) -> torch.Tensor:
            return torch.randn(batch_size, 64, device="cuda")

    config = MeasureConfig(batch_sizes=[64], warmup_s=0.2, min_time_s=0.5, max_time_s=2.0, energy=False,
                           sustained_s=0, compile="default")
    figures = measure_model(launch_bound_mlp(), CudaTask(), config, "cuda")
    assert figures.metrics["compile_s"] > 0 and figures.metrics["latency_ms_p50"] > 0
    clocks = figures.metrics["latency"]["64"]["clocks"]
    assert all(mhz and mhz > 0 for mhz in clocks["sm_clock_mhz"]), clocks
