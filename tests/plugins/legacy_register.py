"""A plugin that registers an executor in the old two-positional form."""

from harness import hookimpl


@hookimpl
def harness_register_executors(register):
    register("old", "harness.executor:LocalExecutor")
