"""quanto's CPU kernels, built and loaded before a run starts (the method's ``preload``).

quanto compiles its C++ CPU extension (``quanto_cpp``: the unpacking of 2- and 4-bit
weights) with ``torch.utils.cpp_extension`` the first time a packed weight is used —
about a minute, once per installation — and loads it in every process that uses one.
Left to quanto, both happen inside a run: the compile in the first int2/int4 run's
accuracy pass, the load in each run's first call. Imported by the fork server (and by a
cold worker before its run), they happen here instead, outside every figure a run reports.
"""

from __future__ import annotations

import sys
from pathlib import Path


def load() -> None:
    """Build quanto's CPU extension where it is not built yet (saying so), and load it."""
    from optimum.quanto.library.extensions import get_extension, is_extension_available

    if not is_extension_available("quanto_cpp"):
        return
    extension = get_extension("quanto_cpp")
    if not (Path(extension.build_directory) / "pytorch_version.txt").exists():
        print("harness-quanto: optimum-quanto compiles its CPU kernels once (about a minute) …",
              file=sys.stderr, flush=True)
    extension.lib  # noqa: B018 - quanto builds and loads it on first access


load()
