"""The baseline method, the local and Ray executors, and the table writers."""

from __future__ import annotations

from harness import hookimpl
from harness.api import Method


class Baseline(Method):
    """The uncompressed model: the reference every other method is compared to."""

    name = "baseline"
    family = "none"
    description = "no change: the reference for accuracy, speed and size ratios"

    def apply(self, model, params, ctx):
        return model, {"changed": "nothing", "kernels": "real"}


@hookimpl
def harness_register_methods(register):
    register(Baseline)


@hookimpl
def harness_register_executors(register):
    register("local", "harness.executor:LocalExecutor")
    register("ray", "harness_plugins.ray_executor:RayExecutor")


@hookimpl
def harness_register_reporters(register):
    register("csv", "harness.reporters:write_csv")
    register("markdown", "harness.reporters:write_markdown")
