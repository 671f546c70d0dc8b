"""Does structured pruning make the digits models faster? Batch-64 latency before and
after ``prune.structured`` (amount 0.5), timed like the harness times every run.

    .venv/bin/python benchmarks/structured_pruning.py [--amount 0.5] [--batch 64]

Prints the median latencies and their ratio per model. A benchmark, not a test: the
figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--amount", type=float, default=0.5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--models", nargs="+", default=["digits-mlp", "digits-cnn"])
    args = parser.parse_args()

    import torch

    from harness.api import RunContext
    from harness.measure.latency import TimingPolicy, time_forward
    from harness.measure.model_stats import count_params
    from harness_plugins.methods.pruning.structured import Structured, StructuredParams
    from harness_plugins.sources.builtin.digits import load_trained
    from harness_plugins.tasks.classification import ClassificationConfig, ClassificationData

    task = ClassificationData(ClassificationConfig("digits"), "cpu")
    ctx = RunContext(device="cpu", seed=0, work_dir=Path(tempfile.mkdtemp()), suite_dir=Path("."), task=task)
    policy = TimingPolicy(warmup_s=0.5, min_time_s=2.0, min_iterations=50)
    example = task.example_input(args.batch)
    for ref in args.models:
        model = load_trained(ref)
        before = time_forward(model, example, policy, "cpu")
        params_before = count_params(model)
        torch.manual_seed(0)
        pruned, _ = Structured().apply(model, StructuredParams(amount=args.amount), ctx)
        after = time_forward(pruned.eval(), example, policy, "cpu")
        print(f"{ref}: params {params_before} -> {count_params(pruned)}; batch-{args.batch} latency "
              f"{before['median_ms']:.3f} ms -> {after['median_ms']:.3f} ms; "
              f"ratio pruned/baseline = {after['median_ms'] / before['median_ms']:.2f}"
              f" (accuracy {task.evaluate(pruned)['accuracy']:.3f})")


if __name__ == "__main__":
    main()
