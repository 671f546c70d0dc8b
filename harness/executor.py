"""Run each RunSpec in its own worker process, N at a time.

A worker that raises writes a ``failed`` result itself; one that dies (segfault, abort,
out-of-memory kill) or overstays the suite's ``timeout_s`` gets its result made here,
with the tail of its output. Only the caller's ``on_result`` stores results.

However a run ends, its processes end with it: the worker's process group, and daemons
that left it (see :mod:`harness.process`). Its log keeps the head and the tail of its
output (``LOG_CAP_BYTES``), and its temp dir lives under a per-user parent where the next
run removes what a driver killed with -9 left.

A worker is either forked from the suite's fork server (warm: torch and the plugins
already imported, see :mod:`harness.warm`) or a fresh interpreter (cold); both run the
same code, in their own session, and are supervised, ended and reported alike.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import datetime, timezone
from pathlib import Path

from harness.api import Executor
from harness.machine import usable_cores
from harness.process import ProcessTree, python_command, run_dir, runs_root
from harness.result import RunResult
from harness.spec import RunSpec
from harness.warm import MODE_VAR, cold
from harness.warm.client import ForkedWorker, ForkServer, ServerGone, SuiteServer

TAIL_LINES = 30
LOG_CAP_BYTES = 2 << 20  # a run's log: the first and the last MiB of its output; $HARNESS_LOG_CAP_BYTES
SCAN_EVERY_S = 0.5  # how often the worker's process tree is recorded
DRAIN_S = 2.0  # once the worker has ended, how long its last output may take to arrive


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


def log_cap() -> int:
    try:
        return max(0, int(os.environ.get("HARNESS_LOG_CAP_BYTES", LOG_CAP_BYTES)))
    except ValueError:
        return LOG_CAP_BYTES


class CappedLog:
    """A log file that keeps the first and the last ``cap // 2`` bytes written to it, with a
    line saying how many bytes were cut between them. The head is written as it comes."""

    def __init__(self, path: Path, cap: int = LOG_CAP_BYTES):
        self.file = open(path, "wb", buffering=0)
        self.head_left, self.tail_cap = cap - cap // 2, cap // 2
        self.tail, self.cut, self.last = bytearray(), 0, b"\n"

    def write(self, data: bytes) -> None:
        if self.head_left:
            head = data[: self.head_left]
            self.file.write(head)
            self.head_left -= len(head)
            self.last, data = head[-1:] or self.last, data[len(head):]
        self.tail += data
        if len(self.tail) > self.tail_cap:
            self.cut += len(self.tail) - self.tail_cap
            del self.tail[: len(self.tail) - self.tail_cap]  # cheap: a bytearray's start moves

    def close(self) -> None:
        if self.cut:
            self.file.write((b"" if self.last == b"\n" else b"\n") + f"[... {self.cut} bytes cut ...]\n".encode())
        self.file.write(self.tail)
        self.file.close()

    def __enter__(self) -> CappedLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Output:
    """The worker's stdout and stderr (one pipe, read end ``fd``), copied into a :class:`CappedLog`."""

    def __init__(self, fd: int, log: CappedLog):
        self.fd, self.log, self.open = fd, log, True
        self.poller = select.poll()  # not select.select: that fails on descriptors past 1023
        self.poller.register(self.fd, select.POLLIN)

    def pump(self, wait_s: float) -> None:
        """Copy what has come, waiting at most ``wait_s`` for something to."""
        if not self.open:
            time.sleep(wait_s)
        elif self.poller.poll(wait_s * 1000):  # data, or the end (POLLHUP)
            data = os.read(self.fd, 1 << 16)
            self.log.write(data)
            self.open = bool(data)

    def drain(self, limit_s: float) -> None:
        end = time.monotonic() + limit_s
        while self.open and time.monotonic() < end:
            self.pump(0.05)


class _ColdWorker:
    """A worker in a fresh interpreter: ``python -m harness.worker`` in its own session."""

    def __init__(self, cmd: list[str], env: dict[str, str]):
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        assert self.proc.stdout is not None
        self.pid, self.out_fd, self.note = self.proc.pid, self.proc.stdout.fileno(), ""

    def exited(self) -> bool:
        """Whether the worker has ended, without reaping it: until it is reaped its pid stays
        its process group's id, so killing that group cannot hit a stranger."""
        if hasattr(os, "waitid"):
            try:
                return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
            except ChildProcessError:
                return True
        return self.proc.poll() is not None

    def reap(self) -> int:
        return self.proc.wait()

    def close(self) -> None:
        assert self.proc.stdout is not None
        self.proc.stdout.close()


Worker = _ColdWorker | ForkedWorker


def _supervise(worker: Worker, log: CappedLog, deadline: float, stop: threading.Event | None) -> tuple[int, str]:
    """Run the worker to its end and end all its processes; (exit status, "" or "timeout"
    or "interrupted" or why the status is not the worker's own)."""
    out, tree, why, next_scan = _Output(worker.out_fd, log), ProcessTree(worker.pid), "", 0.0
    try:
        while not worker.exited():
            if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                why = "timeout" if time.monotonic() > deadline else "interrupted"
                break
            if time.monotonic() >= next_scan:
                tree.scan()
                next_scan = time.monotonic() + SCAN_EVERY_S
            out.pump(0.05)
    finally:  # ok, failed, died, timed out, interrupted, or an error in this thread
        tree.scan()  # the worker's tree as it is now, if the worker still runs
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(worker.pid, signal.SIGKILL)  # the worker and what stayed in its group
        tree.kill()  # what left the group (setsid) before the worker could end it
        code = worker.reap()
        out.drain(DRAIN_S)
        worker.close()
    return code, why or worker.note


