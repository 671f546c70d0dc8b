"""A trimmed copy of suites/methods.toml run through the CLI on the digits MLP, with the
figures checked from results.jsonl as a user would read them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import QUICK_MEASURE, cli, write_suite

pytestmark = pytest.mark.e2e  # runs `harness bench`

SUITE = """
[suite]
name = "methods-trimmed"
seed = 0
device = "cpu"
timeout_s = 600
""" + QUICK_MEASURE + """
[[models]]
name = "digits-mlp"
source = "builtin"
ref = "digits-mlp"

[[tasks]]
name = "digits"
kind = "classification"
dataset = "digits"

[[methods]]
name = "int8-dynamic"
use = "quant.int8-dynamic"

[[methods]]
name = "int8-weight"
use = "quant.int8-weight"

[[methods]]
name = "int4-weight"
use = "quant.int4-weight"

[[methods]]
name = "magnitude-{amount}"
use = "prune.magnitude"
sweep = { amount = [0.3, 0.5, 0.7, 0.9] }

[[methods]]
name = "prune50-ft-int8"
steps = [
  { use = "prune.magnitude", params = { amount = 0.5 } },
  { use = "train.finetune", params = { epochs = 2 } },
  { use = "quant.int8-dynamic" },
]
"""


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    directory = tmp_path_factory.mktemp("methods")
    suite = write_suite(directory, SUITE)
    results = directory / "results"
    done = cli("bench", str(suite), "--results", str(results), "--jobs", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = (results / "methods-trimmed" / "results.jsonl").read_text().splitlines()
    return {row["method"]: row for row in map(json.loads, lines)}


def accuracy(row: dict[str, Any]) -> float:
    return row["metrics"]["accuracy"]


def test_every_run_is_ok_or_skipped_with_a_reason(rows: dict[str, dict[str, Any]]) -> None:
    assert len(rows) == 9
    for name, row in rows.items():
        assert row["status"] in ("ok", "skipped"), (name, row.get("error"))
        if row["status"] == "skipped":
            assert row["error"].strip(), name
    assert rows["int4-weight"]["status"] == "skipped" and "CUDA" in rows["int4-weight"]["error"]


@pytest.mark.parametrize("method", ["int8-dynamic", "int8-weight"])
def test_int8_is_over_3x_smaller_and_holds_accuracy(rows: dict[str, dict[str, Any]], method: str) -> None:
    base, row = rows["baseline"], rows[method]
    assert base["metrics"]["size_bytes"] / row["metrics"]["size_bytes"] >= 3
    assert abs(accuracy(row) - accuracy(base)) <= 0.01
    info = row["steps"][0]["info"]
    assert info["bits_per_weight"] == 8 and info["library"] and info["kernels"]


def test_magnitude_pruning_hits_the_amount_and_costs_accuracy_as_it_grows(rows: dict[str, dict[str, Any]]) -> None:
    amounts = [0.3, 0.5, 0.7, 0.9]
    accuracies = []
    for amount in amounts:
        row = rows[f"magnitude-{amount}"]
        assert row["steps"][0]["info"]["sparsity_pruned_tensors"] == pytest.approx(amount, abs=0.01)
        accuracies.append(accuracy(row))
    assert accuracies == sorted(accuracies, reverse=True) and accuracies[0] > accuracies[-1]


def test_prune_finetune_int8_chain_is_sparse_quantized_and_close_to_baseline(rows: dict[str, dict[str, Any]]) -> None:
    row = rows["prune50-ft-int8"]
    assert abs(accuracy(row) - accuracy(rows["baseline"])) <= 0.02
    assert row["metrics"]["sparsity"] >= 0.45  # measured on the final, quantized weights
    assert [s["use"] for s in row["steps"]] == ["prune.magnitude", "train.finetune", "quant.int8-dynamic"]
    assert row["steps"][2]["info"]["bits_per_weight"] == 8
    assert all(s["apply_s"] > 0 for s in row["steps"])


def test_the_full_methods_suite_is_valid() -> None:
    suite = Path(__file__).resolve().parents[1] / "suites" / "methods.toml"
    done = cli("validate", str(suite))
    assert done.returncode == 0, done.stderr
