"""Experiment trackers fed through the ``harness_result`` hook: each stored result row
goes to MLflow (``HARNESS_MLFLOW=1``) and/or Weights & Biases (``HARNESS_WANDB=1``).
Both are off unless their variable is set, and their libraries (the ``mlflow`` and
``wandb`` extras) are imported only then. A tracker's failure is reported by the driver
and changes nothing else."""

from __future__ import annotations

import os
from typing import Any

from harness import hookimpl
from harness_plugins.reporters.rows import figures_of, flat_metrics, params_of

__all__ = ["enabled", "figures_of", "flat_metrics", "harness_result", "params_of"]

ENABLED = ("1", "true", "yes", "on")


def enabled(variable: str) -> bool:
    return os.environ.get(variable, "").strip().lower() in ENABLED


@hookimpl
def harness_result(result: dict[str, Any]) -> None:
    if enabled("HARNESS_MLFLOW"):
        from harness_plugins.reporters.mlflow_tracker import log_result

        log_result(result)
    if enabled("HARNESS_WANDB"):
        from harness_plugins.reporters.wandb_tracker import log_result as log_wandb

        log_wandb(result)
