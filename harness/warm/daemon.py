"""A fork server kept between benches (``HARNESS_WORKERS=daemon``).

The per-bench fork server pays torch's and the plugins' imports (1–2 s, more with torchao
or transformers) once per ``harness bench``; for a short suite that is most of what the
harness itself costs. In daemon mode the first bench starts the server detached
(``python -P -m harness.warm.daemon SOCKET --idle=S``), later benches connect to it, and it
leaves after ``$HARNESS_DAEMON_IDLE_S`` (default 600) seconds without a bench.

Isolation is the per-bench server's: each run is a fresh fork in its own session, with the
environment and working directory of the bench that asked for it; a bench that ends (or is
killed) has its workers killed by the daemon, and the other benches it serves go on. What a
daemon imported, and what its workers inherit from it rather than from their bench, cannot
change under it: it serves only benches whose :func:`key` matches its own — the same
interpreter; the same harness and plugin code (the size and mtime of each source file of
the harness's packages, of each plugin's top-level package outside site-packages, and under
``$PYTHONPATH``; the entry points' distributions); the same installed packages (the mtimes
of the site-packages folders change with each install); the same environment; the same
CPU affinity, niceness, umask, cgroup and resource limits; and the same preload (energy,
the suite's plugins). A bench with anything else starts its own daemon; an unused one
leaves on its own.

Each daemon is a socket, a lock held for life (it holds the daemon's pid and start), and a
log, under ``$TMPDIR/harness-runs-<uid>/daemons`` (mode 0700); ``harness daemon`` lists
them, ``harness daemon --stop`` ends them (and the runs they still serve).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path

from harness.process import private, private_runs_root, python_command, runs_root, tail
from harness.warm.daemon_key import DaemonError, key  # noqa: F401 (DaemonError: the callers')

IDLE_S = 600.0  # $HARNESS_DAEMON_IDLE_S
STALE_S = 3600.0  # the files of a daemon gone this long are removed
MAX_PATH = 107  # sockaddr_un's sun_path, less its NUL
MAX_LOG_BYTES = 1 << 20  # a daemon's log beyond this is started afresh


def idle_s() -> float:
    try:
        return max(1.0, float(os.environ.get("HARNESS_DAEMON_IDLE_S", IDLE_S)))
    except ValueError:
        return IDLE_S


def home() -> Path:
    """The daemons' folder: this user's own (0700), inside the per-user runs folder."""
    root = private_runs_root()
    if root is None:
        raise DaemonError(f"no private folder for its socket ({runs_root()} is not this user's alone)")
    path = root / "daemons"
    with suppress(FileExistsError):
        path.mkdir(mode=0o700)
    if not private(path):
        raise DaemonError(f"{path} is not this user's alone (mode 0700); remove it")
    return path


def connect(energy: bool, uses: list[str], limit_s: float) -> socket.socket:
    """A socket connected to the daemon for this key, started first where none runs."""
    path = home() / f"{key(energy, uses)}.sock"
    if len(os.fsencode(path)) > MAX_PATH:
        raise DaemonError(f"its socket path is longer than {MAX_PATH} bytes ({path}); set TMPDIR shorter")
    end, proc = time.monotonic() + limit_s, None
    while time.monotonic() < end:
        sock = _try(path)
        if sock is not None:
            return sock
        if proc is not None and proc.poll() not in (None, 0):
            raise DaemonError(f"it failed to start: {tail(path.with_suffix('.log'), 1) or 'it ended without a word'}")
        if (proc is None or proc.poll() == 0) and not _held(path.with_suffix(".lock")):
            proc = _start(path, energy, uses)  # none runs (or the one that held the lock has gone)
        time.sleep(0.02)
    raise DaemonError(f"it did not listen within {limit_s:g} s (its log: {path.with_suffix('.log')})")


def _held(lock: Path) -> bool:
    """Whether a live daemon holds ``lock`` (it does from its start to its end)."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # not ours to judge (a link?): the daemon that opens it will refuse
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # releases a lock taken just now
    return False


