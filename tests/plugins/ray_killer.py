"""A method that kills the process that started its worker (the Ray worker, under the
ray executor), as a crashed or OOM-killed Ray worker would die."""

import os
import signal

from harness import hookimpl
from harness.api import Method


class KillParent(Method):
    name = "test.kill-parent"
    description = "SIGKILLs the worker's parent process"

    def apply(self, model, params, ctx):
        os.kill(os.getppid(), signal.SIGKILL)
        return model, {}


@hookimpl
def harness_register_methods(register):
    register(KillParent)
