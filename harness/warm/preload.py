"""What every worker loads before its run, in one place: the fork server loads it once
for all the workers it forks, and a cold worker (:mod:`harness.warm.cold`) loads the same
first, so that both start their run from the same state (the same modules, and so the
same resident memory to count peak RSS from, see :mod:`harness.measure.memory`)."""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Iterable
from contextlib import suppress
from typing import Any

# torch._dynamo: torch.utils.flop_counter (the roofline's FLOPs, every run) imports it on
# first use, 1-1.5 s of each forked worker otherwise; it starts no thread
MODULES = ("harness.measure.session", "harness.measure.perf", "harness.measure.environment",
           "harness.measure.idle", "harness.measure.roofline", "torch.utils.flop_counter", "torch._dynamo")


def plugin_uses(source: str, kind: str, methods: Iterable[str]) -> list[str]:
    """``kind:name`` of the plugins a run uses: its model source, task kind and methods."""
    return [f"source:{source}", f"task:{kind}"] + [f"method:{use}" for use in methods]


def uses_of(spec: dict[str, Any]) -> list[str]:
    """:func:`plugin_uses` of a run given as a :class:`RunSpec`'s dict (a cold worker's spec file)."""
    try:
        return plugin_uses(spec["model"]["source"], spec["task"]["kind"], [step["use"] for step in spec["steps"]])
    except (KeyError, TypeError):
        return []  # the worker reports what is wrong with the spec


def preload(energy: bool, release_nvml: bool = False, uses: Iterable[str] = ()) -> int:
    """Import torch, the worker, every plugin's modules (with ``energy``,
    codecarbon too, and let it detect the hardware), and the ``preload`` modules of the
    plugins named in ``uses`` (``kind:name``); with ``release_nvml``, close NVML again (a
    forked child opens its own) and return how many inits the child redoes."""
    # pyarrow's import (``datasets``) starts jemalloc's background thread, although arrow
    # allocates with mimalloc by default: off, so that the fork server has no thread left to
    # fork past (see harness.warm.server.single_threaded). jemalloc reads this as it starts;
    # a value of one's own is kept (and then the runs of a suite using datasets start cold).
    os.environ.setdefault("JE_ARROW_MALLOC_CONF", "background_thread:false")
    helper = None
    if energy:  # codecarbon's set-up mostly waits (py-cpuinfo runs a subprocess): overlap it
        helper = threading.Thread(target=_prepare_codecarbon, name="codecarbon-setup")
        helper.start()
    import torch  # noqa: F401

    import harness.worker  # noqa: F401
    from harness.plugins import load_plugins

    plugins = load_plugins()
    for kind in ("source", "task", "method"):  # lazy entries: import their modules now
        for name in plugins.names(kind):
            with suppress(Exception):
                plugins.lookup(kind, name)
    for module in MODULES + _declared(plugins, uses):
        with suppress(Exception):  # optional, and a broken install must not stop the server
            importlib.import_module(module)
    if helper is not None:
        helper.join()
    return _release_nvml() if release_nvml else 0


def _declared(plugins: Any, uses: Iterable[str]) -> tuple[str, ...]:
    """The ``preload`` modules the plugins named in ``uses`` declare, in order, once each."""
    found: dict[str, None] = {}
    for use in uses:
        kind, _, name = use.partition(":")
        with suppress(Exception):  # an unknown or broken plugin: its run reports it
            found.update(dict.fromkeys(getattr(plugins.lookup(kind, name), "preload", ())))
    return tuple(found)


def _prepare_codecarbon() -> None:
    """Import codecarbon and let it detect the hardware (only with energy on: else a run
    would not import it, and it would only add to each worker's RSS)."""
    with suppress(Exception):
        for module in ("codecarbon", "codecarbon.emissions_tracker", "codecarbon.external.geography"):
            importlib.import_module(module)
        from harness.measure.carbon import prepare

        prepare()


def _release_nvml() -> int:
    """Close NVML here (codecarbon opens it at import): a forked child opens its own."""
    nvml = sys.modules.get("pynvml")
    count = getattr(nvml, "_nvmlLib_refcount", 0) if nvml else 0
    for _ in range(count):
        with suppress(Exception):
            nvml.nvmlShutdown()
    return count
