"""The hooks a harness plugin may implement.

Every registration hook receives a ``register`` callback; call it once per thing the
plugin provides. Built-in plugins use exactly these hooks. Load order: the built-in
plugins of the ``harness`` distribution first, then third-party entry points sorted by
name; on a duplicate name the first registration wins and the later plugin is marked
broken.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("harness")


@hookspec
def harness_register_methods(register: Callable[[type], None]) -> None:
    """Register compression methods.

    :param register: call with a :class:`harness.api.Method` subclass; its ``name``
        (e.g. ``"quant.int8-dynamic"``) is how suites refer to it.
    """


@hookspec
def harness_register_models(register: Callable[[type], None]) -> None:
    """Register model sources (``builtin``, ``file``, ``hf``, ...).

    :param register: call with a :class:`harness.api.ModelSource` subclass.
    """


@hookspec
def harness_register_tasks(register: Callable[[type], None]) -> None:
    """Register task kinds (``classification``, ``lm-eval``, ...).

    :param register: call with a :class:`harness.api.TaskKind` subclass.
    """


@hookspec
def harness_register_executors(register: Callable[[str, str], None]) -> None:
    """Register executors that run a plan's runs.

    :param register: call with ``(name, "module:attr")``; the target is imported only
        when a suite runs with ``--executor name``.
    """


@hookspec
def harness_register_reporters(register: Callable[[str, str], None]) -> None:
    """Register leaderboard/report writers.

    :param register: call with ``(name, "module:attr")`` of a function
        ``write(frame, path) -> None``.
    """


@hookspec
def harness_result(result: dict[str, Any]) -> None:
    """Called by the driver after each run's result is stored.

    :param result: the result row exactly as written to ``results.jsonl``.
        Exceptions raised here are reported and otherwise ignored.
    """
