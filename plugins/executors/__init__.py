"""Executors beyond the core's local one: ``ray`` (:mod:`.ray`), registered lazily so
that ray is imported only when a suite asks for it."""

from __future__ import annotations

from harness import hookimpl


@hookimpl
def harness_register_executors(register):
    register("harness_plugins.executors.ray:RayExecutor", name="ray")
