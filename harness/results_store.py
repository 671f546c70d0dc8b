"""The driver's hold on a results directory while ``harness bench`` writes to it.

- A lock (``<dir>/.lock``): a second ``bench`` on the same results exits with a message.
- Free space is checked before anything runs.
- ``results.jsonl`` is held open: before each append the file at the path must still be
  the file held, with the size last written; a deleted, replaced or truncated results
  file stops the suite loudly, and what the held file still has is saved next to it.
- A failed write (disk full) is rolled back to the last complete row and stops the suite.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import time
from pathlib import Path

from harness.errors import UsageError
from harness.result import RunResult

MIN_FREE_BYTES = 50 * 2**20  # a suite's rows and logs need far less; below this, stop before running


class ResultsLost(Exception):
    """Results could not be stored safely; the message says what happened and where
    the rows are. ``harness bench`` stops and exits 3."""


class ResultsStore:
    def __init__(self, path: Path, min_free_bytes: int = MIN_FREE_BYTES):
        self.path = Path(path)
        self.min_free_bytes = min_free_bytes
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._size = 0
        self._lost: str | None = None  # once results could not be stored, every append refuses

    def __enter__(self) -> ResultsStore:
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        self._lock()
        free = shutil.disk_usage(directory).free
        if free < self.min_free_bytes:
            self.close()
            raise UsageError(f"only {free / 2**20:.0f} MiB free on the filesystem of {directory}; free some space "
                             f"(at least {self.min_free_bytes / 2**20:.0f} MiB) or pass --results on another disk")
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = os.fstat(self._fd).st_size
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lock(self) -> None:
        lock_path = self.path.parent / ".lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise UsageError(f"another 'harness bench' (pid {holder}) is writing {self.path.parent}; "
                             "wait for it to finish, or pass --results to use another directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def close(self) -> None:
        for attr in ("_fd", "_lock_fd"):
            fd = getattr(self, attr)
            if fd is not None:
                os.close(fd)
                setattr(self, attr, None)

    def append(self, result: RunResult) -> None:
        """Append one row durably, after checking that the results file is still ours."""
        assert self._fd is not None, "use ResultsStore as a context manager"
        if self._lost:
            raise ResultsLost(self._lost)
        try:
            self._write(result)
        except ResultsLost as exc:
            self._lost = str(exc)
            raise

    def _write(self, result: RunResult) -> None:
        if result.samples:
            from harness.outcomes import write_samples

            write_samples(self.path.parent, result.run_id, result.samples)
        line = json.dumps(result.to_row(samples=False), sort_keys=True, default=str).encode() + b"\n"
        self._check_identity(line)
        if self._size and os.pread(self._fd, 1, self._size - 1) != b"\n":
            line = b"\n" + line  # close off a torn last line (a crash before this driver)
        try:
            written = os.write(self._fd, line)
            if written != len(line):
                raise OSError(errno.ENOSPC, f"short write ({written} of {len(line)} bytes)")
            os.fsync(self._fd)
        except OSError as exc:
            os.ftruncate(self._fd, self._size)  # back to the last complete row
            raise ResultsLost(f"could not write to {self.path} ({exc.strerror or exc}); the suite stopped. "
                              f"Rows stored before are intact; free space and run the same command to go on "
                              f"(run {result.run_id} will run again)") from None
        self._size += len(line)

    def _check_identity(self, pending: bytes) -> None:
        held = os.fstat(self._fd)
        try:
            now = os.stat(self.path)
            problem = None
            if (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
                problem = "was replaced by another file"
            elif now.st_size < self._size:
                problem = f"was truncated ({now.st_size} bytes, {self._size} written)"
        except FileNotFoundError:
            problem = "was deleted"
        if problem is None:
            return
        saved = self._save_held(pending)
        raise ResultsLost(f"{self.path} {problem} while the suite ran (by a plugin or another program); "
                          f"the suite stopped so that no row is lost silently. "
                          f"The rows it held and the run that just finished are saved in {saved}: "
                          "check them and move them back")

    def _save_held(self, pending: bytes) -> Path:
        """What the held file still has, plus ``pending`` (a row not yet stored)."""
        saved = self.path.with_name(f"{self.path.name}.recovered-{time.strftime('%Y%m%d-%H%M%S')}")
        with open(saved, "wb") as out:
            offset = 0
            while chunk := os.pread(self._fd, 1 << 20, offset):
                out.write(chunk)
                offset += len(chunk)
            if offset and not chunk_ends_line(self._fd, offset):
                out.write(b"\n")
            out.write(pending)
            out.flush()
            os.fsync(out.fileno())
        return saved


def chunk_ends_line(fd: int, size: int) -> bool:
    return os.pread(fd, 1, size - 1) == b"\n"
