"""Resident memory of this process (Linux: ``/proc/self/status``).

A run's ``peak_rss_mb`` is its peak RSS over timing **above the RSS its worker started its
run with**: :func:`mark_start` is called once the worker has loaded what every worker
loads (torch, the plugins, the modules they declare in ``preload``, with energy on codecarbon:
:mod:`harness.warm.preload`),
before the run loads its data and model. A worker forked from the fork server inherits
those modules' memory and a cold worker loads the same first, so both count from the same
point and agree: the figure is what the run itself added (model, data, buffers, the
imports it did of its own). Where no start was marked (or ``/proc`` is missing) it is the
whole process's peak, and its provenance says so.
"""

from __future__ import annotations

import resource
import sys

_start_anon: int | None = None  # RssAnon when the worker started its run (mark_start)


def _status(*fields: str) -> dict[str, int] | None:
    """The named ``/proc/self/status`` fields in bytes (None without ``/proc``)."""
    found = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                name = line.split(":", 1)[0]
                if name in fields:
                    found[name] = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return found if len(found) == len(fields) else None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark; False when the platform cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """Peak RSS since the last reset (or since start, where reset is unsupported)."""
    status = _status("VmHWM")
    if status is not None:
        return status["VmHWM"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def mark_start() -> None:
    """Record the anonymous memory this worker starts its run with (see the module's docstring)."""
    global _start_anon
    status = _status("RssAnon")
    _start_anon = status["RssAnon"] if status else None


def library_pages() -> int | None:
    """Resident file-backed bytes of shared-library mappings (``*.so*``: code and its
    read-only data; their copied-on-write pages are anonymous and count as RssAnon), from
    ``/proc/self/smaps``; None without it. Other file mappings — model weights that
    safetensors or ``torch.load(mmap=True)`` map — are not libraries and stay counted."""
    total, library = 0, False
    try:
        with open("/proc/self/smaps") as fh:
            for line in fh:
                head = line.split(maxsplit=6)
                if len(head) >= 5 and "-" in head[0] and ":" not in head[0]:  # a mapping's header line
                    library = len(head) == 6 and ".so" in head[5].rsplit("/", 1)[-1]
                elif library and head and head[0] in ("Rss:", "Anonymous:"):  # file pages: Rss - Anonymous
                    total += int(head[1]) * 1024 * (1 if head[0] == "Rss:" else -1)
    except (OSError, ValueError, IndexError):
        return None
    return total


def peak_rss_figure(reset: bool) -> tuple[float, str]:
    """(peak RSS in MB above the run's start, how it was measured); ``reset``: whether
    :func:`reset_peak_rss` succeeded before the window."""
    peak = peak_rss_bytes()
    window = "over timing" if reset else "of the whole process (peak could not be reset)"
    shmem, code = _status("RssShmem"), library_pages()
    if _start_anon is None or shmem is None or code is None:
        return peak / 1e6, f"VmHWM of this process {window} (no run start marked: the whole process's RSS)"
    added = peak - code - shmem["RssShmem"] - _start_anon
    return (max(0, added) / 1e6,
            f"VmHWM of this process {window} less its shared-library pages ({code / 1e6:.1f} MB of *.so mappings "
            f"at the end) and shared memory, and less its anonymous memory at the run's start ({_start_anon / 1e6:.1f} MB "
            "RssAnon: torch, the plugins and their preload modules loaded): what the run added — its data, model "
            "(memory-mapped weights included) and buffers — alike in warm and cold workers")
