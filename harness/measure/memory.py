"""Peak resident memory of this process over a phase (Linux: VmHWM after clear_refs)."""

from __future__ import annotations

import resource
import sys


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
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
