"""Suites are checked completely before anything runs; every problem is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.params import to_dict
from harness.plan import build_plan
from harness.plugins import load_plugins
from harness.suite import SuiteError, load_suite

from conftest import cli, write_suite

GOOD = """
[suite]
name = "good"

[[models]]
name = "mlp"
source = "builtin"
ref = "digits-mlp"

[[models]]
name = "cnn"
source = "builtin"
ref = "digits-cnn"

[[tasks]]
name = "digits"
kind = "classification"
dataset = "digits"

[[methods]]
name = "magnitude-{amount}"
use = "prune.magnitude"
sweep = { amount = [0.3, 0.5, 0.7] }

[[methods]]
name = "prune-ft-int8"
steps = [
  { use = "prune.magnitude", params = { amount = 0.5 } },
  { use = "train.finetune", params = { epochs = 1 } },
  { use = "quant.int8-dynamic" },
]
"""

BAD = """
[suite]
name = "bad"
seed = "zero"
colour = "blue"

[measure]
batch_sizes = [1, 64]
min_time = 2.0

[[models]]
name = "mlp"
source = "bultin"
ref = "digits-mlp"

[[models]]
name = "file-model"
source = "file"
ref = "missing/model.pt"

[[tasks]]
name = "digits"
kind = "classificaton"

[[methods]]
use = "quant.int8-dynamik"

[[methods]]
name = "magnitude-{amount}"
use = "prune.magnitude"
sweep = { amount = [0.5, 1.5] }

[[methods]]
name = "chain"
steps = [{ use = "prune.magnitude", params = { amout = 0.5 } }]
"""


def test_a_good_suite_expands_sweeps_and_chains(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, GOOD), load_plugins())
    names = [m.name for m in suite.methods]
    assert names == ["magnitude-0.3", "magnitude-0.5", "magnitude-0.7", "prune-ft-int8"]
    assert to_dict(suite.methods[1].steps[0].params) == {"amount": 0.5, "scope": "layer", "include_head": False}  # defaults filled
    assert [s.use for s in suite.methods[3].steps] == ["prune.magnitude", "train.finetune", "quant.int8-dynamic"]
    runs = build_plan(suite, load_plugins())
    assert len(runs) == 2 * 5  # 2 models × (baseline + 4 methods) × 1 task
    assert runs[0].method == "baseline"
    assert len({r.run_id for r in runs}) == len(runs)
    assert [r.run_id for r in build_plan(suite, load_plugins())] == [r.run_id for r in runs]  # stable


def test_every_problem_is_reported_at_once_with_the_nearest_choice(tmp_path: Path) -> None:
    path = write_suite(tmp_path, BAD)
    with pytest.raises(SuiteError) as caught:
        load_suite(path, load_plugins())
    problems = "\n".join(caught.value.problems)
    expected = [
        "suite.seed: expected int, got 'zero'",
        "suite.colour: unknown key",
        "measure.min_time: unknown key; did you mean 'min_time_s'?",
        "models[0].source: unknown model source 'bultin'; did you mean 'builtin'?",
        "models[1].ref: model file",
        "does not exist",
        "tasks[0].kind: unknown task kind 'classificaton'; did you mean 'classification'?",
        "methods[0].use: unknown method 'quant.int8-dynamik'; did you mean 'quant.int8-dynamic'?",
        "methods[1].params: amount = 1.5 must be between 0 and 1",
        "methods[2].steps[0].params.amout: unknown key; did you mean 'amount'?",
    ]
    for fragment in expected:
        assert fragment in problems, f"{fragment!r} not in:\n{problems}"
    assert len(caught.value.problems) >= 9


def test_validate_cli_names_the_file_and_exits_2_and_runs_nothing(tmp_path: Path) -> None:
    path = write_suite(tmp_path, BAD)
    proc = cli("validate", str(path))
    assert proc.returncode == 2
    assert f"{path}: methods[0].use: unknown method 'quant.int8-dynamik'" in proc.stderr.replace("\n  ", " ")
    assert "Traceback" not in proc.stderr
    bench = cli("bench", str(path), "--results", str(tmp_path / "results"))
    assert bench.returncode == 2
    assert not (tmp_path / "results").exists()


def test_validate_cli_prints_the_plan(tmp_path: Path) -> None:
    proc = cli("validate", str(write_suite(tmp_path, GOOD)))
    assert proc.returncode == 0, proc.stderr
    assert "10 runs" in proc.stdout
    assert "cnn / magnitude-0.7 / digits" in proc.stdout


@pytest.mark.parametrize("body, fragment", [
    ("[suite]\nname = 'x'\n[[models]]\nname='m'\nsource='builtin'\nref='digits-mlpp'\n"
     "[[tasks]]\nname='t'\nkind='classification'\ndataset='digits'\n", "unknown builtin model 'digits-mlpp'; did you mean 'digits-mlp'?"),
    ("[suite]\nname = 'x'\n[[models]]\nname='m'\nsource='builtin'\nref='digits-mlp'\n"
     "[[tasks]]\nname='t'\nkind='classification'\ndataset='digits'\nmodels=['cnn*']\n", "'cnn*' matches no model"),
    ("[suite]\nname = 'x'\n[[models]]\nname='m'\nsource='builtin'\nref='digits-mlp'\n"
     "[[tasks]]\nname='t'\nkind='classification'\ndataset='digits'\n"
     "[[methods]]\nname='sw'\nuse='prune.magnitude'\nsweep={amount=[0.5]}\n", "needs '{amount}' in the name"),
    ("[suite]\nname = 'x'\n[[models]]\nname='m'\nsource='builtin'\nref='digits-mlp'\n"
     "[[tasks]]\nname='t'\nkind='classification'\ndataset='digits'\n"
     "[[methods]]\nname='sw-{amount}'\nuse='prune.magnitude'\nsweep={amount=0.5}\n", "expected a non-empty list"),
    ("[suite]\nname = 'x'\ndevice='gpu'\n[[models]]\nname='m'\nsource='builtin'\nref='digits-mlp'\n"
     "[[tasks]]\nname='t'\nkind='classification'\ndataset='digits'\n", "device 'gpu' must be 'cpu', 'cuda' or 'cuda:N'"),
    ("[suite\nname = 'x'\n", "not valid TOML"),
])
def test_single_mistakes(tmp_path: Path, body: str, fragment: str) -> None:
    with pytest.raises(SuiteError) as caught:
        load_suite(write_suite(tmp_path, body), load_plugins())
    assert fragment in str(caught.value)


def test_missing_suite_file_is_one_sentence(tmp_path: Path) -> None:
    proc = cli("bench", str(tmp_path / "nope.toml"))
    assert proc.returncode == 2
    assert "file not found" in proc.stderr and "Traceback" not in proc.stderr
