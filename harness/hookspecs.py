"""The hooks a harness plugin may implement.

Every registration hook receives the same ``register`` callback::

    register(SomeClass)                              # checked now; its ``name`` is the key
    register("package.module:SomeClass", name="x")   # lazy: imported and checked on first use

Call it once per thing the plugin provides; each kind has its base class in
:mod:`harness.api`. Built-in plugins use exactly these hooks. Load order: the core
defaults, the built-in plugins of the ``harness`` distribution, then third-party entry
points sorted by name; on a duplicate name the first registration wins and the later
plugin is marked broken. pluggy passes only the arguments a hook implementation names,
so hooks can grow new arguments without breaking older plugins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("harness")

# register(SomeClass) or register("module:Class", name="...")
Register = Callable[..., None]


@hookspec
def harness_register_methods(register: Register) -> None:
    """Register compression methods.

    :param register: call with a :class:`harness.api.Method` subclass; its ``name``
        (e.g. ``"quant.int8-dynamic"``) is how suites refer to it.
    """


@hookspec
def harness_register_models(register: Register) -> None:
    """Register model sources (``builtin``, ``file``, ``hf``, ...).

    :param register: call with a :class:`harness.api.ModelSource` subclass.
    """


@hookspec
def harness_register_tasks(register: Register) -> None:
    """Register task kinds (``classification``, ``lm-eval``, ...).

    :param register: call with a :class:`harness.api.TaskKind` subclass.
    """


@hookspec
def harness_register_runtimes(register: Register) -> None:
    """Register runtimes that run the compressed model (``torch``, ``onnxruntime``, ...).

    :param register: call with a :class:`harness.api.Runtime` subclass (or lazily, as for
        executors).
    """


@hookspec
def harness_register_executors(register: Register) -> None:
    """Register executors that run a plan's runs (``harness bench --executor NAME``).

    :param register: call with a :class:`harness.api.Executor` subclass, or lazily with
        ``("module:Class", name=...)`` so that its imports (e.g. Ray) happen only when a
        suite runs with it.
    """


@hookspec
def harness_register_reporters(register: Register) -> None:
    """Register leaderboard writers; ``harness report`` writes ``leaderboard.<suffix>``
    with each.

    :param register: call with a :class:`harness.api.Reporter` subclass (or lazily, as
        for executors).
    """


@hookspec
def harness_result(result: dict[str, Any]) -> None:
    """Called by the driver after each run's result is stored.

    :param result: the result row exactly as written to ``results.jsonl``.
        Exceptions raised here are reported and otherwise ignored.
    """
