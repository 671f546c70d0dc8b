"""The Ray executor runs the same workers on a (here: local) Ray cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import cli, digits_suite, run_cli

pytest.importorskip("ray")


@pytest.mark.e2e
def test_bench_on_a_local_ray_cluster(tmp_path: Path) -> None:
    suite = digits_suite(tmp_path, "ray", methods="""
        [[methods]]
        use = "prune.magnitude"
    """)
    proc = run_cli("bench", str(suite), "--executor", "ray", "--jobs", "2", "--results", str(tmp_path / "r"),
                   env={"RAY_ADDRESS": "", "RAY_AUTH_MODE": "disabled"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [json.loads(line) for line in (tmp_path / "r/ray/results.jsonl").read_text().splitlines()]
    assert sorted(r["method"] for r in rows) == ["baseline", "prune.magnitude"]
    assert all(r["status"] == "ok" for r in rows)
    assert all((tmp_path / "r/ray/logs" / f"{r['run_id']}.log").exists() for r in rows)


def test_unknown_executor_is_one_sentence(tmp_path: Path) -> None:
    suite = digits_suite(tmp_path, "x")
    proc = cli("bench", str(suite), "--executor", "rey", "--results", str(tmp_path / "r"))
    assert proc.returncode == 2 and "unknown executor 'rey'; did you mean 'ray'?" in proc.stderr
