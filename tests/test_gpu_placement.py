"""One run per GPU: the local executor gives each run at a time its own GPU through
``CUDA_VISIBLE_DEVICES`` (set in the worker's environment, before CUDA starts), found
without initialising CUDA in the driver.

In CI the GPUs are a stand-in (the discovery function returns two fake UUIDs) and each
worker is a real process that prints the GPU it sees and when it ran; the ``cuda`` test
runs a real worker on a real GPU where one is."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from harness import gpus, supervise
from harness.executor import LocalExecutor
from harness.plan import build_plan
from harness.plugins import load_plugins
from harness.suite import load_suite

from conftest import digits_suite


def test_cuda_visible_devices_is_read_as_cuda_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, GPU-8a1b,MIG-c3d4")
    assert gpus.visible_gpus() == ["2", "GPU-8a1b", "MIG-c3d4"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,3,-1,1")  # CUDA stops at an invalid entry
    assert gpus.visible_gpus() == ["0", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpus.visible_gpus() == []


class FakeNvml:
    """pynvml's calls that GPU discovery makes, for two GPUs (the second maybe in MIG mode)."""

    def __init__(self, mig: bool = False):
        self.mig, self.inits = mig, 0

    def nvmlInit(self) -> None:
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.inits -= 1

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetUUID(self, handle: int) -> bytes:
        return f"GPU-{handle}abc".encode()

    def nvmlDeviceGetMigMode(self, handle: int) -> tuple[int, int]:
        return (1, 1) if self.mig and handle == 1 else (0, 0)


def test_without_cuda_visible_devices_the_gpus_are_nvmls_by_uuid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    nvml = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert gpus.visible_gpus() == ["GPU-0abc", "GPU-1abc"] and nvml.inits == 0  # opened and closed again
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(mig=True))
    with pytest.raises(gpus.GpusUnknown, match="GPU-1abc is in MIG mode: list its MIG devices"):
        gpus.visible_gpus()


def test_placement_is_one_run_per_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpus, "visible_gpus", lambda: ["GPU-a", "GPU-b"])
    assert gpus.placement("cuda", 2) == (["GPU-a", "GPU-b"], "")
    assert gpus.placement("cuda", 1) == (["GPU-a"], "")
    slots, note = gpus.placement("cuda", 4)  # more jobs than GPUs: two at a time, the rest queue
    assert slots == ["GPU-a", "GPU-b"] and note == "--jobs 4 but 2 GPUs: 2 runs at a time, one per GPU"
    slots, note = gpus.placement("cuda:1", 3)  # one named GPU: runs take turns, seeing what the driver sees
    assert slots == [None] and "runs take turns on it" in note
    assert gpus.placement("cpu", 3) == ([None] * 3, "")

    def unknown() -> list[str]:
        raise gpus.GpusUnknown("nvidia-ml-py is not installed")

    monkeypatch.setattr(gpus, "visible_gpus", unknown)
    slots, note = gpus.placement("cuda", 2)
    assert slots == [None, None] and "cannot list the GPUs (nvidia-ml-py is not installed)" in note


PROBE = """
import json, os, sys, time
t0 = time.time(); time.sleep(0.4)
print("PROBE " + json.dumps({"gpu": os.environ.get("CUDA_VISIBLE_DEVICES"), "t0": t0, "t1": time.time()}))
"""


def test_two_jobs_on_two_gpus_run_at_once_each_on_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each worker is a real process started with the environment the executor made for it."""
    monkeypatch.setenv("HARNESS_WORKERS", "cold")  # no fork server: the probe stands in for the worker
    monkeypatch.setattr(gpus, "visible_gpus", lambda: ["GPU-aaaa", "GPU-bbbb"])
    monkeypatch.setattr(supervise, "python_command", lambda *args: [sys.executable, "-c", PROBE])
    plugins = load_plugins()
    suite = load_suite(digits_suite(tmp_path, "gpus", methods='[[methods]]\nuse = "prune.magnitude"\n'
                                    '[[methods]]\nuse = "quant.int8-dynamic"\n'), plugins)
    runs = [dataclasses.replace(run, device="cuda") for run in build_plan(suite, plugins)]  # planned on CPU
    results = []
    LocalExecutor(jobs=2).run(runs, tmp_path / "logs", lambda spec: None, lambda spec, r: results.append(r))
    assert len(results) == 3
    probes = []
    for run in runs:
        line = next(ln for ln in (tmp_path / "logs" / f"{run.run_id}.log").read_text().splitlines()
                    if ln.startswith("PROBE "))
        probes.append(json.loads(line[len("PROBE "):]))
    assert {p["gpu"] for p in probes} == {"GPU-aaaa", "GPU-bbbb"}
    for a in probes:  # runs that overlapped in time had different GPUs
        for b in probes:
            if a is not b and a["t0"] < b["t1"] and b["t0"] < a["t1"]:
                assert a["gpu"] != b["gpu"]
    first, second = sorted(probes, key=lambda p: p["t0"])[:2]
    assert second["t0"] < first["t1"], "the first two runs did not run at once"
    assert all(run.placement.threads >= 1 and run.placement.concurrent == 2 for run in runs)


@pytest.mark.e2e
@pytest.mark.cuda
@pytest.mark.skipif(not Path("/proc/driver/nvidia").exists(), reason="needs an NVIDIA GPU")
@pytest.mark.parametrize("mode", ["warm", "cold"])
def test_a_cuda_run_sees_and_measures_the_gpu_it_was_given(tmp_path: Path, mode: str) -> None:
    from conftest import cli

    given = gpus.visible_gpus()[-1]  # by NVML UUID (or the driver's CUDA_VISIBLE_DEVICES entry)
    suite = digits_suite(tmp_path, "gpu1", suite='device = "cuda"')
    proc = cli("bench", str(suite), "--results", str(tmp_path / "r"), env={"HARNESS_WORKERS": mode})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = json.loads((tmp_path / "r/gpu1/results.jsonl").read_text().splitlines()[0])
    assert row["status"] == "ok" and row["env"]["worker_mode"].startswith(mode), row["env"]
    if given.startswith("GPU-"):  # the GPU NVML measured is the one the run was given
        assert given in json.dumps(row), "the run's GPU state names another GPU"
