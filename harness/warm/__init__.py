"""Warm workers: runs forked from a fork server that has imported torch and the plugins.

A fresh ``python -m harness.worker`` pays for its imports on every run (torch, torchao,
codecarbon: seconds), and codecarbon's hardware detection on every run with energy on.
The local executor instead starts one fork server per suite (:mod:`harness.warm.server`,
``python -P -m harness.warm.server``: no cwd on the path), which imports all that once;
each run is a child forked from it that runs exactly what ``python -m harness.worker``
runs, in its own session (so the executor's group kill and process-tree sweep apply
unchanged), with its output on the run's log pipe, and dies with the server, which dies
with the driver. :mod:`harness.warm.client` is the driver's side.

Cold mode (a fresh interpreter per run, :mod:`harness.warm.cold`: it loads what the server
loads, :mod:`harness.warm.preload`, then runs the worker, so both modes start a run from
the same state) stays where forking is unsafe or unwanted: not Linux,
``HARNESS_WORKERS=cold``, a server that failed to start, a server in which threads still
run after its imports (a fork copies only one thread: see
:func:`harness.warm.server.single_threaded`), or a CUDA run when the server has
initialised CUDA. Each result says which in ``env["worker_mode"]``. The driver's helper
children (model preparation, idle power) are forked from the same server.
"""

from __future__ import annotations

import os
import sys

MODE_VAR = "HARNESS_WORKER_MODE"  # set in each worker's environment; environment.py records it
WARM = "warm: forked from a fork server"


def cold(reason: str = "") -> str:
    """The worker mode of a fresh interpreter, with why."""
    return f"cold: fresh interpreter ({reason})" if reason else "cold: fresh interpreter"


def worker_mode() -> str:
    """This worker's mode, as its executor set it."""
    return os.environ.get(MODE_VAR) or cold()


WORKER_MODES = ("warm", "cold")
_WARNED: set[str] = set()


def workers_setting() -> str:
    """``$HARNESS_WORKERS``: warm (the default: one fork server per bench) or cold (a fresh
    interpreter per run); anything else is warm, said once."""
    value = os.environ.get("HARNESS_WORKERS", "").strip().lower() or "warm"
    if value not in WORKER_MODES:
        if value in _WARNED:
            return "warm"
        _WARNED.add(value)
        print(f"warning: HARNESS_WORKERS={value!r} is none of {', '.join(WORKER_MODES)}; runs are warm",
              file=sys.stderr, flush=True)
        return "warm"
    return value


def warm_unavailable() -> str | None:
    """Why no run of this process may be forked from a fork server, or None."""
    if workers_setting() == "cold":
        return "HARNESS_WORKERS=cold"
    if not sys.platform.startswith("linux"):
        return f"no fork server on {sys.platform}: fork is only trusted on Linux"
    return None
