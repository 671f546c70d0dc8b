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
``HARNESS_WORKERS=cold``, a server that failed to start, or a CUDA run when the server has
initialised CUDA. Each result says which in ``env["worker_mode"]``. The driver's helper
children (model preparation, idle power) are forked from the same server.
"""

from __future__ import annotations

import os

MODE_VAR = "HARNESS_WORKER_MODE"  # set in each worker's environment; environment.py records it
WARM = "warm: forked from a fork server"


def cold(reason: str = "") -> str:
    """The worker mode of a fresh interpreter, with why."""
    return f"cold: fresh interpreter ({reason})" if reason else "cold: fresh interpreter"


def worker_mode() -> str:
    """This worker's mode, as its executor set it."""
    return os.environ.get(MODE_VAR) or cold()
