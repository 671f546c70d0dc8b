"""The trackers plugin (harness_plugins.reporters): a result row through the
harness_result hook into a real local MLflow file store, read back with MlflowClient;
W&B offline when wandb is installed. Off unless enabled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_report import make_row

from harness.plugins import load_plugins
from harness_plugins import reporters


@pytest.fixture
def row() -> dict:
    return make_row("prune50-ft", noisy=True) | {"run_id": "abc123"}


def test_the_trackers_plugin_is_registered_and_off_by_default(row: dict, tmp_path: Path, monkeypatch) -> None:
    plugins = load_plugins(extra=[])
    info = next(p for p in plugins.plugins if p.name == "trackers")
    assert info.status == "ok" and info.hooks == ["harness_result"]
    monkeypatch.chdir(tmp_path)
    for variable in ("HARNESS_MLFLOW", "HARNESS_WANDB"):
        monkeypatch.delenv(variable, raising=False)
    assert plugins.call_each("harness_result", result=row) == []
    assert list(tmp_path.iterdir()) == []  # nothing logged anywhere


def test_every_figure_is_flattened_to_a_number(row: dict) -> None:
    figures = reporters.figures_of(row)
    assert figures["accuracy"] == row["metrics"]["accuracy"]
    assert figures["latency.1.p50_ms"] == row["metrics"]["latency"]["1"]["p50_ms"]
    assert "timing_noisy" not in figures and "latency.1.ci95_ms" not in figures  # a bool, a list
    assert figures["step0.apply_s"] == 0.01 and figures["duration_s"] == 3.0
    params = reporters.params_of(row)
    assert params["model"] == "mlp" and params["step0.use"] == "quant.int8-dynamic" and params["step0.bits"] == "8"


def test_mlflow_logs_params_metrics_and_provenance(row: dict, tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # the default store: ./mlruns
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)  # restored after the test
    monkeypatch.setenv("HARNESS_MLFLOW", "1")
    reporters.harness_result(result=row)
    store = tmp_path / "mlruns"
    assert store.is_dir()
    client = MlflowClient(tracking_uri=store.as_uri())
    experiment = client.get_experiment_by_name("harness-demo")
    (run,) = client.search_runs([experiment.experiment_id])
    expected = reporters.figures_of(row)
    assert set(run.data.metrics) == set(expected) and len(expected) > 15
    for key, value in expected.items():
        assert run.data.metrics[key] == pytest.approx(value), key
    assert run.data.params["method"] == "prune50-ft" and run.data.params["step0.bits"] == "8"
    assert run.data.tags["harness.run_id"] == "abc123" and run.data.tags["harness.status"] == "ok"
    assert run.info.run_name == "mlp · prune50-ft · digits" and run.info.status == "FINISHED"
    provenance = json.loads(Path(client.download_artifacts(run.info.run_id, "provenance.json", str(tmp_path))).read_text())
    assert provenance == row["provenance"]


def test_mlflow_follows_the_tracking_uri_and_marks_failures(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("mlflow")
    from harness_plugins.reporters.mlflow_tracker import client, log_result

    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "elsewhere").as_uri())
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.setenv("HARNESS_MLFLOW_EXPERIMENT", "mine")
    failed = make_row("broken", status="failed", error="RuntimeError: boom\ntraceback")
    run_id = log_result(failed)
    run = client().get_run(run_id)
    assert (tmp_path / "elsewhere").is_dir() and run.info.status == "FAILED"
    assert run.data.tags["harness.error"] == "RuntimeError: boom" and run.data.metrics == {"duration_s": 3.0, "step0.apply_s": 0.01}
    assert client().get_experiment(run.info.experiment_id).name == "mine"


def test_wandb_logs_offline(row: dict, tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HARNESS_WANDB", "1")
    reporters.harness_result(result=row)
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))
