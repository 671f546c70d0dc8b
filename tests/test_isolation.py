"""A plugin that raises, crashes, runs out of memory or does not even import fails only its
own run; the suite goes on (the shared misbehaving bench, tests/conftest.py)."""

from __future__ import annotations

import pytest

from conftest import cli

pytestmark = pytest.mark.e2e  # runs `harness bench`


def test_misbehaving_methods_become_rows_and_the_suite_goes_on(misbehave_bench) -> None:
    proc, rows, root = misbehave_bench["proc"], misbehave_bench["rows"], misbehave_bench["root"]
    log = root / "hook.log"
    assert proc.returncode == 1, proc.stderr  # failures are reported by the exit code
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

    board = cli("leaderboard", str(root / "results" / "misbehave"))
    assert board.returncode == 0
    assert "failed" in board.stdout and "skipped" in board.stdout


