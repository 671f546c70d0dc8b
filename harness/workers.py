"""Where the children of a bench come from: :class:`Workers` holds one fork server (warm:
torch, the plugins and, with energy on, codecarbon's set-up loaded once) or none (cold: a
fresh interpreter each), and starts through it both the runs' workers and the driver's
helper children (model preparation, the idle-power measurement), with the same isolation:
each child in its own session, ended with its whole process tree, its output captured.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.process import run_dir, runs_root
from harness.result import RunResult
from harness.spec import RunSpec
from harness.supervise import run_in_subprocess, start_child, supervise
from harness.warm.client import ForkServer, warm_unavailable

TAIL = 20  # lines of a helper child's output kept for its error message
PREPARE_TIMEOUT_S = 3600.0  # a model's one-time preparation (a download, a training); $HARNESS_PREPARE_TIMEOUT_S


def prepare_timeout_s() -> float:
    """How long a model's preparation may take: ``$HARNESS_PREPARE_TIMEOUT_S`` seconds,
    else :data:`PREPARE_TIMEOUT_S` (long enough to download a large model; a hung download
    must still end)."""
    raw = os.environ.get("HARNESS_PREPARE_TIMEOUT_S", "").strip()
    try:
        value = float(raw) if raw else PREPARE_TIMEOUT_S
    except ValueError:
        value = float("nan")
    if not value > 0:  # nan too
        raise UsageError(f"HARNESS_PREPARE_TIMEOUT_S={raw!r} is not a positive number of seconds; "
                         f"set e.g. HARNESS_PREPARE_TIMEOUT_S=7200, or unset it for {PREPARE_TIMEOUT_S:g}")
    return value


class _Lines:
    """A child's output, split into lines for ``on_line``; the last :data:`TAIL` kept."""

    def __init__(self, on_line: Callable[[str], None] | None):
        self.on_line, self.buffer, self.tail = on_line, b"", []

    def write(self, data: bytes) -> None:
        *lines, self.buffer = (self.buffer + data).split(b"\n")
        for line in lines:
            self._line(line)

    def _line(self, raw: bytes) -> None:
        line = raw.decode(errors="replace").rstrip("\r")
        self.tail = (self.tail + [line])[-TAIL:]
        if self.on_line is not None:
            self.on_line(line)

    def close(self) -> None:
        if self.buffer:
            self._line(self.buffer)
            self.buffer = b""


class Workers:
    """A bench's source of child processes: :meth:`start` the fork server (nothing where
    runs start cold), :meth:`run` a spec, :meth:`call` a helper module, :meth:`close`."""

    def __init__(self) -> None:
        self.reason = warm_unavailable()  # why runs start cold, or None
        self.server: ForkServer | None = None
        self._stack = ExitStack()

    def start(self, runs: list[RunSpec]) -> None:
        """Start the fork server for ``runs`` as early as the driver knows them: its imports
        overlap the driver's own work (model preparation and the idle measurement are then
        forked from it too) until the first child is forked."""
        if self.server is None and runs and self.reason is None:
            home = self._stack.enter_context(run_dir(runs_root()))  # the server's log, kept while it runs
            from harness.warm.preload import plugin_uses

            uses = sorted({use for run in runs  # their plugins' preload modules
                           for use in plugin_uses(run.model.source, run.task.kind, (s.use for s in run.steps))})
            self.server = ForkServer(home / "forkserver.log", energy=any(r.measure.energy for r in runs), uses=uses)

    def wait_ready(self) -> float:
        """Wait for the fork server's imports, where there is one; the seconds waited."""
        t0 = time.monotonic()
        if self.server is not None:
            self.server.wait_ready()
        return time.monotonic() - t0

    def run(self, spec: RunSpec, log_path: Path, stop: threading.Event | None = None,
            gpu: str | None = None, env: dict[str, str] | None = None) -> RunResult:
        """Run ``spec`` in its own worker that sees only ``gpu`` (None: what this process
        sees) and ``env`` besides this process's environment."""
        return run_in_subprocess(spec, log_path, stop, self.server, self.reason or "", gpu, env)

    def call(self, module: str, args: list[str], on_line: Callable[[str], None] | None = None,
             env: dict[str, Any] | None = None, timeout_s: float = float("inf")) -> tuple[int, list[str]]:
        """Run ``python -m module args`` (forked where it can) to its end: (its exit status,
        its last lines of stdout and stderr together), each line also to ``on_line``.

        :raises TimeoutError: it ran longer than ``timeout_s`` (it and its children are ended)."""
        server = self.server
        reason = server.wait_ready() if server is not None else self.reason or "no fork server"
        lines = _Lines(on_line)
        with run_dir(runs_root()) as tmp:
            child = start_child(module, args, tmp, dict(os.environ) | (env or {}), server, reason)
            code, why = supervise(child, lines, time.monotonic() + timeout_s, None)
        lines.close()
        if why == "timeout":
            raise TimeoutError(f"python -m {module} ran longer than {timeout_s:g} s")
        return code, lines.tail

    def prepare(self, model: dict[str, Any], suite_dir: str, on_line: Callable[[str], None] | None = None,
                timeout_s: float | None = None) -> tuple[int, list[str]]:
        """Let ``model``'s source (a :meth:`ModelSpec.to_dict`) do its one-time work in a
        child (``python -m harness.worker --prepare``): as :meth:`call`, ended after
        ``timeout_s`` (default :func:`prepare_timeout_s`) with a TimeoutError that names the
        model and the fix."""
        timeout_s = prepare_timeout_s() if timeout_s is None else timeout_s
        try:
            return self.call("harness.worker", ["--prepare", json.dumps(model), suite_dir], on_line,
                             timeout_s=timeout_s)
        except TimeoutError:
            raise TimeoutError(
                f"preparing model '{model['name']}' (source {model['source']}, ref {model['ref']}) took longer than "
                f"{timeout_s:g} s and was stopped: if it is a slow download rather than a hung one, set "
                f"HARNESS_PREPARE_TIMEOUT_S to more seconds (e.g. {4 * timeout_s:g})") from None

    def close(self) -> None:
        if self.server is not None:
            self.server.close()  # it ends whatever it still runs, then itself
            self.server = None
        self._stack.close()
