"""A run's per-sample outcomes of its task's primary metric: checked in the worker,
carried in the result to the driver, stored by the driver beside the results file
(``results/<suite>/samples/<run_id>.json``, the way lm-eval's ``--log_samples`` keeps
them) and read back by the verdict.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from harness.metrics import REGISTRY, Metric, MetricRegistry, aggregate

SAMPLES_DIR = "samples"
TOLERANCE = 1e-6  # relative: the outcomes must make the figure the task reported


def resolve(outcomes: Any, quality: dict[str, Any], declared: tuple[Metric, ...],
            task_kind: str) -> tuple[Metric, dict[str, Any]]:
    """(the primary metric, the samples record) of a task's :class:`~harness.api.Outcomes`;
    ValueError naming the task kind when they do not make the figure it reported."""
    registry = MetricRegistry(list(REGISTRY) + list(declared))
    metric = outcomes.metric if isinstance(outcomes.metric, Metric) else registry.get(str(outcomes.metric))
    if metric is None:
        raise ValueError(f"the {task_kind} task's outcomes name metric '{outcomes.metric}', which is not "
                         "defined: declare it in the task kind's `metrics` or pass a harness.api.Metric")
    values = [float(v) for v in outcomes.values]
    weights = None if outcomes.weights is None else [float(w) for w in outcomes.weights]
    if not values or weights is not None and len(weights) != len(values):
        raise ValueError(f"the {task_kind} task's outcomes of '{metric.name}' are empty or their weights "
                         "do not match the values one to one")
    reported = quality.get(metric.name)
    made = aggregate(metric.aggregate, values, weights)
    if isinstance(reported, (int, float)) and not math.isclose(made, reported, rel_tol=TOLERANCE, abs_tol=1e-12):
        raise ValueError(f"the {task_kind} task's outcomes make {metric.name} = {made!r}, but it reported "
                         f"{reported!r}: the per-sample values must be those of the reported figure")
    record = {"metric": metric.name, "values": values}
    if weights is not None:
        record["weights"] = weights
    return metric, record


def samples_path(results_dir: Path, run_id: str) -> Path:
    return Path(results_dir) / SAMPLES_DIR / f"{run_id}.json"


def write_samples(results_dir: Path, run_id: str, samples: dict[str, Any]) -> None:
    """Store a run's samples durably, before its row (the row is what commits a run)."""
    path = samples_path(results_dir, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        json.dump(samples, fh, separators=(",", ":"))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_samples(results_dir: Path | None, run_id: str) -> dict[str, Any] | None:
    """A run's stored samples (None: not stored, unreadable, or not of that shape)."""
    if results_dir is None:
        return None
    try:
        data = json.loads(samples_path(results_dir, run_id).read_text())
    except (OSError, ValueError):
        return None
    values = data.get("values") if isinstance(data, dict) else None
    if not isinstance(values, list) or not values:
        return None
    weights = data.get("weights")
    if weights is not None and (not isinstance(weights, list) or len(weights) != len(values)):
        return None
    return data
