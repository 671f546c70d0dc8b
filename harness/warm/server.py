"""The fork server: ``python -P -m harness.warm.server FD DRIVER_PID [--energy] [--uses=KIND:NAME,...]``.

It imports torch, the worker and the plugins once (and the heavy modules the suite's plugins
declare in ``preload``, e.g. torchao, transformers; with ``--energy`` codecarbon as well,
and it lets codecarbon detect the hardware), never touches
CUDA, and then serves the driver over the ``AF_UNIX`` ``SOCK_SEQPACKET`` socket ``FD``,
one JSON message per packet:

- it sends once ``{"ready": true, "cuda": bool}`` (``cuda``: CUDA was initialised here, so
  a CUDA run must not be forked from here), ``{"unsafe": "..."}`` (threads still run after
  its imports: it forks nothing, and leaves; the runs start cold) or ``{"error": "..."}``;
- ``{"op": "run", "id", "module", "args", "env", "cwd", "threads"}`` with the child's log
  pipe as an fd: it forks the child (:mod:`harness.warm.child`: ``module.main(args)``,
  e.g. ``harness.worker`` with ``[SPEC, RESULT]``) and answers
  ``{"id", "pid"}`` at once, then ``{"id", "status"}`` (the exit code, ``-N`` for signal
  N) when the worker has exited, without reaping it;
- ``{"op": "reap", "id"}``: the driver has ended the worker's process group; the zombie
  goes now. Until then its pid stays its group's id, so the group kill hits no stranger.

The server is single-threaded — native threads included (:func:`single_threaded`), as a
fork copies only the calling thread — with a SIGCHLD wake-up fd and a poll loop; it dies
with its driver (PR_SET_PDEATHSIG), and when the driver closes the socket it kills its
workers' process groups and exits.
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


def other_threads() -> list[str] | None:
    """The names of this process's other threads, native ones too (``/proc/self/task``;
    ``threading`` sees only Python's), or None where they cannot be counted."""
    me, names = threading.get_native_id(), []
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return None
    for tid in tids:
        if tid != str(me):
            with suppress(OSError):  # it ended meanwhile
                with open(f"/proc/self/task/{tid}/comm") as fh:
                    names.append(fh.read().strip())
    return names


