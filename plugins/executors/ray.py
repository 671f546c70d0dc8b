"""The ``ray`` executor: each run is a Ray task that starts the same worker process
on whichever node Ray picks. Connects to ``$RAY_ADDRESS`` or starts a local Ray.

Imported only when a suite asks for the ``ray`` executor: ``import ray`` at the top is
deliberate (an ImportError here tells the user to install compression-harness[ray])."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray  # an ImportError here tells the user to install compression-harness[ray]

from harness.api import Executor
from harness.toolkit import RunResult, RunSpec, run_isolated


def _run_remote(spec: RunSpec) -> tuple[RunResult, str]:
    """Run ``spec`` in a worker process on this node; return its result and its log."""
    with tempfile.TemporaryDirectory(prefix="harness-ray-") as tmp:
        log = Path(tmp) / f"{spec.run_id}.log"
        result = run_isolated(spec, log)
        return result, log.read_text(errors="replace") if log.exists() else ""


class RayExecutor(Executor):
    name = "ray"
    description = "each run a Ray task on whichever node Ray picks ($RAY_ADDRESS, or a local Ray)"

    def run(self, runs: list[RunSpec], log_dir: Path, on_start: Callable[[RunSpec], None],
            on_result: Callable[[RunSpec, RunResult], None]) -> None:
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, ignore_reinit_error=True,
                 log_to_driver=False)
        # Each run reserves an equal share of the cluster's CPUs and uses that many threads.
        cpus = int(ray.cluster_resources().get("CPU", 1))
        per_run = max(1, cpus // self.jobs)
        remote = ray.remote(num_cpus=per_run, max_retries=0)(_run_remote)
        pending: dict[Any, RunSpec] = {}
        queue = list(runs)
        log_dir.mkdir(parents=True, exist_ok=True)
        try:
            while queue or pending:
                while queue and len(pending) < self.jobs:
                    spec = queue.pop(0)
                    spec.threads = per_run
                    on_start(spec)
                    pending[remote.remote(spec)] = spec
                done, _ = ray.wait(list(pending), num_returns=1)
                spec = pending.pop(done[0])
                result, log = _outcome(done[0], spec)
                (log_dir / f"{spec.run_id}.log").write_text(log)
                on_result(spec, result)
        finally:
            for ref in pending:  # interrupted, or the driver failed: stop what still runs
                ray.cancel(ref, force=True)


def _outcome(ref: Any, spec: RunSpec) -> tuple[RunResult, str]:
    """The task's (result, log); a dead Ray worker, a lost node or object becomes this
    run's failed result, and the suite goes on."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        error = f"the Ray task of this run died ({type(exc).__name__}: {first})"
        return RunResult.of(spec, "failed", error), error + "\n"
