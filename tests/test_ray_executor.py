"""The Ray executor runs the same workers on a (here: local) Ray cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import ROOT, cli, digits_suite, run_cli

pytest.importorskip("ray")


@pytest.mark.e2e
def test_bench_on_a_local_ray_cluster(tmp_path: Path) -> None:
    suite = digits_suite(tmp_path, "ray", methods="""
        [[methods]]
        use = "prune.magnitude"
        [[methods]]
        use = "test.kill-parent"
    """)
    proc = run_cli("bench", str(suite), "--executor", "ray", "--jobs", "2", "--results", str(tmp_path / "r"),
                   env={"RAY_ADDRESS": "", "RAY_AUTH_MODE": "disabled", "HARNESS_PLUGINS": "ray_killer",
                        "PYTHONPATH": str(ROOT / "tests" / "plugins")})
    assert proc.returncode == 1, proc.stdout + proc.stderr  # one run failed; no traceback, the suite went on
    assert "Traceback" not in proc.stderr
    rows = {r["method"]: r for r in map(json.loads, (tmp_path / "r/ray/results.jsonl").read_text().splitlines())}
    assert sorted(rows) == ["baseline", "prune.magnitude", "test.kill-parent"]  # each stored once
    assert rows["baseline"]["status"] == rows["prune.magnitude"]["status"] == "ok"
    killed = rows["test.kill-parent"]
    assert killed["status"] == "failed" and "the Ray task of this run died" in killed["error"]
    assert all((tmp_path / "r/ray/logs" / f"{r['run_id']}.log").exists() for r in rows.values())


def test_unknown_executor_is_one_sentence(tmp_path: Path) -> None:
    suite = digits_suite(tmp_path, "x")
    proc = cli("bench", str(suite), "--executor", "rey", "--results", str(tmp_path / "r"))
    assert proc.returncode == 2 and "unknown executor 'rey'; did you mean 'ray'?" in proc.stderr
