"""The local executor: runs on this machine, ``--jobs`` at a time, each in its own worker
process (:mod:`harness.supervise`), forked from one fork server per suite where it can.

Scheduling: with ``device = "cuda"`` each run at a time owns one GPU: its worker sees that
GPU alone (``CUDA_VISIBLE_DEVICES``), so ``cuda`` in the run is that GPU, and at most as
many runs go at once as there are GPUs (``--jobs`` beyond that queue; :mod:`harness.gpus`).
CPU threads are split evenly between the runs at a time; the machine's RAM power, between
the runs that ran during each energy window (:mod:`harness.measure.concurrency`). Only the
caller's ``on_result`` stores results.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from harness.api import Executor
from harness.gpus import GpuPool, placement
from harness.machine import usable_cores
from harness.measure.concurrency import RUNNING_FILE_VAR, RunningLog
from harness.process import run_dir, runs_root
from harness.result import RunResult
from harness.spec import RunSpec
from harness.supervise import INTERRUPTED
from harness.workers import Workers


class LocalExecutor(Executor):
    """Runs on this machine, ``jobs`` at a time (one per GPU on CUDA), splitting CPU
    threads between them."""

    name = "local"
    description = "runs on this machine, --jobs at a time (one per GPU), each in its own process"

    def __init__(self, jobs: int = 1):
        super().__init__(jobs)
        self.stop = threading.Event()
        self.workers = Workers()  # the driver's model preparation and idle power fork from it too

    def warm_up(self, runs: list[RunSpec]) -> None:
        self.workers.start(runs)  # torch and the plugins load while the driver prepares models

    def run(self, runs: list[RunSpec], log_dir: Path, on_start: Callable[[RunSpec], None],
            on_result: Callable[[RunSpec, RunResult], None]) -> None:
        slots, note = placement(runs[0].device if runs else "cpu", self.jobs)
        if note:
            print(f"note: {note}", file=sys.stderr, flush=True)
        gpus, at_once = GpuPool(slots), len(slots)
        threads = max(1, usable_cores() // at_once) if at_once > 1 else 0
        concurrent = max(1, min(at_once, len(runs)))  # runs that may share this machine's RAM at once
        lock = threading.Lock()
        scratch = ExitStack()  # the running log's folder, removed at the end
        running = RunningLog(scratch.enter_context(run_dir(runs_root())) / "running")  # read by each run's energy
        env = {RUNNING_FILE_VAR: str(running.path)}

        def one(spec: RunSpec) -> None:
            if self.stop.is_set():
                return
            spec.placement.threads, spec.placement.concurrent = threads, concurrent
            with lock:
                on_start(spec)
            running.change(+1)
            try:
                with gpus.take() as gpu:
                    result = self.workers.run(spec, log_dir / f"{spec.run_id}.log", self.stop, gpu, env)
            finally:
                running.change(-1)
            if self.stop.is_set() and result.error == INTERRUPTED:
                return  # not a result: it will run next time
            with lock:
                try:
                    on_result(spec, result)
                except BaseException:  # the driver could not store it (results lost): start nothing more
                    self.stop.set()
                    raise

        self.warm_up(runs)  # each run waits for the server to be ready
        try:
            with ThreadPoolExecutor(max_workers=at_once) as pool:
                futures = [pool.submit(one, spec) for spec in runs]
                try:
                    for future in futures:
                        future.result()
                except BaseException:  # Ctrl-C, or a result the driver could not store
                    self.stop.set()
                    for future in futures:
                        future.cancel()
                    raise
        finally:
            self.workers.close()
            scratch.close()
