"""A method that kills the Ray worker process its run's worker descends from, as a
crashed or OOM-killed Ray worker (or a lost node) would end it."""

import os
import signal
from pathlib import Path

from harness import hookimpl
from harness.api import Method


def _ray_worker() -> int:
    """The nearest ancestor whose command line Ray named ``ray::...``."""
    pid = os.getppid()
    while pid > 1:
        if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::"):
            return pid
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    raise RuntimeError("not under a Ray worker")


class KillParent(Method):
    name = "test.kill-parent"
    description = "SIGKILLs the Ray worker this run runs under"

    def apply(self, model, params, ctx):
        os.kill(_ray_worker(), signal.SIGKILL)
        return model, {}


@hookimpl
def harness_register_methods(register):
    register(KillParent)
