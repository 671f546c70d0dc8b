"""Writers for the leaderboard frame. The built-in ``csv`` and ``markdown`` are
registered through ``harness_register_reporters`` like third-party ones, and looked up
by name through :func:`reporter`."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The file suffix each built-in writer produces; other reporters use their own name.
SUFFIX = {"csv": "csv", "markdown": "md"}


def reporter(registry: Any, name: str) -> Callable[[Any, Path], None]:
    """The writer registered as ``name`` (imported now, not at plugin load)."""
    entry = registry.get("reporter", name)
    if entry is None:
        raise LookupError(f"no reporter named '{name}' is registered")
    module, _, attr = entry.obj.partition(":")
    return getattr(importlib.import_module(module), attr)


def write_csv(frame: Any, path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def write_markdown(frame: Any, path: Path) -> None:
    """A GitHub-flavoured table; empty cells where a figure was not measured."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    columns = [c for c in frame.columns if c not in ("run_id", "suite", "error")]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for record in frame[columns].to_dict("records"):
        cells = []
        for column in columns:
            value = record[column]
            if value is None or (isinstance(value, float) and value != value):
                cells.append("")
            elif isinstance(value, float):
                cells.append(f"{value:.4g}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    Path(path).write_text("\n".join(lines) + "\n")
