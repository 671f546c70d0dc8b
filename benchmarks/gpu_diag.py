"""Two GPU questions the first GPU check raised, answered in about a minute:

1. What initialises CUDA in the fork server (so every CUDA run starts cold and idle power
   cannot be measured)? Each candidate import runs in a fresh interpreter, then forks: a
   child in a "bad fork" means the import touched CUDA; the first call into torch.cuda's
   initialising functions is traced.
2. Why does a launch-bound MLP's back-to-back latency vary 40 % within one process? Five
   timings with the SM clock (NVML) read around each.

    python benchmarks/gpu_diag.py > diag.txt
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

CANDIDATES = ["torch", "torchao", "torchao.quantization", "torch_pruning", "harness.worker",
              "harness_plugins.methods.quantization", "harness_plugins.methods.sparsity",
              "harness_plugins.methods.pruning", "transformers", "pynvml", "PRELOAD"]

CHILD = r"""
import os, sys, traceback, importlib
first = []
import torch
def trace(name, fn):
    def wrapped(*a, **k):
        if not first:
            first.append((name, "".join(traceback.format_stack(limit=14)[:-1])))
        return fn(*a, **k)
    return wrapped
for name in ("_lazy_init", "is_available", "device_count", "get_device_capability", "get_device_properties",
             "current_device", "init"):
    if hasattr(torch.cuda, name):
        setattr(torch.cuda, name, trace(name, getattr(torch.cuda, name)))
target = sys.argv[1]
if target == "PRELOAD":
    from harness.warm.preload import preload
    uses = ["source:builtin", "task:classification"] + [f"method:{m}" for m in (
        "quant.bf16", "quant.fp16", "quant.int8-dynamic", "quant.int8-weight", "quant.int4-weight", "quant.fp8",
        "sparse.2-4", "prune.structured")]
    preload(False, release_nvml=True, uses=uses)
elif target != "torch":
    importlib.import_module(target)
init = torch.cuda.is_initialized()
pid = os.fork()
if pid == 0:
    os._exit(3 if torch.cuda._is_in_bad_fork() else 0)
bad = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0
print("RESULT", target, "initialized" if init else "-", "BAD-FORK" if bad else "fork-ok")
if first:
    print("FIRST CALL", first[0][0]); print(first[0][1][-2500:])
"""


def fork_poisoning() -> None:
    for env_extra in ({}, {"PYTORCH_NVML_BASED_CUDA_CHECK": "1"}):
        print(f"\n=== imports, env {env_extra or 'default'} ===", flush=True)
        for target in CANDIDATES:
            env = dict(os.environ, **env_extra)
            try:
                proc = subprocess.run([sys.executable, "-c", CHILD, target], capture_output=True, text=True,
                                      timeout=90, env=env)
                out = proc.stdout.strip() or proc.stderr.strip()[-800:]
            except subprocess.TimeoutExpired:
                out = "timeout"
            print(out, flush=True)


def clock_variance() -> None:
    import pynvml
    import torch
    from torch.utils.benchmark import Timer

    from harness.config import MeasureConfig
    from harness.measure.latency import time_forward

    print("\n=== back-to-back latency vs SM clock, batch 1 ===", flush=True)
    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)

    def sm() -> int:
        return pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM)

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 768), torch.nn.ReLU(), torch.nn.Linear(768, 768),
                                torch.nn.ReLU(), torch.nn.Linear(768, 10)).cuda().eval()
    x = torch.randn(1, 64, device="cuda")
    rows = []
    for timing in ("back-to-back", "per-call"):
        config = MeasureConfig(warmup_s=0.5, min_time_s=1.0, max_time_s=5.0, timing=timing)
        for _ in range(4):
            before = sm()
            stats = time_forward(model, x, config, "cuda", None)
            rows.append({"timing": timing, "p50_ms": round(stats["p50_ms"], 5), "sm_before": before, "sm_after": sm(),
                         "cpu": os.sched_getaffinity(0).__len__()})
            print(json.dumps(rows[-1]), flush=True)
    with torch.inference_mode():
        for _ in range(2):
            before = sm()
            t = Timer("model(x)", globals={"model": model, "x": x}).blocked_autorange(min_run_time=1.0)
            print(json.dumps({"timing": "Timer", "median_ms": round(t.median * 1e3, 5), "sm_before": before,
                              "sm_after": sm()}), flush=True)
    print("clocks:", {k: getattr(pynvml, k) for k in dir(pynvml) if k == "NVML_CLOCK_SM"},
          "max SM", pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM),
          "applications SM", pynvml.nvmlDeviceGetApplicationsClock(handle, pynvml.NVML_CLOCK_SM), flush=True)


if __name__ == "__main__":
    fork_poisoning()
    clock_variance()
