"""The Ray executor runs the same workers on a (here: local) Ray cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import FAST_MEASURE, run_cli, write_suite

pytest.importorskip("ray")


def test_bench_on_a_local_ray_cluster(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, f"""
        [suite]
        name = "ray"
        {FAST_MEASURE}
        [[models]]
        name = "mlp"
        source = "builtin"
        ref = "digits-mlp"
        [[tasks]]
        name = "digits"
        kind = "classification"
        dataset = "digits"
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
    suite = write_suite(tmp_path, """
        [suite]
        name = "x"
        [[models]]
        name = "mlp"
        source = "builtin"
        ref = "digits-mlp"
        [[tasks]]
        name = "digits"
        kind = "classification"
        dataset = "digits"
    """)
    proc = run_cli("bench", str(suite), "--executor", "rey", "--results", str(tmp_path / "r"))
    assert proc.returncode == 2 and "unknown executor 'rey'; did you mean 'ray'?" in proc.stderr
