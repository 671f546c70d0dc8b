"""One run's worker process: start it (forked from the fork server, or a fresh
interpreter), supervise it to its end, and make its :class:`RunResult`.

A worker that raises writes a ``failed`` result itself; one that dies (segfault, abort,
out-of-memory kill) or overstays the suite's ``timeout_s`` gets its result made here,
with the tail of its output.

However a run ends, its processes end with it: the worker's process group, and daemons
that left it (see :mod:`harness.process`). Its log keeps the head and the tail of its
output (``LOG_CAP_BYTES``), and its temp dir lives under a per-user parent where the next
run removes what a driver killed with -9 left.

A worker is either forked from the suite's fork server (warm: torch and the plugins
already imported, see :mod:`harness.warm`) or a fresh interpreter (cold); both run the
same code, in their own session, see only the GPU they were given (``gpu``:
``CUDA_VISIBLE_DEVICES`` in their environment before anything initialises CUDA), and are
supervised, ended and reported alike.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import threading
import time
from contextlib import suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from harness.process import ProcessTree, python_command, run_dir, runs_root, tail
from harness.result import RunResult
from harness.spec import RunSpec
from harness.warm import MODE_VAR, cold
from harness.warm.client import ForkedWorker, ForkServer, ServerGone

TAIL_LINES = 30
LOG_CAP_BYTES = 2 << 20  # a run's log: the first and the last MiB of its output; $HARNESS_LOG_CAP_BYTES
SCAN_EVERY_S = 0.5  # how often the worker's process tree is recorded
DRAIN_S = 2.0  # once the worker has ended, how long its last output may take to arrive


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


class Sink(Protocol):
    """Where a child's output goes: a :class:`CappedLog`, or lines for the driver."""

    def write(self, data: bytes) -> None: ...


class _Output:
    """The worker's stdout and stderr (one pipe, read end ``fd``), copied into a :class:`CappedLog`."""

    def __init__(self, fd: int, log: Sink):
        self.fd, self.log, self.open = fd, log, True
        self.poller = select.poll()  # not select.select: that fails on descriptors past 1023
        self.poller.register(self.fd, select.POLLIN)

    def pump(self, wait_s: float) -> None:
        """Copy what has come, waiting at most ``wait_s`` for something to."""
        if self.open and self.poller.poll(wait_s * 1000):  # data, or the end (POLLHUP)
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

    def wait(self, limit_s: float) -> None:
        """Return once the worker has ended (unreaped), or after ``limit_s``."""
        if hasattr(os, "pidfd_open"):  # readable when it ends (Linux >= 5.3)
            try:
                fd = os.pidfd_open(self.pid)
            except OSError:
                pass
            else:
                try:
                    poller = select.poll()  # not select.select: that fails on descriptors past 1023
                    poller.register(fd, select.POLLIN)
                    poller.poll(limit_s * 1000)
                finally:
                    os.close(fd)
                return
        end, step = time.monotonic() + limit_s, 0.002
        while not self.exited() and time.monotonic() < end:
            time.sleep(step)
            step = min(step * 2, 0.05)

    def reap(self) -> int:
        return self.proc.wait()

    def close(self) -> None:
        assert self.proc.stdout is not None
        self.proc.stdout.close()


Worker = _ColdWorker | ForkedWorker


def supervise(worker: Worker, log: Sink, deadline: float, stop: threading.Event | None) -> tuple[int, str]:
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
            if out.open:
                out.pump(0.05)
            else:  # its output has ended: it is ending too, and the next run waits on it
                worker.wait(0.05)
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


def start_child(module: str, args: list[str], tmp: Path, env: dict[str, str], server: ForkServer | None,
                reason: str, threads: int = 0, cold_module: str = "") -> Worker:
    """``python -m module args`` (its ``main(args)``): forked from ``server`` unless
    ``reason`` says why not, else a fresh interpreter (running ``cold_module`` where given);
    its environment is ``env`` and says which (``HARNESS_WORKER_MODE``)."""
    if server is not None and not reason:
        (tmp / "env.json").write_text(json.dumps(env))
        request = {"module": module, "args": args, "env": str(tmp / "env.json"), "cwd": os.getcwd(),
                   "threads": threads}
        try:
            return ForkedWorker(server, request)
        except ServerGone as exc:
            reason = str(exc)
    if server is not None:
        server.announce(reason)
    return _ColdWorker(python_command(cold_module or module, *args), env | {MODE_VAR: cold(reason)})


def _start(spec: RunSpec, tmp: Path, env: dict[str, str], server: ForkServer | None, reason: str) -> Worker:
    """The run's worker, forked from ``server`` where it can, else a fresh interpreter."""
    args = [str(tmp / "spec.json"), str(tmp / "result.json")]
    return start_child("harness.worker", args, tmp, env, server, why_cold(spec, server, reason), spec.placement.threads,
                       cold_module="harness.warm.cold")  # loads what the server has loaded first


INTERRUPTED = "interrupted by the user"


def run_in_subprocess(spec: RunSpec, log_path: Path, stop: threading.Event | None = None,
                      server: ForkServer | None = None, cold_reason: str = "", gpu: str | None = None,
                      env: dict[str, str] | None = None) -> RunResult:
    """Run ``spec`` in a worker process (forked from ``server`` where it can, else a fresh
    Python, which ``cold_reason`` explains) that sees only ``gpu`` (a ``CUDA_VISIBLE_DEVICES``
    entry; None: the GPUs this process sees) and ``env`` besides this process's environment;
    always return its result."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    with run_dir(runs_root()) as tmp:
        result_path = tmp / "result.json"
        (tmp / "spec.json").write_text(json.dumps(spec.to_dict()))
        env = dict(os.environ) | (env or {})
        if spec.placement.threads:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(spec.placement.threads)
        if gpu is not None:  # read by CUDA at its initialisation, which only the worker does
            env["CUDA_VISIBLE_DEVICES"] = gpu
        if server is not None:  # its start-up is the suite's, not this run's: the timeout starts after
            server.wait_ready(stop)
        deadline = time.monotonic() + spec.timeout_s
        if stop is not None and stop.is_set():
            return RunResult.of(spec, "failed", INTERRUPTED, started=started, duration_s=time.monotonic() - t0)
        with CappedLog(log_path, log_cap()) as log:
            code, why = supervise(_start(spec, tmp, env, server, cold_reason), log, deadline, stop)
        timing = {"started": started, "duration_s": time.monotonic() - t0}
        if why == "timeout":
            return RunResult.of(spec, "timeout", f"run exceeded timeout_s = {spec.timeout_s:g} and was killed\n"
                                f"{tail(log_path, TAIL_LINES)}", **timing)
        if why == "interrupted":
            return RunResult.of(spec, "failed", INTERRUPTED, **timing)
        if result_path.exists():
            result = RunResult.from_row(json.loads(result_path.read_text()))
            last = tail(log_path, 10)
            if result.status == "failed" and last:
                result.error = f"{result.error or ''}\n--- output tail ---\n{last}"
            return result
        death = f"worker killed with the fork server ({why})" if why else _death(code)
        return RunResult.of(spec, "failed", f"{death}\n{tail(log_path, TAIL_LINES)}", **timing)
