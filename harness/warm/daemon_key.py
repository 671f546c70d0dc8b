"""The key of a fork server daemon (:mod:`harness.warm.daemon`): everything its imports,
and what its workers inherit from it rather than from their bench, depend on, hashed. A
daemon serves only the benches whose key is its own."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import resource
import site
import sys
import sysconfig
from contextlib import suppress
from importlib.metadata import entry_points
from pathlib import Path

VOLATILE = {"_", "PWD", "OLDPWD", "SHLVL", "COLUMNS", "LINES", "HARNESS_WORKER_MODE", "HARNESS_DAEMON_IDLE_S"}
PACKAGES = ("harness", "harness_plugins")
MAX_WATCHED = 5000  # source files outside the installed packages a key may stat


class DaemonError(Exception):
    """No daemon could be reached or started; the message says why."""


def _files(roots: list[Path], limit: int = MAX_WATCHED) -> list:
    """Size and mtime of the ``.py`` files under ``roots`` (a folder's tree, or one file)."""
    files: list = []
    for root in roots:
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            with suppress(OSError):
                info = path.stat()
                files.append([str(path), info.st_size, info.st_mtime_ns])
            if len(files) > limit:
                raise DaemonError(f"more than {limit} source files to watch (under {root}); "
                                  "a daemon could not tell when they change")
    return files


def _code() -> list:
    """What the daemon's imports read from outside the installed packages: the harness's
    own packages, each plugin's top-level package where it lies outside site-packages
    (editable installs, ``$HARNESS_PLUGINS`` modules found on ``$PYTHONPATH``), the folders
    named in ``$PYTHONPATH`` (resolved against the cwd), and the ``harness`` entry points.
    The same for every driver, whatever it has imported itself."""
    points = list(entry_points(group="harness"))
    names = {*PACKAGES, *(ep.module.split(".")[0] for ep in points),
             *(n.strip().split(".")[0] for n in os.environ.get("HARNESS_PLUGINS", "").split(",") if n.strip())}
    installed = tuple(_site_folders() + [sysconfig.get_paths()["stdlib"]])
    roots = []
    for name in sorted(names):
        with suppress(ImportError, ValueError):
            spec = importlib.util.find_spec(name)  # a top-level name: nothing is imported
            places = list(spec.submodule_search_locations or []) if spec else []
            places = places or ([spec.origin] if spec and spec.origin else [])
            roots += [Path(p) for p in places if p and not p.startswith(installed) and os.path.exists(p)]
    paths = [str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    roots += [Path(p) for p in paths if os.path.isdir(p)]
    plugins = sorted(f"{ep.name}={ep.value}@{ep.dist.name if ep.dist else ''}{ep.dist.version if ep.dist else ''}"
                     for ep in points)
    return [_files(sorted(set(roots))), paths, plugins]


def _process() -> list:
    """What a forked worker inherits from the daemon rather than from its bench: CPU
    affinity, niceness, umask, cgroup (a Slurm job's, a systemd scope's), resource limits."""
    umask = os.umask(0)
    os.umask(umask)
    limits = {name: resource.getrlimit(getattr(resource, name)) for name in dir(resource) if name.startswith("RLIMIT_")}
    try:
        cgroup = Path("/proc/self/cgroup").read_text()
    except OSError:
        cgroup = ""
    return [sorted(os.sched_getaffinity(0)), os.getpriority(os.PRIO_PROCESS, 0), umask, cgroup, sorted(limits.items())]


def _site_folders() -> list[str]:
    """Where packages get installed (a folder's mtime changes as one is added, removed or
    upgraded); not the script's folder or the cwd, which change with every bench."""
    folders = site.getsitepackages() + [site.getusersitepackages()]
    return sorted({p for p in folders if os.path.isdir(p)})


def key(energy: bool, uses: list[str]) -> str:
    """What a daemon's imports and its workers depend on, hashed: a daemon serves only its
    own key (raises :class:`DaemonError` where that cannot be told)."""
    installs = [[p, os.stat(p).st_mtime_ns] for p in _site_folders()]
    env = sorted((k, v) for k, v in os.environ.items() if k not in VOLATILE)
    parts = [sys.executable, sys.version, installs, env, _code(), _process(), energy, sorted(uses)]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]
