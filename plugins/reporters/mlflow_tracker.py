"""MLflow: one MLflow run per result row, in the experiment
``harness-<suite>`` (``HARNESS_MLFLOW_EXPERIMENT`` overrides). Where: ``MLFLOW_TRACKING_URI`` when set (a
server, ``sqlite:///mlflow.db``, ...), else a local file store ``./mlruns`` (MLflow 3
keeps that backend in maintenance mode; the harness opts in to it with
``MLFLOW_ALLOW_FILE_STORE=true`` unless that is set).

Logged: params (model, method, task, suite, device, model source and ref, each step's
use and params), every numeric figure as a metric (nested ones such as
``latency.1.p50_ms`` flattened with '.'), tags (the harness run_id, status, first error
line, harness and torch versions), and the provenance and environment as JSON artifacts
(``provenance.json``, ``env.json``).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from harness_plugins.reporters.rows import figures_of, params_of

MAX_PARAM = 500  # the smallest limit any MLflow backend enforces on a param's value


def _key(name: str) -> str:
    """A metric/param key MLflow accepts (letters, digits, _ - . space / only)."""
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", name)[:250]


def tracking_uri() -> str:
    """$MLFLOW_TRACKING_URI, else ./mlruns. For a file store (either way) MLflow 3 wants
    MLFLOW_ALLOW_FILE_STORE=true: set here unless the user set it."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip() or (Path.cwd() / "mlruns").resolve().as_uri()
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return uri


def client(uri: str | None = None) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri or tracking_uri())


def log_result(row: dict[str, Any], uri: str | None = None) -> str:
    """Log one result row as an MLflow run; return the MLflow run id."""
    from mlflow.entities import Metric, Param, RunTag

    mlflow = client(uri)
    name = os.environ.get("HARNESS_MLFLOW_EXPERIMENT") or f"harness-{row.get('suite', 'results')}"
    experiment = mlflow.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else mlflow.create_experiment(name)
    env = row.get("env") or {}
    tags = {"harness.run_id": row.get("run_id", ""), "harness.status": row.get("status", ""),
            "harness.version": str(env.get("harness", "")), "torch": str(env.get("torch", ""))}
    if row.get("error"):
        tags["harness.error"] = str(row["error"]).splitlines()[0][:MAX_PARAM]
    run = mlflow.create_run(experiment_id, run_name=f"{row.get('model')} · {row.get('method')} · {row.get('task')}",
                            tags=tags)
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric(_key(k), v, now, 0) for k, v in figures_of(row).items()]
    params = [Param(_key(k), v[:MAX_PARAM]) for k, v in params_of(row).items()]
    for start in range(0, max(len(metrics), 1), 900):  # log_batch takes at most 1000 metrics
        mlflow.log_batch(run_id, metrics=metrics[start:start + 900], params=params if start == 0 else [],
                         tags=[RunTag("harness.suite", str(row.get("suite", "")))] if start == 0 else [])
    mlflow.log_text(run_id, json.dumps(row.get("provenance") or {}, indent=1, sort_keys=True), "provenance.json")
    mlflow.log_text(run_id, json.dumps(env, indent=1, sort_keys=True, default=str), "env.json")
    mlflow.set_terminated(run_id, status="FINISHED" if row.get("status") in ("ok", "skipped") else "FAILED")
    return run_id
