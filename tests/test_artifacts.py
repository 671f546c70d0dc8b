"""Compress once per (model, method): the second task's run loads the first one's
compressed model, and its figures equal compressing afresh."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from harness.artifacts import ArtifactStore
from harness.plan import build_plan
from harness.plugins import load_plugins
from harness.suite import load_suite
from harness.worker import run

from conftest import QUICK_MEASURE, cli, write_suite

SUITE = f"""
[suite]
name = "reuse"
{QUICK_MEASURE}
[[models]]
name = "mlp"
source = "builtin"
ref = "digits-mlp"

[[tasks]]
name = "digits"
kind = "classification"
dataset = "digits"

[[tasks]]
name = "agree"
kind = "fidelity"
dataset = "digits"

[[methods]]
name = "magnitude"
use = "prune.magnitude"
params = {{ amount = 0.6 }}
"""


def rows(path: Path) -> dict[tuple[str, str], dict]:
    return {(r["method"], r["task"]): r for r in map(json.loads, path.read_text().splitlines())}


@pytest.mark.e2e
def test_the_second_task_reuses_the_compressed_model_and_gets_the_same_figures(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, SUITE)
    assert cli("bench", str(suite), "--results", str(tmp_path / "a"), "--only", "magnitude").returncode == 0
    reused = rows(tmp_path / "a" / "reuse" / "results.jsonl")
    first, second = reused[("magnitude", "digits")], reused[("magnitude", "agree")]
    assert first["steps"][0]["artifact"].startswith("stored as artifact")
    assert second["steps"][0]["artifact"].startswith(f"reused: compressed once by run {first['run_id']} (task digits)")
    assert second["metrics"]["compress_s"] == first["metrics"]["compress_s"]
    assert "reused" in second["provenance"]["compress_s"]
    assert second["steps"][0]["info"] == first["steps"][0]["info"]
    # the same run compressed afresh (no artifacts; in this process) gives the same figures
    plugins = load_plugins()
    spec = next(r for r in build_plan(load_suite(suite, plugins), plugins) if r.label == "mlp · magnitude · agree")
    alone = run(spec, plugins)
    assert alone.status == "ok" and "artifact" not in alone.steps[0]
    for key in ("top1_agreement", "sparsity", "size_mb", "params"):
        assert alone.metrics[key] == second["metrics"][key], key
    # a mean of float32 divergences: another process may sum it in another order (last digits)
    assert alone.metrics["kl_div_mean"] == pytest.approx(second["metrics"]["kl_div_mean"], rel=1e-4)
    # one speed for the compressed model: timed by the first task's run, reused by the second's
    assert second["metrics"]["latency_ms_p50"] == first["metrics"]["latency_ms_p50"]
    assert f"reused: timed once by run {first['run_id']} (task digits)" in second["provenance"]["throughput_sps"]
    cleaned = cli("clean", str(tmp_path / "a"))
    assert cleaned.returncode == 0 and "removed 3 files" in cleaned.stdout  # model, meta, timing
    assert list((tmp_path / "a" / "reuse" / "artifacts").iterdir()) == []


def test_a_model_that_cannot_be_pickled_is_not_stored_and_says_why(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 2)
    model.hook = lambda x: x  # a lambda: pickle refuses it
    why = ArtifactStore(tmp_path).save("k", model, {"run_id": "r"})
    assert why is not None and why.startswith("the compressed model cannot be pickled")
    assert list(tmp_path.iterdir()) == [] and ArtifactStore(tmp_path).load("k", "cpu") is None


def test_an_artifact_round_trips_with_identical_outputs(tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()).eval()
    store = ArtifactStore(tmp_path)
    assert store.save("k", model, {"run_id": "r", "steps": []}) is None
    loaded, meta = store.load("k", "cpu")
    x = torch.randn(5, 4)
    assert torch.equal(loaded(x), model(x)) and meta["run_id"] == "r"
    assert store.clean() == 2 and store.load("k", "cpu") is None
