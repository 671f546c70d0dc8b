"""A fork server kept between benches (``HARNESS_WORKERS=daemon``).

The per-bench fork server pays torch's and the plugins' imports (1–2 s, more with torchao
or transformers) once per ``harness bench``; for a short suite that is most of what the
harness itself costs. In daemon mode the first bench starts the server detached
(``python -P -m harness.warm.daemon SOCKET --idle=S``), later benches connect to it, and it
leaves after ``$HARNESS_DAEMON_IDLE_S`` (default 600) seconds without a bench.

Isolation is the per-bench server's: each run is a fresh fork in its own session, with the
environment and working directory of the bench that asked for it; a bench that ends (or is
killed) has its workers killed by the daemon. What a daemon imported cannot change under
it: it serves only benches whose :func:`key` matches its own — the same interpreter, the
same harness and plugin code (each file's size and mtime, the entry points' distributions),
the same installed packages (the mtimes of the site-packages folders change with each
install), the same environment, and the same preload (energy, the suite's plugins). A bench
with anything else starts its own daemon; an unused one leaves on its own.

Each daemon is a socket, a lock held for life (it holds the daemon's pid and start), and a
log, under ``$TMPDIR/harness-runs-<uid>/daemons`` (mode 0700); ``harness daemon`` lists
them, ``harness daemon --stop`` ends them (and the runs they still serve).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import signal
import site
import socket
import subprocess
import sys
import time
from contextlib import suppress
from importlib.metadata import entry_points
from pathlib import Path

from harness.process import python_command, runs_root

IDLE_S = 600.0  # $HARNESS_DAEMON_IDLE_S
VOLATILE = {"_", "PWD", "OLDPWD", "SHLVL", "COLUMNS", "LINES", "HARNESS_WORKER_MODE", "HARNESS_DAEMON_IDLE_S"}
PACKAGES = ("harness", "harness_plugins")
STALE_S = 3600.0  # the files of a daemon gone this long are removed
MAX_PATH = 107  # sockaddr_un's sun_path, less its NUL


class DaemonError(Exception):
    """No daemon could be reached or started; the message says why."""


def idle_s() -> float:
    try:
        return max(1.0, float(os.environ.get("HARNESS_DAEMON_IDLE_S", IDLE_S)))
    except ValueError:
        return IDLE_S


def _code() -> list:
    """Size and mtime of every source file of the harness's own packages, and the
    distributions behind the ``harness`` entry points."""
    files = []
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        for root in (spec.submodule_search_locations or []) if spec else []:
            for path in sorted(Path(root).rglob("*.py")):
                info = path.stat()
                files.append([str(path), info.st_size, info.st_mtime_ns])
    plugins = sorted(f"{ep.name}={ep.value}@{ep.dist.name if ep.dist else ''}{ep.dist.version if ep.dist else ''}"
                     for ep in entry_points(group="harness"))
    return [files, plugins]


def _site_folders() -> list[str]:
    """Where packages get installed (a folder's mtime changes as one is added, removed or
    upgraded); not the script's folder or the cwd, which change with every bench."""
    folders = site.getsitepackages() + [site.getusersitepackages()]
    return sorted({p for p in folders if os.path.isdir(p)})


def key(energy: bool, uses: list[str]) -> str:
    """What a daemon's imports depend on, hashed: a daemon serves only its own key."""
    installs = [[p, os.stat(p).st_mtime_ns] for p in _site_folders()]
    env = sorted((k, v) for k, v in os.environ.items() if k not in VOLATILE)
    parts = [sys.executable, sys.version, installs, env, _code(), energy, sorted(uses)]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]


def home() -> Path:
    path = runs_root() / "daemons"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def connect(energy: bool, uses: list[str], limit_s: float) -> socket.socket:
    """A socket connected to the daemon for this key, started first where none runs."""
    path = home() / f"{key(energy, uses)}.sock"
    if len(os.fsencode(path)) > MAX_PATH:
        raise DaemonError(f"its socket path is longer than {MAX_PATH} bytes ({path}); set TMPDIR shorter")
    sock = _try(path)
    if sock is not None:
        return sock
    with open(path.with_suffix(".log"), "ab") as log:
        argv = python_command("harness.warm.daemon", str(path), f"--idle={idle_s():g}")
        proc = subprocess.Popen(argv + (["--energy"] if energy else []) + [f"--uses={','.join(uses)}"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # not ended by the terminal's Ctrl-C
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        sock = _try(path)
        if sock is not None:
            return sock
        if proc.poll() not in (None, 0):  # 0: another daemon of this key holds the lock: wait for it
            raise DaemonError(f"it failed to start: {_last_line(path.with_suffix('.log'))}")
        time.sleep(0.02)
    raise DaemonError(f"it did not listen within {limit_s:g} s (its log: {path.with_suffix('.log')})")


def _try(path: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    return sock


def _last_line(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1] if lines else "it ended without a word"


def serve(path: Path, idle: float, energy: bool, uses: list[str]) -> int:
    """The daemon: serve at the socket ``path`` until ``idle`` seconds pass with no driver
    connected. The lock ``path.lock`` is held for life: a second daemon of the key leaves."""
    from harness.warm.server import Server, warm_up

    lock = open(path.with_suffix(".lock"), "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another one serves this key
    lock.truncate(0)
    lock.write(json.dumps({"pid": os.getpid(), "started": time.time(), "idle_s": idle, "energy": energy,
                           "uses": uses}))
    lock.flush()
    signal.signal(signal.SIGTERM, _leave)  # `harness daemon stop`: end the workers, remove the socket
    nvml_inits, cuda = warm_up(energy, uses)
    if path.exists():
        path.unlink()  # left by a daemon that was killed: no one listens there (we hold the lock)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(str(path))
    listener.listen(16)
    print(f"fork server daemon {os.getpid()} serving at {path}; leaves after {idle:g} s idle", flush=True)
    try:
        Server(nvml_inits, listener=listener, idle_s=idle, hello={"cuda": cuda, "pid": os.getpid()}).serve()
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
        with open(lock, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held: its daemon lives
                fh.seek(0)
                with suppress(ValueError):
                    alive.append(dict(json.loads(fh.read() or "{}"), key=lock.stem))
                continue
            if time.time() - lock.stat().st_mtime > STALE_S:
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
