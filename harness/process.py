"""Starting and ending the processes of a run, and cleaning up after dead ones.

- :func:`python_command`: the argv that runs a module in a fresh Python without the
  current directory on ``sys.path`` (``python -m`` puts it first, so a ``torch.py`` in the
  directory ``harness bench`` was started from would shadow torch in every child).
- :func:`become_subreaper` and :func:`end_descendants`: a worker adopts the orphans of its
  children (daemons that ``setsid`` and fork away) and ends them all before it exits.
- :class:`ProcessTree`: the executor's record of a worker's descendants, to end those that
  left its process group when the worker itself died too hard to clean up.
- :func:`exclusive`: one process at a time builds what a path names (a cached model, the
  machine's peaks); the others wait, then find it built.
- :func:`run_dir`: a run's temp dir (spec.json, result.json) under a per-user parent,
  named with the driver's pid and locked while in use; the next run removes those whose
  driver is gone (killed with -9).

Linux is the target: elsewhere there is no subreaper and no ``/proc``, and only the
executor's process-group kill applies.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: a run dir's owner is judged by its pid alone
    fcntl = None  # type: ignore[assignment]

SAFE_PATH_FLAG = sys.version_info >= (3, 11)  # python -P: no unsafe path at sys.path[0]

# Python 3.10 has no -P: `python -c` puts '' (the cwd) at sys.path[0]; drop it before
# importing anything (runpy too), then run the module as -m would.
BOOTSTRAP = (
    "import sys\n"
    "if sys.path and sys.path[0] in ('', '.'):\n"
    "    del sys.path[0]\n"
    "import runpy\n"
    "runpy.run_module(sys.argv.pop(1), run_name='__main__', alter_sys=True)\n"
)


def python_command(module: str, *args: str) -> list[str]:
    """The argv that runs ``python -m module args...`` with the cwd kept off ``sys.path``
    (``$PYTHONPATH`` still applies)."""
    return command(module, args, safe_flag=SAFE_PATH_FLAG)


def command(module: str, args: tuple[str, ...], *, safe_flag: bool) -> list[str]:
    """:func:`python_command` with ``-P`` (``safe_flag``) or the 3.10 bootstrap."""
    if safe_flag:
        return [sys.executable, "-P", "-m", module, *args]
    return [sys.executable, "-c", BOOTSTRAP, module, *args]


PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make this process adopt its descendants' orphans (Linux), so that a daemon one of its
    children started stays in its tree; False where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        return ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of ``pid`` from /proc, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()  # the name may hold spaces and parentheses
    try:
        return int(fields[1]), int(fields[19])
    except (IndexError, ValueError):
        return None


def _processes() -> dict[int, tuple[int, int]]:
    try:
        names = os.listdir("/proc")
    except OSError:
        return {}
    found = {}
    for name in names:
        if name.isdigit() and (info := _stat(int(name))) is not None:
            found[int(name)] = info
    return found


def descendants(root: int, processes: dict[int, tuple[int, int]] | None = None) -> dict[int, int]:
    """The living descendants of ``root``: pid → start time (empty without /proc)."""
    processes = _processes() if processes is None else processes
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _) in processes.items():
        children[ppid].append(pid)
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found[child] = processes[child][1]
                todo.append(child)
    return found


def _signal(pid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _reap() -> None:
    """Collect this process's exited children (zombies)."""
    with suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def end_descendants(grace_s: float = 1.0, limit_s: float = 10.0) -> None:
    """End every descendant of this process: SIGTERM, then SIGKILL after ``grace_s``; reap
    them. Those that a subreaper adopts while their parents die are found on the next pass."""
    me, t0 = os.getpid(), time.monotonic()
    while time.monotonic() - t0 < limit_s:
        _reap()
        found = descendants(me)  # zombies among them go when their parents do
        if not found:
            return
        sig = signal.SIGTERM if time.monotonic() - t0 < grace_s else signal.SIGKILL
        for pid in found:
            _signal(pid, sig)
        time.sleep(0.02)


class ProcessTree:
    """The descendants a process has had, recorded by :meth:`scan` while it runs, so that
    :meth:`kill` can still end those that left its process group once it has died."""

    def __init__(self, root: int):
        self.root = root
        self.seen: dict[int, int] = {}  # pid → start time: a reused pid is not ours

    def scan(self) -> None:
        processes = _processes()
        self.seen = {pid: start for pid, start in self.seen.items()
                     if pid in processes and processes[pid][1] == start}
        self.seen.update(descendants(self.root, processes))

    def kill(self) -> None:
        for pid, start in self.seen.items():
            info = _stat(pid)
            if info is not None and info[1] == start:
                _signal(pid, signal.SIGKILL)


RUN_DIR_PREFIX = "harness-run-"  # + the driver's pid + "-"
LOCK = ".lock"  # held by the driver while its run dir is in use


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of the text file ``path`` ("" where it cannot be read)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def private(path: Path) -> bool:
    """Whether ``path`` is a folder of this user's that no one else may enter."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


def private_runs_root() -> Path | None:
    """:func:`runs_root` where it is this user's own folder (mode 0700), else None: the
    place for what another user must not plant or read (kept idle-power figures)."""
    root = runs_root()
    return root if root.name.startswith("harness-runs-") and private(root) else None


def runs_root() -> Path:
    """The parent of run dirs: ``$TMPDIR/harness-runs-<uid>``, or the temp dir itself
    where that cannot be made this user's own."""
    tmp = Path(tempfile.gettempdir())
    if not hasattr(os, "getuid"):
        return tmp
    root = tmp / f"harness-runs-{os.getuid()}"
    try:
        root.mkdir(mode=0o700, exist_ok=True)
        info = root.lstat()
    except OSError:
        return tmp
    return root if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() else tmp


def _alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # no harmless probe: keep its dir
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _locked(path: Path) -> bool:
    if fcntl is None:
        return False
    try:
        fh = open(path, "rb")
    except OSError:
        return False
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        return False


def sweep_run_dirs(root: Path) -> None:
    """Remove the run dirs under ``root`` whose driver is gone: the pid in the name does not
    run and the dir's lock is free (a driver killed with -9 leaves both so)."""
    with suppress(OSError):
        for entry in list(root.iterdir()):
            pid = entry.name[len(RUN_DIR_PREFIX):].partition("-")[0]
            if (entry.name.startswith(RUN_DIR_PREFIX) and pid.isdigit() and not _alive(int(pid))
                    and not _locked(entry / LOCK)):
                shutil.rmtree(entry, ignore_errors=True)


@contextmanager
def run_dir(root: Path) -> Iterator[Path]:
    """A fresh run dir under ``root``, named with this process's pid and locked while in use;
    stale ones go first."""
    sweep_run_dirs(root)
    path = Path(tempfile.mkdtemp(prefix=f"{RUN_DIR_PREFIX}{os.getpid()}-", dir=root))
    lock = open(path / LOCK, "wb")
    try:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        lock.close()


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold ``<path>.lock`` (an advisory ``flock``) while building what ``path`` names, so
    parallel runs, benches or test workers build it once: whoever waited re-checks whether
    it exists. Where no lock can be had (no fcntl, a read-only cache), none is held: at
    worst two build the same thing, each writing it atomically."""
    try:
        import fcntl

        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path.with_name(path.name + ".lock"), "a")
    except (ImportError, OSError):
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
