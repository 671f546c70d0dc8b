"""The harness's ONNX Runtime figures against ONNX Runtime used directly.

Runs ``suites/runtimes.toml``'s onnxruntime rows of the digits CNN (or the suite given),
then, for each ok row, loads the ``.onnx`` the harness kept (``exported_graph``) into a
session of its own (same thread count) and:

- evaluates the task's test split with it: the accuracy must equal the harness's exactly;
- times ``session.run`` on the same example batch with ``torch.utils.benchmark.Timer``
  (``blocked_autorange``), interleaved with nothing else, and prints its median over the
  harness's ``latency`` median at each batch size (goal: within ±10 %).

    .venv/bin/python benchmarks/ort_independent.py [suite.toml] [--only PATTERN]

Run it on a quiet machine: it prints ratios, it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("suite", nargs="?", default=str(ROOT / "suites" / "runtimes.toml"))
    parser.add_argument("--only", default="digits-cnn/*@onnxruntime/*")
    parser.add_argument("--results", help="check the rows of an earlier bench (its --results folder) instead")
    args = parser.parse_args()
    import numpy as np
    import onnxruntime as ort
    import torch
    from torch.utils.benchmark import Timer

    from harness.api import RunContext
    from harness.plugins import load_plugins
    from harness.spec import TaskSpec

    results = Path(tempfile.mkdtemp(prefix="ort-independent-"))
    if not args.results:
        subprocess.run([sys.executable, "-m", "harness.cli", "bench", args.suite, "--results", str(results),
                        "--only", args.only], check=True)
    else:
        results = Path(args.results)
    rows = [json.loads(line) for path in results.glob("*/results.jsonl") for line in path.read_text().splitlines()]
    plugins = load_plugins()
    print(f"{'run':44} {'accuracy harness':>17} {'direct':>8}  batch  p50 harness ms  direct ms  ratio")
    for row in rows:
        if row["status"] != "ok" or "exported_graph" not in row["metrics"]:
            continue
        spec = row["spec"]
        threads = spec["measure"].get("threads") or torch.get_num_threads()
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(row["metrics"]["exported_graph"], options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        kind = plugins.lookup("task", spec["task"]["kind"])()
        config = TaskSpec.from_dict(spec["task"], plugins.schema_of).config
        with tempfile.TemporaryDirectory() as work:
            task = kind.prepare(config, RunContext("cpu", spec["seed"], Path(work), Path(spec["suite_dir"])))
        x, y = task.x.numpy(), task.y.numpy()
        logits = np.concatenate([session.run(None, {name: x[i:i + 64]})[0] for i in range(0, len(x), 64)])
        direct = float((logits.argmax(1) == y).mean())
        label = f"{row['model']} · {row['method']}"
        for batch, figures in sorted(row["metrics"]["latency"].items(), key=lambda kv: int(kv[0])):
            feed = {name: task.example_input(int(batch)).numpy()}
            timer = Timer("session.run(None, feed)", globals={"session": session, "feed": feed}, num_threads=threads)
            median_ms = timer.blocked_autorange(min_run_time=2.0).median * 1e3
            print(f"{label:44} {row['metrics']['accuracy']:17.4f} {direct:8.4f}  {batch:>5}  {figures['p50_ms']:13.4f}  "
                  f"{median_ms:9.4f}  {median_ms / figures['p50_ms']:5.2f}")
        if direct != row["metrics"]["accuracy"]:
            print(f"  ACCURACY DIFFERS for {label}: harness {row['metrics']['accuracy']} vs direct {direct}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
