"""Facts about this machine's software and CPUs, looked up the same way everywhere."""

from __future__ import annotations

import importlib.metadata as md
import os


def installed_version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, or None when it is not installed."""
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
