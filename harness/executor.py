"""Run each RunSpec in its own worker process, N at a time.

A worker that raises writes a ``failed`` result itself; one that dies (segfault, abort,
out-of-memory kill) or overstays the suite's ``timeout_s`` gets its result made here,
with the tail of its output. Only the caller's ``on_result`` stores results.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from harness.api import Executor
from harness.machine import usable_cores
from harness.result import RunResult
from harness.spec import RunSpec

TAIL_LINES = 30


def _tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _death(returncode: int) -> str:
    if returncode < 0:
        sig = -returncode
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        hint = " (likely out of memory: the kernel's OOM killer sends SIGKILL)" if sig == signal.SIGKILL else ""
        return f"worker killed by signal {name}{hint}"
    return f"worker exited with code {returncode} without writing a result"


INTERRUPTED = "interrupted by the user"


def run_in_subprocess(spec: RunSpec, log_path: Path, stop: threading.Event | None = None) -> RunResult:
    """Run ``spec`` in a fresh Python process; always return its result."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="harness-run-") as tmp:
        spec_path, result_path = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        spec_path.write_text(json.dumps(spec.to_dict()))
        env = dict(os.environ)
        if spec.threads:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(spec.threads)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "harness.worker", str(spec_path), str(result_path)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, start_new_session=True,  # its own process group: kill it whole
            )
            deadline = t0 + spec.timeout_s
            timed_out = interrupted = False
            try:
                while proc.poll() is None:
                    timed_out = time.monotonic() > deadline
                    interrupted = stop is not None and stop.is_set()
                    if timed_out or interrupted:
                        break
                    time.sleep(0.05)
            finally:
                if proc.poll() is None:  # timeout, interrupt, or an error in this thread
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait()
        timing = {"started": started, "duration_s": time.monotonic() - t0}
        if timed_out:
            return RunResult.of(spec, "timeout", f"run exceeded timeout_s = {spec.timeout_s:g} and was killed\n"
                                f"{_tail(log_path)}", **timing)
        if interrupted:
            return RunResult.of(spec, "failed", INTERRUPTED, **timing)
        if result_path.exists():
            result = RunResult.from_row(json.loads(result_path.read_text()))
            tail = _tail(log_path, 10)
            if result.status == "failed" and tail:
                result.error = f"{result.error or ''}\n--- output tail ---\n{tail}"
            return result
        return RunResult.of(spec, "failed", f"{_death(proc.returncode)}\n{_tail(log_path)}", **timing)


class LocalExecutor(Executor):
    """Runs on this machine, ``jobs`` at a time, splitting CPU threads between them."""

    name = "local"
    description = "runs on this machine, --jobs at a time, each in its own process"

    def __init__(self, jobs: int = 1):
        super().__init__(jobs)
        self.stop = threading.Event()

    def run(self, runs: list[RunSpec], log_dir: Path, on_start: Callable[[RunSpec], None],
            on_result: Callable[[RunSpec, RunResult], None]) -> None:
        threads = max(1, usable_cores() // self.jobs) if self.jobs > 1 else 0
        lock = threading.Lock()

        def one(spec: RunSpec) -> None:
            if self.stop.is_set():
                return
            spec.threads = threads
            with lock:
                on_start(spec)
            result = run_in_subprocess(spec, log_dir / f"{spec.run_id}.log", self.stop)
            if self.stop.is_set() and result.error == INTERRUPTED:
                return  # not a result: it will run next time
            with lock:
                on_result(spec, result)

        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = [pool.submit(one, spec) for spec in runs]
            try:
                for future in futures:
                    future.result()
            except KeyboardInterrupt:
                self.stop.set()
                for future in futures:
                    future.cancel()
                raise
