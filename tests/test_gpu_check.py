"""benchmarks/gpu_check.sh (docs/gpu.md): the dry run passes here, without a GPU, so the
check cannot rot between GPU loans; and its judgements say pass or fail from the rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent


def check_pieces() -> SimpleNamespace:
    """The GPU check's judgements and summary (benchmarks/gpu_check_judge.py and
    gpu_check_summary.py: standard library only, as the driver imports them)."""
    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_check_judge
    import gpu_check_summary

    return SimpleNamespace(**{**vars(gpu_check_judge), **vars(gpu_check_summary)})


def dry_run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", "--work",
                           str(tmp_path / "work"), *args], env=env, capture_output=True, text=True, timeout=120)
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    return proc, summary


def fake_wheels(folder: Path) -> None:
    folder.mkdir()
    for name in ("torchao-0.18.0-cp310-abi3-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
                 "torch_pruning-1.6.1-py3-none-any.whl", "compression_harness-0.1.0-py3-none-any.whl"):
        (folder / name).write_bytes(b"")


def test_the_dry_run_validates_the_suites_and_writes_the_summary(tmp_path: Path) -> None:
    proc, summary = dry_run(tmp_path, "--skip-wheels")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert summary["verdict"]["overall"] == "DRY RUN OK", summary
    assert summary["steps"]["validate"]["status"] == "pass", summary["steps"]["validate"]
    planned = summary["steps"]["validate"]["planned_runs"]
    assert planned["gpu"] == 18 and planned["methods"] >= 20, planned  # every method, eager and compiled
    assert (tmp_path / "out" / "summary.md").read_text().startswith("# GPU check: DRY RUN OK")
    assert (tmp_path / "out" / "results.tar.gz").exists()


def test_missing_wheels_are_named(tmp_path: Path) -> None:
    check = check_pieces()
    problems, _ = check.wheel_problems(tmp_path / "nothing")
    assert "gpu_wheels.sh" in problems[0]
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "torch_pruning-1.6.1-py3-none-any.whl").write_bytes(b"")
    problems, _ = check.wheel_problems(tmp_path / "w")
    assert any("missing wheel: torchao==0.18.0" in p for p in problems), problems
    assert any("missing wheel: compression_harness" in p for p in problems), problems


def test_wheels_are_checked_for_cpython_312_manylinux_by_name(tmp_path: Path) -> None:
    check = check_pieces()
    fake_wheels(tmp_path / "w")
    assert check.wheel_problems(tmp_path / "w")[0] == []
    assert check.wheel_tag_problem("torchao-0.18.0-cp310-abi3-manylinux_2_28_x86_64.whl") is None
    assert "not CPython 3.12" in check.wheel_tag_problem("x-1.0-cp311-cp311-manylinux_2_28_x86_64.whl")
    assert "not manylinux x86_64" in check.wheel_tag_problem("x-1.0-cp312-cp312-macosx_11_0_arm64.whl")
    assert "not CPython 3.12" in check.wheel_tag_problem("x-1.0-cp313-abi3-manylinux_2_28_x86_64.whl")


def test_a_missing_wheel_fails_the_dry_run(tmp_path: Path) -> None:
    check = check_pieces()
    fake_wheels(tmp_path / "w")
    (tmp_path / "w" / "torchao-0.18.0-cp310-abi3-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl").unlink()
    problems, _ = check.wheel_problems(tmp_path / "w")
    assert problems == ["missing wheel: torchao==0.18.0 (run bash benchmarks/gpu_wheels.sh)"]
    summary = {"dry_run": True, "steps": {"wheels": {"status": "fail", "problems": problems}}}
    assert check.verdict(summary)["overall"] == "DRY RUN FAILED"
    assert "missing wheel: torchao==0.18.0" in check.markdown({**summary, "verdict": check.verdict(summary)})


def row(method: str, status: str = "ok", p50: float = 1.0, sps: float = 1000.0, **metrics) -> dict:
    base = {"latency_ms_p50": p50, "throughput_sps": sps, "gpu_peak_mem_mb": 100.0, "gpu_energy_j_per_1k": 2.0}
    return {"run_id": method, "model": "m", "method": method, "status": status, "device": "cuda",
            "metrics": {**base, **metrics} if status == "ok" else {}, "provenance": {},
            **({} if status == "ok" else {"error": f"{status}: why"})}


def test_the_judgements_follow_the_rows() -> None:
    check = check_pieces()
    rows = [row("baseline"), row("fp4", "skipped"), row("int8-weight", p50=5.0, sps=100.0),
            row("int8-weight+compile", p50=0.5, sps=900.0), row("int8-dynamic", p50=2.0),
            row("int8-dynamic+compile", p50=2.02)]
    assert check.judge_rows(rows, expected=6)["pass"]
    assert not check.judge_rows(rows, expected=7)["pass"]  # a planned run without a row
    assert not check.judge_rows(rows + [row("awq", "failed")])["pass"]
    assert not check.judge_rows([{**row("x", "skipped"), "error": ""}])["pass"]  # skipped without a reason
    assert check.judge_compiled_int8(rows)["pass"]  # 1% slower p50 is within the 3% noise allowed
    slower = rows[:-1] + [row("int8-dynamic+compile", p50=2.5)]
    assert not check.judge_compiled_int8(slower)["pass"]
    assert check.judge_nvml(rows)["pass"]
    no_energy = rows + [{**row("fp16"), "metrics": {"latency_ms_p50": 1.0, "gpu_peak_mem_mb": 1.0}}]
    assert not check.judge_nvml(no_energy)["pass"]


def test_reproducibility_is_within_3_percent_of_each_other_and_5_of_timer() -> None:
    check = check_pieces()
    timer = {"1": 0.1, "64": 0.2, "512": 1.0}
    runs = [{"1": 0.101, "64": 0.2, "512": 1.01}, {"1": 0.1, "64": 0.202, "512": 1.0},
            {"1": 0.099, "64": 0.199, "512": 0.99}]
    assert check.judge_repro(runs, timer)["pass"]
    runs[2]["64"] = 0.18  # 10% off the others
    assert not check.judge_repro(runs, timer)["pass"]
    assert not check.judge_repro(runs[:2], timer)["pass"]  # three runs needed
    summary = {"dry_run": False, "steps": {"repro": {"back-to-back": check.judge_repro(runs, timer)}}}
    assert check.verdict(summary)["overall"] == "FAIL"
    assert "FAIL" in check.markdown({**summary, "verdict": check.verdict(summary)})
