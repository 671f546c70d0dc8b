"""Counts in messages: ``plural(1, "run")`` is "1 run", ``plural(3, "run")`` "3 runs"."""

from __future__ import annotations


def plural(count: float, noun: str, many: str | None = None) -> str:
    """``count`` and ``noun`` (``many``, default ``noun + "s"``, unless ``count`` is 1); a
    float count as short as it reads (``0.5 GPUs``)."""
    shown = f"{count:g}" if isinstance(count, float) else str(count)
    return f"{shown} {noun if count == 1 else many or noun + 's'}"
