"""A result row as trackers log it: identifying params, and every numeric figure."""

from __future__ import annotations

from typing import Any


def flat_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Every number in ``metrics`` (nested dicts flattened with '.'; booleans, lists and
    text left out): what a tracker logs as metrics."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_metrics(value, f"{name}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
            out[name] = float(value)
    return out


def params_of(row: dict[str, Any]) -> dict[str, str]:
    """What identifies the run: model, method, task, suite, device and each step's use
    and params (``step0.use``, ``step0.amount``, ...)."""
    params = {key: str(row.get(key, "")) for key in ("suite", "model", "method", "task", "device")}
    model = (row.get("spec") or {}).get("model") or {}
    params.update({"model.source": str(model.get("source", "")), "model.ref": str(model.get("ref", ""))})
    for i, step in enumerate(row.get("steps") or []):
        params[f"step{i}.use"] = str(step.get("use", ""))
        for key, value in (step.get("params") or {}).items():
            params[f"step{i}.{key}"] = str(value)
    return params


def figures_of(row: dict[str, Any]) -> dict[str, float]:
    """The metrics a tracker logs: every numeric figure, each step's apply_s, the duration."""
    figures = flat_metrics(row.get("metrics") or {})
    for i, step in enumerate(row.get("steps") or []):
        if isinstance(step.get("apply_s"), (int, float)):
            figures[f"step{i}.apply_s"] = float(step["apply_s"])
    if isinstance(row.get("duration_s"), (int, float)):
        figures["duration_s"] = float(row["duration_s"])
    return figures