def _start(path: Path, energy: bool, uses: list[str]) -> subprocess.Popen:
    log_path = path.with_suffix(".log")
    with suppress(OSError):
        if log_path.stat().st_size > MAX_LOG_BYTES:
            log_path.unlink()
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    try:
        argv = python_command("harness.warm.daemon", str(path), f"--idle={idle_s():g}")
        proc = subprocess.Popen(argv + (["--energy"] if energy else []) + [f"--uses={','.join(uses)}"],
                                stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT,
                                start_new_session=True)  # not ended by the terminal's Ctrl-C
    finally:
        os.close(fd)
    threading.Thread(target=proc.wait, name="daemon-reaper", daemon=True).start()  # no zombie when it leaves
    return proc


def _try(path: Path) -> socket.socket | None:
    """A connection to the socket at ``path``, if a process of this user listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect(str(path))
        uid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
    except OSError:
        sock.close()
        return None
    if uid != os.getuid():
        sock.close()
        raise DaemonError(f"a process of uid {uid} listens at {path}")
    return sock


def serve(path: Path, idle: float, energy: bool, uses: list[str]) -> int:
    """The daemon: serve at the socket ``path`` until ``idle`` seconds pass with no driver
    connected. The lock ``path.lock`` is held for life: a second daemon of the key leaves."""
    from harness.warm.server import Server, warm_up

    lock = os.fdopen(os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600), "r+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another one serves this key
    lock.truncate(0)
    lock.write(json.dumps({"pid": os.getpid(), "started": time.time(), "idle_s": idle, "energy": energy,
                           "uses": uses}))
    lock.flush()
    signal.signal(signal.SIGTERM, _leave)  # `harness daemon --stop`: end the workers, remove the socket
    nvml_inits, cuda = warm_up(energy, uses)
    if path.exists():
        path.unlink()  # left by a daemon that was killed: no one listens there (we hold the lock)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(str(path))
    listener.listen(16)
    print(f"fork server daemon {os.getpid()} serving at {path}; leaves after {idle:g} s idle", flush=True)
    try:
        Server(nvml_inits, listener=listener, idle_s=idle, hello={"cuda": cuda, "pid": os.getpid()},
               keep_fds=(lock.fileno(),)).serve()  # a worker must not hold the lock after the daemon
    finally:
        path.unlink(missing_ok=True)
        listener.close()
    print(f"fork server daemon {os.getpid()} left after {idle:g} s idle", flush=True)
    return 0


def _leave(*_: object) -> None:
    raise SystemExit(0)


def running() -> list[dict]:
    """The daemons alive now (what each wrote in its lock: pid, start, idle limit, preload),
    each with its ``key``; the files of daemons long gone are removed on the way."""
    alive = []
    for lock in sorted(home().glob("*.lock")):
        if _held(lock):
            with suppress(OSError, ValueError):
                fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW)
                with os.fdopen(fd) as fh:
                    alive.append(dict(json.loads(fh.read() or "{}"), key=lock.stem))
            continue
        with suppress(OSError):
            if time.time() - lock.lstat().st_mtime > STALE_S:
                for suffix in (".sock", ".log", ".lock"):
                    lock.with_suffix(suffix).unlink(missing_ok=True)
    return alive


def stop() -> list[int]:
    """Ask every daemon to leave (SIGTERM: it kills the workers it still runs); their pids."""
    pids = []
    for info in running():
        with suppress(OSError, KeyError, TypeError):
            os.kill(int(info["pid"]), signal.SIGTERM)
            pids.append(int(info["pid"]))
    return pids


def main(argv: list[str]) -> int:
    idle = next((float(a[7:]) for a in argv if a.startswith("--idle=")), IDLE_S)
    uses = [u for arg in argv if arg.startswith("--uses=") for u in arg[7:].split(",") if u]
    return serve(Path(argv[0]), idle, "--energy" in argv, uses)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
