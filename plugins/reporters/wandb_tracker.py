"""Weights & Biases: one W&B run per result row, in project ``HARNESS_WANDB_PROJECT``
(default ``harness``), group = the suite. Offline (``./wandb``; upload later with
``wandb sync``) unless ``WANDB_MODE`` says otherwise. Logged: the params as the run's
config, every numeric figure in its summary, the status and provenance in its config
under ``harness``."""

from __future__ import annotations

import os
from typing import Any

from harness_plugins.reporters.rows import figures_of, params_of


def log_result(row: dict[str, Any]) -> str:
    """Log one result row as a W&B run; return the W&B run id."""
    import wandb

    config = dict(params_of(row))
    config["harness"] = {"run_id": row.get("run_id"), "status": row.get("status"),
                         "error": (row.get("error") or "").splitlines()[:1],
                         "provenance": row.get("provenance") or {}}
    run = wandb.init(project=os.environ.get("HARNESS_WANDB_PROJECT", "harness"),
                     mode=os.environ.get("WANDB_MODE") or "offline", dir=os.environ.get("WANDB_DIR") or ".",
                     group=str(row.get("suite", "")), job_type=str(row.get("status", "")),
                     name=f"{row.get('model')} · {row.get('method')} · {row.get('task')}",
                     config=config, reinit="create_new")
    try:
        run.summary.update(figures_of(row))
        run_id = run.id
    finally:
        run.finish(exit_code=0 if row.get("status") in ("ok", "skipped") else 1)
    return run_id
