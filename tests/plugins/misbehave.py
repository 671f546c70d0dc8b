"""A test plugin whose methods fail in every way a real plugin can."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

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
    description = "never returns"

    def apply(self, model, params, ctx):
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
    for cls in (Raises, Segfault, Hang, OutOfMemory, Killed, Skips):
        register(cls)


@hookimpl
def harness_result(result):
    path = os.environ.get("MISBEHAVE_RESULT_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(f"{result['method']} {result['status']}\n")
