"""A test plugin whose methods fail in every way a real plugin can."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from harness import hookimpl
from harness.api import Method


class Raises(Method):
    name = "test.raise"
    description = "raises an exception in apply"

    def apply(self, model, params, ctx):
        raise RuntimeError("this method always fails")


class Segfault(Method):
    name = "test.segfault"
    description = "crashes the process hard (SIGSEGV)"

    def apply(self, model, params, ctx):
        print("about to crash", flush=True)
        os.kill(os.getpid(), signal.SIGSEGV)


class Hang(Method):
    name = "test.hang"
    description = "never returns (with $MISBEHAVE_HANG_WHILE: only while that file exists)"

    def apply(self, model, params, ctx):
        gate = os.environ.get("MISBEHAVE_HANG_WHILE")
        if gate and not Path(gate).exists():
            return model, {}
        print("hanging now", flush=True)
        while True:
            time.sleep(1)


class OutOfMemory(Method):
    name = "test.oom"
    description = "allocates until the address-space limit it sets is hit"

    def apply(self, model, params, ctx):
        import resource

        with open("/proc/self/status") as fh:
            size = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
        limit = size + (512 << 20)  # a little headroom: the test must not eat the machine
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        hog = []
        while True:
            hog.append(bytearray(64 << 20))


class Killed(Method):
    name = "test.oom-killed"
    description = "dies the way the kernel's OOM killer kills (SIGKILL)"

    def apply(self, model, params, ctx):
        os.kill(os.getpid(), signal.SIGKILL)


class OsExit(Method):
    name = "test.os-exit"
    description = "leaves with os._exit(3): no exception, no result"

    def apply(self, model, params, ctx):
        print("leaving now", flush=True)
        os._exit(3)


def _leave_a_child(name: str, detach: bool) -> None:
    """Fork a child that sleeps 300 s and writes its pid to ``$MISBEHAVE_PID_DIR/<name>.pid``.
    ``detach``: daemonize it (fork, setsid, fork again) so that it leaves the worker's process
    group, its session and its parent, the way a server started in the background does."""
    path = Path(os.environ["MISBEHAVE_PID_DIR"]) / f"{name}.pid"
    pid = os.fork()
    if pid == 0:
        try:
            if detach:
                os.setsid()
                if os.fork():
                    os._exit(0)
            path.with_suffix(".tmp").write_text(str(os.getpid()))
            os.replace(path.with_suffix(".tmp"), path)
            time.sleep(300)
        finally:
            os._exit(0)
    if detach:
        os.waitpid(pid, 0)  # the middle process exits at once; its child is an orphan
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


class LeaveChildren(Method):
    name = "test.leave-children"
    description = ("forks a child (same process group) and daemonizes another (setsid, double fork), "
                   "both outliving the method; the run is ok")

    def apply(self, model, params, ctx):
        _leave_a_child("child", detach=False)
        _leave_a_child("daemon", detach=True)
        return model, {}


class Chatty(Method):
    name = "test.chatty"
    description = "prints about 5 MB; the run is ok"

    def apply(self, model, params, ctx):
        filler = "x" * 92
        for i in range(50_000):
            print(f"chatty {i:06d} {filler}")
        print("chatty: the last line", flush=True)
        return model, {}


class NativeThread(Method):
    name = "test.native-thread"
    description = "its preload starts a native thread (a fork server must not fork past it); the run is ok"
    preload = ("native_thread",)

    def apply(self, model, params, ctx):
        return model, {}


@dataclass(frozen=True)
class SkipParams:
    reason: str = "needs hardware this machine lacks"


class Skips(Method):
    name = "test.skip"
    Params = SkipParams

    def check(self, model, ctx):
        return "needs hardware this machine lacks"

    def apply(self, model, params, ctx):
        raise AssertionError("apply must not run when check() gives a reason")


@hookimpl
def harness_register_methods(register):
    for cls in (Raises, Segfault, Hang, OutOfMemory, Killed, OsExit, LeaveChildren, Chatty, Skips,
                NativeThread):
        register(cls)


@hookimpl
def harness_result(result):
    path = os.environ.get("MISBEHAVE_RESULT_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(f"{result['method']} {result['status']}\n")
