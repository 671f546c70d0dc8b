"""Figures with their provenance: every figure is measured or estimated, or absent with why.

A result's ``provenance[key]`` is one of ``"measured: <how>"``, ``"estimated: <why>"`` or
``"absent: <why>"``; in the last case ``metrics`` has no ``key`` at all (never 0), so a
leaderboard shows an empty cell and the reason is one lookup away.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Figures:
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)

    def measured(self, key: str, value: Any, how: str) -> None:
        self._put(key, value, f"measured: {how}")

    def estimated(self, key: str, value: Any, why: str) -> None:
        self._put(key, value, f"estimated: {why}")

    def put(self, key: str, value: Any, provenance: str) -> None:
        """Store ``value`` under an already written provenance (``measured: ...`` etc.)."""
        self._put(key, value, provenance)

    def absent(self, key: str, why: str) -> None:
        self.metrics.pop(key, None)
        self.provenance[key] = f"absent: {why}"

    def update(self, other: Figures) -> None:
        self.metrics.update(other.metrics)
        self.provenance.update(other.provenance)

    def _put(self, key: str, value: Any, provenance: str) -> None:
        if value is None:
            raise ValueError(f"{key}: a figure that could not be had must be absent(), not None")
        self.metrics[key] = value
        self.provenance[key] = provenance


def is_estimated(provenance: str) -> bool:
    return provenance.startswith("estimated")


def combine(parts: list[str]) -> str:
    """One provenance for a figure derived from several: estimated if any part is."""
    estimated = [p.split(":", 1)[1].strip() for p in parts if is_estimated(p)]
    if estimated:
        return "estimated: " + "; ".join(estimated)
    return "measured: " + "; ".join(p.split(":", 1)[1].strip() for p in parts)
