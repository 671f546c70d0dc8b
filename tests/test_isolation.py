"""A plugin that raises, crashes, hangs, runs out of memory or does not even import
fails only its own run; the suite goes on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import ROOT, cli, digits_suite, run_cli

pytestmark = pytest.mark.e2e  # runs `harness bench`

PLUGIN_ENV = {"HARNESS_PLUGINS": "misbehave", "PYTHONPATH": str(ROOT / "tests" / "plugins")}
# one bench serves the misbehaving methods, a plugin that fails to import, and a skip
MERGED_ENV = PLUGIN_ENV | {"HARNESS_PLUGINS": "misbehave,broken_import"}


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
        use = "test.os-exit"
        [[methods]]
        use = "test.skip"
        [[methods]]
        use = "broken.method"
        [[methods]]
        name = "awq4"
        use = "quant.awq"
        params = { bits = 4 }
        [[methods]]
        use = "quant.int8-dynamic"
    """)
    log = tmp_path / "hook.log"
    proc = run_cli("bench", str(suite), "--results", str(tmp_path / "results"), "--jobs", "2",
                   env=MERGED_ENV | {"MISBEHAVE_RESULT_LOG": str(log)})
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
    assert rows["test.os-exit"]["status"] == "failed"  # no exception, no result: still a row
    assert "exited with code 3" in rows["test.os-exit"]["error"] and "leaving now" in rows["test.os-exit"]["error"]
    assert rows["test.skip"]["status"] == "skipped"
    assert "needs hardware" in rows["test.skip"]["error"]
    # a plugin that fails to import: a warning up front, only the runs that use it fail
    assert "warning" in proc.stderr and "broken_import" in proc.stderr
    assert rows["broken.method"]["status"] == "failed" and "broken_import" in rows["broken.method"]["error"]
    # a method may skip from apply when its params cannot run here
    assert rows["awq4"]["status"] == "skipped"
    assert rows["awq4"]["error"].startswith("quant.awq: bits = 4 needs CUDA")
    for row in rows.values():  # every row is complete enough to show
        assert {"run_id", "suite", "model", "task", "method", "status", "started_at", "duration_s"} <= set(row)
    # the harness_result hook saw every stored row
    assert sorted(log.read_text().split("\n")[:-1]) == sorted(f"{m} {r['status']}" for m, r in rows.items())

    board = cli("leaderboard", str(tmp_path / "results/misbehave"))
    assert board.returncode == 0
    assert "failed" in board.stdout and "skipped" in board.stdout


