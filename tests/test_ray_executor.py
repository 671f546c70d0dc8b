"""The Ray executor runs the same workers on a (here: local) Ray cluster: warm, from a
fork server per slot; a slot whose Ray actor dies fails that run and is replaced."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness.spec import Placement

from conftest import ROOT, cli, digits_suite, run_cli

pytest.importorskip("ray")


@pytest.mark.e2e
def test_bench_on_a_local_ray_cluster(tmp_path: Path) -> None:
    suite = digits_suite(tmp_path, "ray", methods="""
        [[methods]]
        use = "test.kill-parent"
        [[methods]]
        use = "prune.magnitude"
    """)  # one slot: the run after the killed one needs the slot's replacement
    proc = run_cli("bench", str(suite), "--executor", "ray", "--jobs", "1", "--results", str(tmp_path / "r"),
                   env={"RAY_ADDRESS": "", "RAY_AUTH_MODE": "disabled", "HARNESS_PLUGINS": "ray_killer",
                        "PYTHONPATH": str(ROOT / "tests" / "plugins")})
    assert proc.returncode == 1, proc.stdout + proc.stderr  # one run failed; no traceback, the suite went on
    assert "Traceback" not in proc.stderr
    rows = {r["method"]: r for r in map(json.loads, (tmp_path / "r/ray/results.jsonl").read_text().splitlines())}
    assert sorted(rows) == ["baseline", "prune.magnitude", "test.kill-parent"]  # each stored once
    assert rows["baseline"]["status"] == rows["prune.magnitude"]["status"] == "ok"
    assert rows["baseline"]["env"]["worker_mode"] == "warm: forked from a fork server"  # each slot's own server
    killed = rows["test.kill-parent"]
    assert killed["status"] == "failed" and "the Ray task of this run died" in killed["error"]
    assert all((tmp_path / "r/ray/logs" / f"{r['run_id']}.log").exists() for r in rows.values())


def test_unknown_executor_is_one_sentence(tmp_path: Path) -> None:
    suite = digits_suite(tmp_path, "x")
    proc = cli("bench", str(suite), "--executor", "rey", "--results", str(tmp_path / "r"))
    assert proc.returncode == 2 and "unknown executor 'rey'; did you mean 'ray'?" in proc.stderr


def test_each_slot_reserves_the_runs_gpus_and_no_more_slots_than_the_cluster_holds() -> None:
    from types import SimpleNamespace

    from harness_plugins.executors.ray import plan_slots

    cuda = [SimpleNamespace(device="cuda", gpus_per_run=1.0)] * 4
    assert plan_slots(cuda, 2, {"CPU": 16, "GPU": 2}) == (8, 1.0, 2)  # one GPU each, CPUs shared
    assert plan_slots(cuda, 4, {"CPU": 16, "GPU": 2}) == (4, 1.0, 2)  # two GPUs hold two runs at once
    halves = [SimpleNamespace(device="cuda", gpus_per_run=0.5)] * 4
    assert plan_slots(halves, 4, {"CPU": 8, "GPU": 2}) == (2, 0.5, 4)  # a fraction shares a GPU
    cpu = [SimpleNamespace(device="cpu", gpus_per_run=0.0)] * 3
    assert plan_slots(cpu, 2, {"CPU": 2}) == (1, 0.0, 2)
    many = [SimpleNamespace(device="cpu", gpus_per_run=0.0)] * 8
    assert plan_slots(many, 8, {"CPU": 4}) == (1, 0.0, 4)  # actors keep their CPUs: no more slots than CPUs
    with pytest.raises(RuntimeError, match="has 0 GPUs; each run needs 1"):
        plan_slots(cuda, 2, {"CPU": 2})


def test_a_slot_gives_each_run_its_nodes_idle_power_and_ram_share_and_checks_the_nodes_paths(tmp_path: Path) -> None:
    from harness.plan import build_plan
    from harness.plugins import load_plugins
    from harness.result import RunResult
    from harness.suite import load_suite
    from harness_plugins.executors.ray import Slot

    plugins = load_plugins()
    suite = digits_suite(tmp_path, "s", measure="[measure]\nenergy = true\n", methods="[[methods]]\nuse = \"prune.magnitude\"")
    spec = next(r for r in build_plan(load_suite(suite, plugins), plugins) if r.method == "prune.magnitude")
    given = []

    class Workers:  # the slot's fork server, as far as a run goes
        def run(self, spec, log):
            given.append((spec.placement.idle, spec.placement.concurrent, spec.placement.artifacts_dir))
            return RunResult.of(spec, "ok")

    slot = Slot.__new__(Slot)  # as Ray would place it: on node "n1", its idle power measured
    slot.node, slot.ip, slot.workers = "n1", "10.0.0.1", Workers()
    slot.idle = {(spec.device, spec.measure.carbon_country): {"provenance": "measured: on Ray node n1"}}
    spec.placement.artifacts_dir = str(tmp_path / "results" / "artifacts")  # its results folder is not on this node
    result, _ = slot.run(spec, {"n1": 2, "n2": 1})
    assert given == [({"provenance": "measured: on Ray node n1"}, 2, None)]
    assert result.env["ray_node_id"] == "n1" and result.env["ray_node_ip"] == "10.0.0.1"
    assert result.steps[0]["artifact"].startswith(f"not stored for reuse: the results folder {tmp_path / 'results'} "
                                                  "is not there on Ray node 10.0.0.1")
    spec = dataclasses.replace(spec, suite_dir=str(tmp_path / "elsewhere"), placement=Placement())
    result, log = slot.run(spec, {"n1": 2})
    assert result.status == "failed" and len(given) == 1
    assert result.error == (f"the suite's folder {spec.suite_dir} is not on Ray node 10.0.0.1: put it on a "
                            "filesystem that every node mounts at the same path")
