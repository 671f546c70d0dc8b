"""How many runs shared this machine during a window of time, for each run's share of the
machine's RAM power.

The local executor keeps a :class:`RunningLog`: a line ``<monotonic seconds> <runs
running>`` appended each time that number changes, in a file it names to its workers in
``$HARNESS_RUNNING_FILE``. A run averages the number over each of its energy windows
(:func:`mean_running`), so that a run that ends alone after the others finished is
charged the whole RAM power for that time, not ``1/--jobs`` of it. ``time.monotonic`` is
one clock for every process of a Linux machine.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

RUNNING_FILE_VAR = "HARNESS_RUNNING_FILE"


class RunningLog:
    """The executor's side: :meth:`change` the number of runs running by ``delta``."""

    def __init__(self, path: Path):
        self.path, self.running, self._lock = path, 0, threading.Lock()
        path.write_text("")

    def change(self, delta: int) -> int:
        """Record the new number of runs running (now); return it."""
        with self._lock:
            self.running += delta
            with self.path.open("a") as log:  # one short write: a reader sees whole lines or none
                log.write(f"{time.monotonic():.6f} {self.running}\n")
            return self.running


def mean_running(path: str | Path, start: float, end: float) -> float | None:
    """The time-weighted mean number of runs running over ``[start, end]`` (monotonic
    seconds); None when the log cannot be read or starts after ``end``."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    points = []
    for line in text.splitlines():
        try:
            t, n = line.split()
            points.append((float(t), int(n)))
        except ValueError:  # a line being written
            continue
    before = [n for t, n in points if t <= start]
    if not points or points[0][0] > end:
        return None
    count = before[-1] if before else points[0][1]
    if end <= start:
        return float(count)
    total, at = 0.0, start
    for t, n in points:
        if start < t < end:
            total += count * (t - at)
            count, at = n, t
    return (total + count * (end - at)) / (end - start)
