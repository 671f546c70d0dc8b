"""Where the children of a bench come from: :class:`Workers` holds one fork server (warm:
torch, the plugins and, with energy on, codecarbon's set-up loaded once) or none (cold: a
fresh interpreter each), and starts through it both the runs' workers and the driver's
helper children (model preparation, the idle-power measurement), with the same isolation:
each child in its own session, ended with its whole process tree, its output captured.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from harness.process import run_dir, runs_root
from harness.result import RunResult
from harness.spec import RunSpec
from harness.supervise import run_in_subprocess, start_child, supervise
from harness.warm.client import ForkServer, warm_unavailable

TAIL = 20  # lines of a helper child's output kept for its error message


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

    def run(self, spec: RunSpec, log_path: Path, stop: threading.Event | None = None,
            gpu: str | None = None) -> RunResult:
        """Run ``spec`` in its own worker that sees only ``gpu`` (None: what this process sees)."""
        return run_in_subprocess(spec, log_path, stop, self.server, self.reason or "", gpu)

    def call(self, module: str, args: list[str], on_line: Callable[[str], None] | None = None,
             env: dict[str, Any] | None = None) -> tuple[int, list[str]]:
        """Run ``python -m module args`` (forked where it can) to its end: (its exit status,
        its last lines of stdout and stderr together), each line also to ``on_line``."""
        server = self.server
        reason = server.wait_ready() if server is not None else self.reason or "no fork server"
        lines = _Lines(on_line)
        with run_dir(runs_root()) as tmp:
            child = start_child(module, args, tmp, dict(os.environ) | (env or {}), server, reason)
            code, _ = supervise(child, lines, float("inf"), None)
        lines.close()
        return code, lines.tail

    def close(self) -> None:
        if self.server is not None:
            self.server.close()  # it ends whatever it still runs, then itself
            self.server = None
        self._stack.close()
