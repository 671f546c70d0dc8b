"""The fork server: ``python -P -m harness.warm.server FD DRIVER_PID [--energy] [--uses=KIND:NAME,...]``.

It imports torch, the worker and the plugins once (and the heavy modules the suite's
plugins declare in ``preload``, e.g. torchao, transformers; with
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

As a daemon (``python -P -m harness.warm.daemon``, ``HARNESS_WORKERS=daemon``: see
:mod:`harness.warm.daemon`) it outlives the bench that started it: it listens at a
socket (in a folder only its user can enter; a peer of another uid is refused),
greets each driver that connects with ``{"ready": true, "cuda", "pid"}``, serves each as
above (a driver that goes has its workers killed, as the per-bench server's death would),
and leaves after a while without a driver.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import struct
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


class Connection:
    """One driver's socket and the workers forked for it (pid -> request id), each kept
    unreaped until that driver says ``reap``."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.children: dict[int, Any] = {}
        self.ids: dict[Any, int] = {}  # request id -> pid
        self.reported: set[int] = set()


class Server:
    """Forks workers for one driver (``conn``: the socket pair of a bench), or, as a daemon
    (``listener``), for every driver that connects, until ``idle_s`` pass with none."""

    def __init__(self, nvml_inits: int, conn: socket.socket | None = None, listener: socket.socket | None = None,
                 idle_s: float = float("inf"), hello: dict[str, Any] | None = None, keep_fds: tuple[int, ...] = ()):
        self.nvml_inits, self.pid, self.listener, self.idle_s = nvml_inits, os.getpid(), listener, idle_s
        self.hello, self.keep_fds = hello or {}, keep_fds  # keep_fds: the server's own (a daemon's lock)
        self.killed: set[int] = set()  # workers of gone drivers, killed, reaped as they end
        self.conns: dict[int, Connection] = {}
        self.poller = select.poll()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w)
        self.poller.register(self.wake_r, select.POLLIN)
        if listener is not None:
            self.poller.register(listener, select.POLLIN)
        if conn is not None:
            self._add(conn)

    def _add(self, sock: socket.socket) -> None:
        self.conns[sock.fileno()] = Connection(sock)
        self.poller.register(sock, select.POLLIN)

    def serve(self) -> None:
        last_busy = time.monotonic()
        try:
            while True:
                events = dict(self.poller.poll(1000))  # and a check each second, whatever happens
                with suppress(BlockingIOError):
                    while os.read(self.wake_r, 4096):
                        pass
                for conn in list(self.conns.values()):
                    self.check_children(conn)
                if self.listener is not None and self.listener.fileno() in events:
                    self.accept()
                self.reap_killed()
                for fd in [fd for fd in events if fd in self.conns]:
                    if not self.receive(self.conns[fd]) and self.listener is None:
                        return  # a bench's own server ends with its driver
                if self.conns:
                    last_busy = time.monotonic()
                elif time.monotonic() - last_busy > self.idle_s:
                    return
        finally:
            for conn in list(self.conns.values()):
                self.drop(conn)
            for pid in self.killed:
                with suppress(ChildProcessError):
                    os.waitpid(pid, 0)

    def receive(self, conn: Connection) -> bool:
        """Handle one message of ``conn``; False when that driver is gone (closed, reset, or
        talking nonsense): its workers are killed, and the other drivers' go on."""
        try:
            data, fds, _, _ = socket.recv_fds(conn.sock, MAX_MESSAGE, 4)
            if data:
                self.handle(conn, json.loads(data), fds)
                return True
        except (OSError, ValueError, KeyError, TypeError):
            pass
        self.drop(conn)
        return False

    def reap_killed(self) -> None:
        for pid in list(self.killed):
            with suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    continue
            self.killed.discard(pid)

    def accept(self) -> None:
        with suppress(OSError):
            sock, _ = self.listener.accept()
            uid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
            if uid != os.getuid():  # the socket's folder is this user's alone; and yet
                sock.close()
                return
            self._add(sock)
            send(sock, dict(self.hello, ready=True))

    def drop(self, conn: Connection) -> None:
        """End a driver's connection: kill what it still runs, reap it, close the socket."""
        self.end_all(conn)
        with suppress(KeyError, ValueError):
            self.poller.unregister(conn.sock)
        self.conns.pop(conn.sock.fileno(), None)
        conn.sock.close()

    def handle(self, conn: Connection, message: dict[str, Any], fds: list[int]) -> None:
        if message.get("op") == "run" and len(fds) == 1:
            self.fork(conn, message, fds[0])
        elif message.get("op") == "reap" and not fds:
            pid = conn.ids.pop(message["id"], None)
            if pid is not None:  # reported ended (or killed by the driver, group and all): no wait
                self.killed.add(pid)
                conn.children.pop(pid, None)
                conn.reported.discard(pid)
                self.reap_killed()
        else:
            for fd in fds:
                os.close(fd)

    def _own_fds(self) -> list[int]:
        """What a forked child must not keep: every socket and the wake-up pipe."""
        fds = [c.sock.fileno() for c in self.conns.values()] + [self.wake_r, self.wake_w, *self.keep_fds]
        return fds + ([self.listener.fileno()] if self.listener is not None else [])

    def fork(self, conn: Connection, request: dict[str, Any], log_fd: int) -> None:
        gate_r, gate_w = os.pipe()
        try:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            pid = os.fork()
        except OSError as exc:
            for fd in (gate_r, gate_w, log_fd):
                os.close(fd)
            send(conn.sock, {"id": request["id"], "error": f"fork failed: {exc}"})
            return
        if pid == 0:
            os.close(gate_r)
            child.run(request, log_fd, gate_w, self.pid, self._own_fds(), self.nvml_inits)
        os.close(gate_w)
        os.close(log_fd)
        with suppress(OSError):
            os.read(gate_r, 1)  # the child has its own session (or died: EOF)
        os.close(gate_r)
        conn.children[pid], conn.ids[request["id"]] = request["id"], pid
        send(conn.sock, {"id": request["id"], "pid": pid})

    def check_children(self, conn: Connection) -> None:
        """Report each child that has exited, leaving it a zombie until the driver says."""
        for pid, rid in list(conn.children.items()):
            if pid in conn.reported:
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
            conn.reported.add(pid)
            with suppress(OSError):
                send(conn.sock, {"id": rid, "status": code})

    def end_all(self, conn: Connection) -> None:
        """Kill a gone driver's workers (each with its process group); they are reaped as
        they end, without holding up the other drivers."""
        for pid in conn.children:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self.killed.update(conn.children)
        conn.children.clear()
        conn.ids.clear()
        self.reap_killed()


def warm_up(energy: bool, uses: list[str]) -> tuple[int, bool]:
    """The imports (see :mod:`harness.warm.preload`); (NVML inits a child redoes, whether
    CUDA was touched)."""
    nvml_inits = preload(energy, release_nvml=True, uses=uses)
    _single_threaded()
    cuda = cuda_touched()
    gc.collect()
    gc.freeze()  # the imports' objects stay shared with the children, untouched by their GC
    return nvml_inits, cuda


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
        nvml_inits, cuda = warm_up(energy, uses)
    except BaseException as exc:  # noqa: B036 (a plugin's sys.exit at import, too)
        traceback.print_exc()
        send(sock, {"error": f"{type(exc).__name__}: {exc}"})
        return 1
    send(sock, {"ready": True, "cuda": cuda})
    Server(nvml_inits, conn=sock).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