def _throwaway_fork() -> None:
    """Fork a child that exits at once: libraries end their thread pools in their
    ``pthread_atfork`` prepare handlers (OpenBLAS does), and do not restart them until
    they are used again here — which the server never does."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def single_threaded(limit_s: float = 5.0) -> str:
    """Make this process single-threaded before it forks, or say why it cannot be ("" once it is).

    A fork copies only the calling thread: a lock or half-updated heap another thread held
    stays so in the child (one died of ``corrupted double-linked list``). Python threads
    (codecarbon's set-up) are waited for; native ones are counted in ``/proc/self/task``.
    After the preload of every plugin (torch 2.13+cpu, 2 cores) these are OpenBLAS's pools
    (numpy's, scipy's: started at import), which OpenBLAS ends at a fork (a throwaway one,
    :func:`_throwaway_fork`; one still up a second later stays) and restarts only when used
    again, and jemalloc's, which the preload turns off. torch starts none at import: its
    intra-op pool (OpenMP) is created by the first parallel op (a matmul), and the server
    runs none. Any other (a pool a plugin's import started by computing, tokenizers', a
    scheduler) cannot be ended: the server then forks nothing, and the runs start cold.
    """
    end = time.monotonic() + limit_s
    while threading.active_count() > 1:
        if time.monotonic() > end:
            names = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
            return f"Python threads still run after its imports ({', '.join(names)})"
        time.sleep(0.01)
    others = other_threads()
    if others:
        _throwaway_fork()
        end = min(end, time.monotonic() + 1.0)
    while others:
        if time.monotonic() > end:
            count = "1 native thread still runs" if len(others) == 1 else f"{len(others)} native threads still run"
            return f"{count} after its imports (named {', '.join(sorted(set(others)))})"
        time.sleep(0.01)
        others = other_threads()
    if others is None:
        return "its threads cannot be counted (no /proc/self/task)"
    return ""


def _exit_code(info: os.waitid_result) -> int:
    if info.si_code == os.CLD_EXITED:
        return info.si_status
    return -info.si_status


class Server:
    """Forks workers for its driver until the driver closes the socket; each worker
    (pid -> request id) is kept unreaped until the driver says ``reap``."""

    def __init__(self, sock: socket.socket, nvml_inits: int):
        self.sock, self.nvml_inits, self.pid = sock, nvml_inits, os.getpid()
        self.children: dict[int, Any] = {}
        self.ids: dict[Any, int] = {}  # request id -> pid
        self.reported: set[int] = set()
        self.killed: set[int] = set()  # reaped as they end
        self.poller = select.poll()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w)
        self.poller.register(self.wake_r, select.POLLIN)
        self.poller.register(sock, select.POLLIN)

    def serve(self) -> None:
        try:
            while True:
                events = dict(self.poller.poll(1000))  # and a check each second, whatever happens
                with suppress(BlockingIOError):
                    while os.read(self.wake_r, 4096):
                        pass
                self.check_children()
                self.reap_killed()
                if self.sock.fileno() in events and not self.receive():
                    return  # the driver is gone
        finally:
            self.end_all()
            for pid in self.killed:
                with suppress(ChildProcessError):
                    os.waitpid(pid, 0)
            self.sock.close()

    def receive(self) -> bool:
        """Handle one message; False when the driver is gone (closed, reset, or talking nonsense)."""
        try:
            data, fds, _, _ = socket.recv_fds(self.sock, MAX_MESSAGE, 4)
            if data:
                self.handle(json.loads(data), fds)
                return True
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return False

    def reap_killed(self) -> None:
        for pid in list(self.killed):
            with suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    continue
            self.killed.discard(pid)

    def handle(self, message: dict[str, Any], fds: list[int]) -> None:
        if message.get("op") == "run" and len(fds) == 1:
            self.fork(message, fds[0])
        elif message.get("op") == "reap" and not fds:
            pid = self.ids.pop(message["id"], None)
            if pid is not None:  # reported ended (or killed by the driver, group and all): no wait
                self.killed.add(pid)
                self.children.pop(pid, None)
                self.reported.discard(pid)
                self.reap_killed()
        else:
            for fd in fds:
                os.close(fd)

    def fork(self, request: dict[str, Any], log_fd: int) -> None:
        others = other_threads()  # none since start-up (nothing here starts one): checked all the same
        if others:
            os.close(log_fd)
            send(self.sock, {"id": request["id"], "error": f"a thread started in the fork server ({', '.join(others)})"})
            return
        gate_r, gate_w = os.pipe()
        try:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            pid = os.fork()
        except OSError as exc:
            for fd in (gate_r, gate_w, log_fd):
                os.close(fd)
            send(self.sock, {"id": request["id"], "error": f"fork failed: {exc}"})
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
            with suppress(OSError):
                send(self.sock, {"id": rid, "status": code})

    def end_all(self) -> None:
        """Kill the workers still running (each with its process group)."""
        for pid in self.children:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self.killed.update(self.children)
        self.children.clear()
        self.ids.clear()
        self.reap_killed()


def warm_up(energy: bool, uses: list[str]) -> tuple[int, bool, str]:
    """The imports (see :mod:`harness.warm.preload`); (NVML inits a child redoes, whether
    CUDA was touched, "" or why nothing may be forked from here)."""
    nvml_inits = preload(energy, release_nvml=True, uses=uses)
    unsafe = single_threaded()
    cuda = cuda_touched() if not unsafe else False
    gc.collect()
    gc.freeze()  # the imports' objects stay shared with the children, untouched by their GC
    return nvml_inits, cuda, unsafe


def main(argv: list[str]) -> int:
    energy = "--energy" in argv
    uses = [u for arg in argv if arg.startswith("--uses=") for u in arg[7:].split(",") if u]
    sock = socket.socket(fileno=int(argv[0]))
    driver = int(argv[1])
    child.die_with_parent()
    if os.getppid() != driver:
        return 1  # the driver ended before PDEATHSIG was set
    # torch.cuda.is_available() asks the CUDA driver for a device count, which makes every
    # later fork a "bad fork" — and torchao calls it at import (float8_utils: IS_ROCM), so
    # on a GPU machine every CUDA run went cold. NVML answers the same question fork-safely
    # (seen on an H200: 17 s → 3 s per run, and idle power measurable again).
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    try:
        nvml_inits, cuda, unsafe = warm_up(energy, uses)
    except BaseException as exc:  # noqa: B036 (a plugin's sys.exit at import, too)
        traceback.print_exc()
        send(sock, {"error": f"{type(exc).__name__}: {exc}"})
        return 1
    if unsafe:
        print(f"not forking: {unsafe}", flush=True)
        send(sock, {"unsafe": f"the fork server forks nothing: {unsafe}; a fork copies only one thread"})
        return 0
    send(sock, {"ready": True, "cuda": cuda})
    Server(sock, nvml_inits).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
