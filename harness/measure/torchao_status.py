"""What torchao's compiled extensions did in this process: loaded, failed (and why), or
skipped by torchao's own torch-version check.

torchao loads every ``torchao/_C*.so`` at import through ``torch.ops.load_library`` and
only logs a warning when one fails (``Failed to load … _C_cutlass_90a``); it skips them
all when its torch-version check fails (``torchao.skip_loading_so_files`` with
``torchao._skip_reason``). This module reads those facts back after the fact and never
imports torchao itself: a process that did not use torchao does not pay for its import.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Any

from harness.machine import installed_version


def torchao_status() -> dict[str, Any]:
    """``version`` and, when this process imported torchao, whether its torch-version
    check passed (``torch_compatible``, with torchao's ``reason`` when not) and which
    compiled extensions loaded (``extensions_loaded``) or failed (``extensions_failed``:
    file name -> the loader's error)."""
    version = installed_version("torchao")
    if version is None:
        return {"version": None, "extensions": "torchao is not installed"}
    torchao = sys.modules.get("torchao")
    if torchao is None:
        return {"version": version, "extensions": "not checked: this process did not import torchao"}
    status: dict[str, Any] = {"version": version}
    files = sorted(Path(torchao.__file__).parent.glob("_C*.so"))
    if getattr(torchao, "skip_loading_so_files", False):
        status["torch_compatible"] = False
        status["reason"] = getattr(torchao, "_skip_reason", None) or "torchao skipped its compiled extensions"
        status["extensions_loaded"], status["extensions_failed"] = [], {}
        status["extensions_skipped"] = [f.name for f in files]
        return status
    import torch

    loaded = {os.path.realpath(p) for p in torch.ops.loaded_libraries}  # load_library stores realpaths
    status["torch_compatible"] = True
    status["extensions_loaded"] = [f.name for f in files if os.path.realpath(f) in loaded]
    status["extensions_failed"] = {f.name: load_error(f) for f in files if os.path.realpath(f) not in loaded}
    return status


def load_error(path: Path) -> str:
    """Why the dynamic loader rejects ``path`` (asked again: torchao logs only a generic
    message). A library torchao already failed to load fails again without side effects."""
    try:
        ctypes.CDLL(str(path))
    except OSError as exc:
        return str(exc)
    return "failed when torchao was imported; loads now"

