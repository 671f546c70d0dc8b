"""The fork server: ``python -P -m harness.warm.server FD DRIVER_PID [--energy] [--uses=KIND:NAME,...]``.

It imports torch, the worker and the plugins once (and the heavy modules the suite's plugins declare in ``preload``, e.g. torchao, transformers; with
``--energy`` codecarbon as well, and it lets codecarbon detect the hardware), never touches
CUDA, and then serves the driver over the ``AF_UNIX`` ``SOCK_SEQPACKET`` socket ``FD``,
one JSON message per packet:

- it sends ``{"ready": true, "cuda": bool}`` (``cuda``: CUDA was initialised here, so a
  CUDA run must not be forked from here) or ``{"error": "..."}`` once;
- ``{"op": "run", "id", "module", "args", "env", "cwd", "threads"}`` with the child's log
  pipe as an fd: it forks the child (:mod:`harness.warm.child`: ``module.main(args)``,
  e.g. ``harness.worker`` with ``[SPEC, RESULT]``) and answers
  ``{"id", "pid"}`` at once, then ``{"id", "status"}`` (the exit code, ``-N`` for signal
  N) when the worker has exited, without reaping it;
- ``{"op": "reap", "id"}``: the driver has ended the worker's process group; the zombie
  goes now. Until then its pid stays its group's id, so the group kill hits no stranger.

The server is single-threaded (a SIGCHLD wake-up fd and a poll loop), dies with its
driver (PR_SET_PDEATHSIG), and when the driver closes the socket it kills its workers'
process groups and exits.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
from contextlib import suppress
from typing import Any

from harness.warm import child
from harness.warm.preload import preload

MAX_MESSAGE = 1 << 16


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message).encode())


def cuda_touched() -> bool:
    """Whether CUDA was initialised in this process (torch's lazy init, or a device count
    that poisons fork): a child forked now could not use it."""
    torch = sys.modules["torch"]
    if torch.cuda.is_initialized():
        return True
    if not torch.backends.cuda.is_built():
        return False
    pid = os.fork()
    if pid == 0:
        os._exit(3 if torch.cuda._is_in_bad_fork() else 0)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0


def _single_threaded(limit_s: float = 5.0) -> None:
    """Wait for helper threads (codecarbon's set-up pool) to end: fork copies one thread."""
    end = time.monotonic() + limit_s
    while threading.active_count() > 1:
        if time.monotonic() > end:
            names = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
            raise RuntimeError(f"threads still running after the imports: {names}")
        time.sleep(0.01)


def _exit_code(info: os.waitid_result) -> int:
    if info.si_code == os.CLD_EXITED:
        return info.si_status
    return -info.si_status


class Server:
    def __init__(self, sock: socket.socket, nvml_inits: int):
        self.sock, self.nvml_inits, self.pid = sock, nvml_inits, os.getpid()
        self.children: dict[int, Any] = {}  # pid -> request id, until reaped
        self.ids: dict[Any, int] = {}  # request id -> pid
        self.reported: set[int] = set()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w)

    def serve(self) -> None:
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        try:
            while True:
                events = dict(poller.poll(1000))  # and a check each second, whatever happens
                with suppress(BlockingIOError):
                    while os.read(self.wake_r, 4096):
                        pass
                self.check_children()
                if self.sock.fileno() in events:
                    data, fds, _, _ = socket.recv_fds(self.sock, MAX_MESSAGE, 4)
                    if not data:
                        return  # the driver closed the socket, or is gone
                    self.handle(json.loads(data), fds)
        finally:
            self.end_all()

    def handle(self, message: dict[str, Any], fds: list[int]) -> None:
        if message.get("op") == "run" and len(fds) == 1:
            self.fork(message, fds[0])
        elif message.get("op") == "reap":
            pid = self.ids.pop(message["id"], None)
            if pid is not None:
                with suppress(ChildProcessError):
                    os.waitpid(pid, 0)
                self.children.pop(pid, None)
                self.reported.discard(pid)
        else:
            for fd in fds:
                os.close(fd)

    def fork(self, request: dict[str, Any], log_fd: int) -> None:
        gate_r, gate_w = os.pipe()
        try:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            pid = os.fork()
        except OSError as exc:
            send(self.sock, {"id": request["id"], "error": f"fork failed: {exc}"})
            for fd in (gate_r, gate_w, log_fd):
                os.close(fd)
            return
        if pid == 0:
            os.close(gate_r)
            child.run(request, log_fd, gate_w, self.pid, [self.sock.fileno(), self.wake_r, self.wake_w],
                      self.nvml_inits)
        os.close(gate_w)
        os.close(log_fd)
        with suppress(OSError):
            os.read(gate_r, 1)  # the child has its own session (or died: EOF)
        os.close(gate_r)
        self.children[pid], self.ids[request["id"]] = request["id"], pid
        send(self.sock, {"id": request["id"], "pid": pid})

    def check_children(self) -> None:
        """Report each child that has exited, leaving it a zombie until the driver says."""
        for pid, rid in list(self.children.items()):
            if pid in self.reported:
                continue
            try:
                info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                info = None
                code = -signal.SIGKILL
            else:
                if info is None:
                    continue
                code = _exit_code(info)
            self.reported.add(pid)
            send(self.sock, {"id": rid, "status": code})

    def end_all(self) -> None:
        for pid in self.children:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        for pid in self.children:
            with suppress(ChildProcessError):
                os.waitpid(pid, 0)


def main(argv: list[str]) -> int:
    sock = socket.socket(fileno=int(argv[0]))
    driver, energy = int(argv[1]), "--energy" in argv[2:]
    uses = [u for arg in argv[2:] if arg.startswith("--uses=") for u in arg[7:].split(",") if u]
    child.die_with_parent()
    if os.getppid() != driver:
        return 1  # the driver ended before PDEATHSIG was set
    try:
        nvml_inits = preload(energy, release_nvml=True, uses=uses)
        _single_threaded()
        cuda = cuda_touched()
    except BaseException as exc:  # noqa: B036 (a plugin's sys.exit at import, too)
        traceback.print_exc()
        send(sock, {"error": f"{type(exc).__name__}: {exc}"})
        return 1
    gc.collect()
    gc.freeze()  # the imports' objects stay shared with the children, untouched by their GC
    send(sock, {"ready": True, "cuda": cuda})
    Server(sock, nvml_inits).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