def why_cold(spec: RunSpec, server: ForkServer | None, reason: str = "") -> str:
    """Why ``spec`` cannot be forked from ``server`` (ready by now), or "" when it can."""
    if server is None:
        return reason or "no fork server"
    if server.failure:
        return server.failure
    if spec.device.startswith("cuda") and server.cuda:  # a forked child could not use CUDA
        return "the fork server initialised CUDA"
    return ""


def _start(spec: RunSpec, tmp: Path, env: dict[str, str], server: ForkServer | None, reason: str) -> Worker:
    """Fork the worker from ``server`` where it can, else start a fresh interpreter; each
    worker's environment says which (``env["worker_mode"]`` of its result)."""
    spec_path, result_path = str(tmp / "spec.json"), str(tmp / "result.json")
    reason = why_cold(spec, server, reason)
    if server is not None and not reason:
        (tmp / "env.json").write_text(json.dumps(env))
        request = {"spec": spec_path, "result": result_path, "env": str(tmp / "env.json"),
                   "cwd": os.getcwd(), "threads": spec.threads}
        try:
            return ForkedWorker(server, request)
        except ServerGone as exc:
            reason = str(exc)
    if server is not None:
        server.announce(reason)
    return _ColdWorker(python_command("harness.worker", spec_path, result_path), env | {MODE_VAR: cold(reason)})


INTERRUPTED = "interrupted by the user"


def run_in_subprocess(spec: RunSpec, log_path: Path, stop: threading.Event | None = None,
                      server: ForkServer | None = None, cold_reason: str = "") -> RunResult:
    """Run ``spec`` in a worker process (forked from ``server`` where it can, else a fresh
    Python, which ``cold_reason`` explains); always return its result."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    with run_dir(runs_root()) as tmp:
        result_path = tmp / "result.json"
        (tmp / "spec.json").write_text(json.dumps(spec.to_dict()))
        env = dict(os.environ)
        if spec.threads:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(spec.threads)
        if server is not None:  # its start-up is the suite's, not this run's: the timeout starts after
            server.wait_ready(stop)
        deadline = time.monotonic() + spec.timeout_s
        if stop is not None and stop.is_set():
            return RunResult.of(spec, "failed", INTERRUPTED, started=started, duration_s=time.monotonic() - t0)
        with CappedLog(log_path, log_cap()) as log:
            code, why = _supervise(_start(spec, tmp, env, server, cold_reason), log, deadline, stop)
        timing = {"started": started, "duration_s": time.monotonic() - t0}
        if why == "timeout":
            return RunResult.of(spec, "timeout", f"run exceeded timeout_s = {spec.timeout_s:g} and was killed\n"
                                f"{_tail(log_path)}", **timing)
        if why == "interrupted":
            return RunResult.of(spec, "failed", INTERRUPTED, **timing)
        if result_path.exists():
            result = RunResult.from_row(json.loads(result_path.read_text()))
            tail = _tail(log_path, 10)
            if result.status == "failed" and tail:
                result.error = f"{result.error or ''}\n--- output tail ---\n{tail}"
            return result
        death = f"worker killed with the fork server ({why})" if why else _death(code)
        return RunResult.of(spec, "failed", f"{death}\n{_tail(log_path)}", **timing)


class LocalExecutor(Executor):
    """Runs on this machine, ``jobs`` at a time, splitting CPU threads between them."""

    name = "local"
    description = "runs on this machine, --jobs at a time, each in its own process"

    def __init__(self, jobs: int = 1):
        super().__init__(jobs)
        self.stop = threading.Event()
        self.servers = SuiteServer()

    def warm_up(self, runs: list[RunSpec]) -> None:
        self.servers.start(runs)  # torch and the plugins load while the driver prepares models

    def run(self, runs: list[RunSpec], log_dir: Path, on_start: Callable[[RunSpec], None],
            on_result: Callable[[RunSpec, RunResult], None]) -> None:
        threads = max(1, usable_cores() // self.jobs) if self.jobs > 1 else 0
        concurrent = max(1, min(self.jobs, len(runs)))  # runs sharing this machine's RAM
        lock = threading.Lock()

        def one(spec: RunSpec) -> None:
            if self.stop.is_set():
                return
            spec.threads, spec.concurrent = threads, concurrent
            with lock:
                on_start(spec)
            result = run_in_subprocess(spec, log_dir / f"{spec.run_id}.log", self.stop, server, reason or "")
            if self.stop.is_set() and result.error == INTERRUPTED:
                return  # not a result: it will run next time
            with lock:
                try:
                    on_result(spec, result)
                except BaseException:  # the driver could not store it (results lost): start nothing more
                    self.stop.set()
                    raise

        self.warm_up(runs)  # each run waits for the server to be ready
        server, reason = self.servers.server, self.servers.reason
        try:
            with ThreadPoolExecutor(max_workers=self.jobs) as pool:
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
            self.servers.close()
