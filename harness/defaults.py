"""What every harness has, registered through the same hooks as any plugin but never
disabled: the ``baseline`` method every plan starts with, the ``local`` executor, and the
``csv`` and ``markdown`` leaderboard writers."""

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
    register("harness.executor:LocalExecutor", name="local")


@hookimpl
def harness_register_reporters(register):
    register("harness.table_writers:CsvWriter", name="csv")
    register("harness.table_writers:MarkdownWriter", name="markdown")
