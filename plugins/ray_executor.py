"""The ``ray`` executor: each run is a Ray task that starts the same worker process
on whichever node Ray picks. Connects to ``$RAY_ADDRESS`` or starts a local Ray."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray  # an ImportError here tells the user to install harness[ray]

from harness.executor import run_in_subprocess
from harness.plan import RunSpec


def _run_remote(spec_dict: dict[str, Any]) -> tuple[dict[str, Any], str]:
    spec = RunSpec.from_dict(spec_dict)
    log = Path(tempfile.mkdtemp(prefix="harness-ray-")) / f"{spec.run_id}.log"
    row = run_in_subprocess(spec, log)
    return row, log.read_text(errors="replace") if log.exists() else ""


class RayExecutor:
    name = "ray"

    def __init__(self, jobs: int = 1):
        self.jobs = max(1, jobs)

    def run(self, runs: list[RunSpec], log_dir: Path, on_start: Callable[[RunSpec], None],
            on_result: Callable[[RunSpec, dict[str, Any]], None]) -> None:
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, ignore_reinit_error=True,
                 log_to_driver=False)
        # Each run reserves an equal share of the cluster's CPUs and uses that many threads.
        cpus = int(ray.cluster_resources().get("CPU", 1))
        per_run = max(1, cpus // self.jobs)
        remote = ray.remote(num_cpus=per_run, max_retries=0)(_run_remote)
        pending: dict[Any, RunSpec] = {}
        queue = list(runs)
        log_dir.mkdir(parents=True, exist_ok=True)
        while queue or pending:
            while queue and len(pending) < self.jobs:
                spec = queue.pop(0)
                spec.threads = per_run
                on_start(spec)
                pending[remote.remote(spec.to_dict())] = spec
            done, _ = ray.wait(list(pending), num_returns=1)
            spec = pending.pop(done[0])
            row, log = ray.get(done[0])
            (log_dir / f"{spec.run_id}.log").write_text(log)
            on_result(spec, row)
