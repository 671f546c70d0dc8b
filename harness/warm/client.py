"""The driver's side of the fork server: start it, ask it for workers, hear how they end.

:class:`ForkServer` is shared by the executor's run threads: each :meth:`~ForkServer.spawn`
sends one request (with the run's log pipe as an fd) and gets a :class:`WarmWorker`; one
reader thread hands each reply to the worker it belongs to. :func:`warm_unavailable` says
why a suite's runs cannot be forked at all.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from harness.process import python_command, tail
from harness.warm import warm_unavailable  # noqa: F401 (the executor's)

START_LIMIT_S = 120.0  # the server's imports (and codecarbon's set-up) must be done by then
REPLY_LIMIT_S = 30.0  # a fork's pid, or a killed worker's status, must come back by then


class ServerGone(Exception):
    """The fork server cannot fork this run; the message says why (for the cold fallback)."""


class WarmWorker:
    """A worker forked by the server: its pid, and its exit status once the server saw it
    end (the server keeps it unreaped until :meth:`reap`)."""

    def __init__(self, server: ForkServer, rid: int):
        self.server, self.rid = server, rid
        self.pid = 0
        self.returncode: int | None = None
        self.note = ""  # why the status is not the worker's own (the server died)
        self.started, self.ended = threading.Event(), threading.Event()
        self.error = ""

    def reply(self, message: dict[str, Any]) -> None:
        if "pid" in message:
            self.pid = message["pid"]
            self.started.set()
        elif "status" in message:
            self.returncode = message["status"]
            self.ended.set()
        elif "error" in message:
            self.error = message["error"]
            self.started.set()

    def lost(self, why: str) -> None:
        """The server is gone: its children were killed with it (PR_SET_PDEATHSIG)."""
        if not self.started.is_set():
            self.error = why
            self.started.set()
        if not self.ended.is_set():
            self.returncode, self.note = -9, why
            self.ended.set()

    def exited(self) -> bool:
        return self.ended.is_set()

    def reap(self) -> int:
        """Wait for the exit status (the caller has killed the worker's group), then let
        the server reap the zombie."""
        if not self.ended.wait(REPLY_LIMIT_S):
            self.server.abandon(f"the fork server did not report a killed worker within {REPLY_LIMIT_S:g} s")
        with suppress(ServerGone):
            self.server.send({"op": "reap", "id": self.rid})
        assert self.returncode is not None
        return self.returncode


class ForkedWorker:
    """The executor's handle on a forked worker (:class:`WarmWorker`), with the read end
    of its log pipe; the write end goes to the server, which gives it to the worker."""

    def __init__(self, server: ForkServer, request: dict[str, Any]):
        read_fd, write_fd = os.pipe()
        try:
            self.worker = server.spawn(request, write_fd)
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # the worker has it now: the pipe ends when the worker's tree does
        self.pid, self.out_fd = self.worker.pid, read_fd

    @property
    def note(self) -> str:
        return self.worker.note

    def exited(self) -> bool:
        return self.worker.exited()

    def wait(self, limit_s: float) -> None:
        self.worker.ended.wait(limit_s)

    def reap(self) -> int:
        return self.worker.reap()

    def close(self) -> None:
        os.close(self.out_fd)


class ForkServer:
    """The driver's connection to this bench's fork server: started here, ended by :meth:`close`."""

    def __init__(self, log_path: Path, energy: bool = False, uses: list[str] | None = None):
        self.log_path = log_path
        self.ready, self.cuda, self.failure, self.announced = threading.Event(), False, "", False
        self.workers: dict[int, WarmWorker] = {}
        self.lock, self.send_lock, self.next_id = threading.Lock(), threading.Lock(), 0
        self.proc: subprocess.Popen | None = None
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv = python_command("harness.warm.server", str(theirs.fileno()), str(os.getpid()))
        try:
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(
                    argv + (["--energy"] if energy else []) + [f"--uses={','.join(uses or [])}"],
                    pass_fds=(theirs.fileno(),),
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True)  # no Ctrl-C from the terminal: the driver ends it
        except OSError as exc:
            self._gone(f"the fork server could not be started: {exc}")
        finally:
            theirs.close()
        self.reader = threading.Thread(target=self._read, name="forkserver-reader", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        why = "the fork server ended"
        try:
            while True:
                data = self.sock.recv(1 << 16)
                if not data:
                    break
                message = json.loads(data)
                if "id" in message:
                    with self.lock:
                        worker = self.workers.get(message["id"])
                    if worker is not None:
                        worker.reply(message)
                        if "status" in message or "error" in message:
                            with self.lock:
                                self.workers.pop(message["id"], None)
                elif "ready" in message:
                    self.cuda = bool(message.get("cuda"))
                    self.ready.set()
                elif "unsafe" in message:  # threads run there: it forks nothing, and leaves
                    why = str(message["unsafe"])
                    break
                else:
                    why = f"the fork server failed to start: {message.get('error', message)}"
                    break
        except (OSError, ValueError) as exc:
            why = f"the fork server's socket failed: {exc}"
        if not self.ready.is_set() and why == "the fork server ended":
            why = f"the fork server failed to start: {tail(self.log_path, 1) or 'it ended without a word'}"
        self._gone(why)

    def _gone(self, why: str) -> None:
        with self.lock:
            if not self.failure:
                self.failure = why
            workers, self.workers = list(self.workers.values()), {}
        self.ready.set()
        for worker in workers:
            worker.lost(why)

    def abandon(self, why: str) -> None:
        """Give up on a server that does not answer: kill it (its workers die with it)."""
        self._gone(why)
        if self.proc is not None:
            with suppress(OSError):
                self.proc.kill()

    def wait_ready(self, stop: threading.Event | None = None) -> str:
        """Block until the server is ready (or ``stop`` is set); "" or why it cannot fork
        (then it never will)."""
        end = time.monotonic() + START_LIMIT_S
        while not self.ready.wait(0.1):
            if stop is not None and stop.is_set():
                return ""
            if time.monotonic() > end:
                self.abandon(f"the fork server was not ready within {START_LIMIT_S:g} s")
        return self.failure

    def announce(self, reason: str) -> None:
        """Say once, on stderr, why runs start cold when the server cannot fork them."""
        with self.lock:
            if reason != self.failure or self.announced:
                return
            self.announced = True
        print(f"warning: {reason}; runs start cold (a fresh interpreter each)", file=sys.stderr, flush=True)

    def send(self, message: dict[str, Any], fds: list[int] | None = None) -> None:
        data = json.dumps(message).encode()
        if self.failure:
            raise ServerGone(self.failure)
        with self.send_lock:
            try:
                if fds:
                    socket.send_fds(self.sock, [data], fds)
                else:
                    self.sock.send(data)
            except OSError as exc:
                raise ServerGone(f"the fork server's socket failed: {exc}") from None

    def spawn(self, request: dict[str, Any], log_fd: int) -> WarmWorker:
        """Fork a worker for ``request`` with ``log_fd`` as its stdout and stderr."""
        failure = self.wait_ready()
        if failure:
            raise ServerGone(failure)
        with self.lock:
            self.next_id += 1
            worker = WarmWorker(self, self.next_id)
            self.workers[worker.rid] = worker
        self.send(dict(request, op="run", id=worker.rid), [log_fd])
        if not worker.started.wait(REPLY_LIMIT_S):
            self.abandon(f"the fork server did not answer within {REPLY_LIMIT_S:g} s")
        if worker.error:
            raise ServerGone(worker.error)
        return worker

    def close(self) -> None:
        """End the server: it kills what it still runs."""
        with suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        if self.proc is not None and not self.ready.is_set():
            self.proc.kill()  # still importing: nothing of its own to end
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=5)
        self.sock.close()
