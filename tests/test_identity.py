"""A run is what it was computed from: the contents of the files its model and task read
and the code of its plugins are in its run id and artifact key."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

from harness.fingerprint import code_hash, files_read
from harness.plan import build_plan
from harness.plugins import load_plugins
from harness.suite import load_suite

from conftest import QUICK_MEASURE, cli, write_suite


def test_files_named_by_a_spec_are_hashed_by_content_and_cached(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "t.yaml").write_text("task: x\n")
    spec = {"name": "t", "kind": "x", "config": {"path": "data.csv", "include": "tasks", "split": "test"}}
    first = files_read(spec, tmp_path)
    assert set(first) == {"data.csv", "tasks"}  # "test" names nothing here
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")  # rewritten, same bytes: same identity
    assert files_read(spec, tmp_path) == first
    assert "data.csv" in json.loads((tmp_path / "cache" / "fingerprints.json").read_text()).__repr__()
    (tmp_path / "tasks" / "t.yaml").write_text("task: y\n")
    changed = files_read(spec, tmp_path)
    assert changed["data.csv"] == first["data.csv"] and changed["tasks"] != first["tasks"]
    (tmp_path / "tasks" / "t.yaml").unlink()  # a file gone leaves the cache when it is next written
    (tmp_path / "other.csv").write_text("c\n3\n")
    files_read({"name": "u", "kind": "x", "config": {"path": "other.csv"}}, tmp_path)
    cached = json.loads((tmp_path / "cache" / "fingerprints.json").read_text())
    assert sorted(Path(p).name for p in cached) == ["data.csv", "other.csv"]


def test_a_builtin_model_trains_to_the_same_weights_and_its_cache_key_follows_its_training_code(
        monkeypatch) -> None:
    """The test sessions keep the builtin models across runs (the Makefile's .cache/test): a
    change to what decides their weights must train them anew."""
    import harness.toolkit
    from harness_plugins.sources.builtin import digits

    recipe = digits.Recipe("mlp", 8, epochs=1)
    threads = torch.get_num_threads()
    try:
        first, second = digits.train(recipe).state_dict(), digits.train(recipe).state_dict()
    finally:
        torch.set_num_threads(threads)
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    key = digits.recipe_hash(recipe)
    assert digits.recipe_hash(digits.Recipe("mlp", 8, epochs=2)) != key

    def fit(*args, **kwargs):  # another training loop
        return None

    monkeypatch.setattr(harness.toolkit, "fit", fit)
    assert digits.recipe_hash(recipe) != key


def test_a_plugins_code_edited_without_a_version_bump_is_another_plugin(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "my_methods"
    package.mkdir()
    (package / "__init__.py").write_text("AMOUNT = 0.5\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = code_hash("my_methods.plugin")
    (package / "__init__.py").write_text("AMOUNT = 0.6\n")
    assert code_hash("my_methods.plugin") != before and len(before) == 12
    assert code_hash("no_such_package_here") == ""
    sys.modules.pop("my_methods", None)


def _suite(directory: Path, data: str = "digits") -> Path:
    return write_suite(directory, f"""
        [suite]
        name = "ident"
        {QUICK_MEASURE}
        [[models]]
        name = "a"
        source = "file"
        ref = "a.pt"
        options = {{ unsafe_pickle = true }}

        [[models]]
        name = "b"
        source = "file"
        ref = "b.pt"
        options = {{ unsafe_pickle = true }}

        [[tasks]]
        name = "digits"
        kind = "classification"
        dataset = "{data}"

        [[methods]]
        name = "magnitude"
        use = "prune.magnitude"
        params = {{ amount = 0.5 }}
        """)


def _save(path: Path, seed: int) -> None:
    torch.manual_seed(seed)
    torch.save(torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)).eval(), path)


def test_the_plan_changes_only_for_what_a_changed_file_feeds(tmp_path: Path) -> None:
    _save(tmp_path / "a.pt", 0)
    _save(tmp_path / "b.pt", 1)
    plugins = load_plugins()
    ids = {r.label: r.run_id for r in build_plan(load_suite(_suite(tmp_path), plugins), plugins)}
    os.utime(tmp_path / "b.pt")  # touched, not changed
    _save(tmp_path / "a.pt", 2)  # retrained to the same file name
    again = {r.label: r.run_id for r in build_plan(load_suite(_suite(tmp_path), plugins), plugins)}
    assert {k for k in ids if ids[k] != again[k]} == {"a · baseline · digits", "a · magnitude · digits"}
    versions = build_plan(load_suite(_suite(tmp_path), plugins), plugins)[0].versions
    assert "+code." in versions["plugins"]["pruning" if "pruning" in versions["plugins"] else "file"]


@pytest.mark.e2e
def test_a_retrained_model_file_reruns_its_runs_without_its_old_artifact(tmp_path: Path) -> None:
    _save(tmp_path / "a.pt", 0)
    _save(tmp_path / "b.pt", 1)
    suite = _suite(tmp_path)
    first = cli("bench", str(suite), "--results", str(tmp_path / "r"), "--jobs", "2")
    assert first.returncode == 0, first.stdout + first.stderr
    _save(tmp_path / "a.pt", 2)
    second = cli("bench", str(suite), "--results", str(tmp_path / "r"), "--jobs", "2")
    assert second.returncode == 0 and "4 runs planned, 2 already done, 2 to run" in second.stdout, second.stdout
    assert "2 of these have a stored row made from other inputs" in second.stdout
    rows = [json.loads(line) for line in (tmp_path / "r" / "ident" / "results.jsonl").read_text().splitlines()]
    newest = [r for r in rows if r["model"] == "a" and r["method"] == "magnitude"][-1]
    assert newest["steps"][0]["artifact"].startswith("stored as artifact")  # compressed afresh, not reused
    olds = [r for r in rows if r["model"] == "a" and r["method"] == "baseline"]
    assert len(olds) == 2 and olds[0]["run_id"] != olds[-1]["run_id"]
