"""A plugin that raises, crashes, hangs or runs out of memory fails only its own run."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import ROOT, digits_suite, run_cli

PLUGIN_ENV = {"HARNESS_PLUGINS": "misbehave", "PYTHONPATH": str(ROOT / "tests" / "plugins")}


def test_misbehaving_methods_become_rows_and_the_suite_goes_on(tmp_path: Path) -> None:
    suite = digits_suite(tmp_path, "misbehave", suite="timeout_s = 120", methods="""
        [[methods]]
        use = "test.raise"
        [[methods]]
        use = "test.segfault"
        [[methods]]
        use = "test.oom"
        [[methods]]
        use = "test.oom-killed"
        [[methods]]
        use = "test.skip"
        [[methods]]
        use = "quant.int8-dynamic"
    """)
    log = tmp_path / "hook.log"
    proc = run_cli("bench", str(suite), "--results", str(tmp_path / "results"),
                   env=PLUGIN_ENV | {"MISBEHAVE_RESULT_LOG": str(log)})
    assert proc.returncode == 1, proc.stderr  # failures are reported by the exit code
    rows = {r["method"]: r for r in map(json.loads, (tmp_path / "results/misbehave/results.jsonl").read_text().splitlines())}

    assert rows["baseline"]["status"] == "ok"
    assert rows["quant.int8-dynamic"]["status"] == "ok"  # ran after all the failures
    assert rows["test.raise"]["status"] == "failed"
    assert "RuntimeError: this method always fails" in rows["test.raise"]["error"]
    assert rows["test.segfault"]["status"] == "failed"
    assert "SIGSEGV" in rows["test.segfault"]["error"]
    assert "about to crash" in rows["test.segfault"]["error"]  # the tail of its output
    assert rows["test.oom"]["status"] == "failed"
    assert "MemoryError" in rows["test.oom"]["error"]
    assert rows["test.oom-killed"]["status"] == "failed"
    assert "SIGKILL" in rows["test.oom-killed"]["error"] and "out of memory" in rows["test.oom-killed"]["error"]
    assert rows["test.skip"]["status"] == "skipped"
    assert "needs hardware" in rows["test.skip"]["error"]
    for row in rows.values():  # every row is complete enough to show
        assert {"run_id", "suite", "model", "task", "method", "status", "started_at", "duration_s"} <= set(row)
    # the harness_result hook saw every stored row
    assert sorted(log.read_text().split("\n")[:-1]) == sorted(f"{m} {r['status']}" for m, r in rows.items())

    board = run_cli("leaderboard", str(tmp_path / "results/misbehave"))
    assert board.returncode == 0
    assert "failed" in board.stdout and "skipped" in board.stdout


def test_a_hanging_run_is_killed_at_the_timeout(tmp_path: Path) -> None:
    suite = digits_suite(tmp_path, "hang", suite="timeout_s = 8", methods="""
        [[methods]]
        use = "test.hang"
    """)
    proc = run_cli("bench", str(suite), "--results", str(tmp_path / "results"), "--only", "test.hang", env=PLUGIN_ENV)
    assert proc.returncode == 1
    row = json.loads((tmp_path / "results/hang/results.jsonl").read_text())
    assert row["status"] == "timeout"
    assert "timeout_s = 8" in row["error"] and "hanging now" in row["error"]
    assert 8 <= row["duration_s"] < 30


def test_a_method_can_skip_from_apply_when_its_params_cannot_run_here(tmp_path: Path) -> None:
    suite = digits_suite(tmp_path, "skip", methods="""
        [[methods]]
        name = "awq4"
        use = "quant.awq"
        params = { bits = 4 }
    """)
    proc = run_cli("bench", str(suite), "--results", str(tmp_path / "r"), "--only", "awq4")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = json.loads((tmp_path / "r/skip/results.jsonl").read_text())
    assert row["status"] == "skipped"
    assert row["error"].startswith("quant.awq: bits = 4 needs CUDA")
