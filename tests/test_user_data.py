"""``classification`` on the user's own data (.npz, .npy, CSV, Parquet) and a user's pickled
model that just loads: readers and checks in-process, one ``harness bench`` end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from zoo import read_csv_split

from harness.api import Skip
from harness.params import build, decode, to_dict
from harness_plugins.sources.file import FileOptions
from harness_plugins.tasks.classification import (
    Classification,
    ClassificationConfig,
    ClassificationData,
)

from conftest import cli, write_suite


@pytest.fixture(scope="module")
def blobs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Three separable classes in 6 features (scikit-learn), 90 train / 30 test samples."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=120, n_features=6, n_informative=4, n_classes=3, random_state=1)
    x = x.astype(np.float32)
    return {"train": (x[:90], y[:90]), "test": (x[90:], y[90:])}


NAMES = np.array(["cat", "dog", "fox"])


def frame(split: tuple[np.ndarray, np.ndarray], name: str | None = None) -> Any:
    import pandas as pd

    x, y = split
    table = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    table["label"] = NAMES[y]
    if name:
        table["split"] = name
    return table


def write_layout(kind: str, blobs: dict, root: Path) -> dict[str, Any]:
    """The blobs written as ``kind``; returns the task keys that read them."""
    import pandas as pd

    if kind == "npz":
        np.savez(root / "d.npz", **{f"{a}_{s}": blobs[s][i] for s in blobs for i, a in enumerate("xy")})
        return {"path": "d.npz"}
    if kind == "npz-X":
        np.savez(root / "d.npz", **{f"{a}_{s}": blobs[s][i] for s in blobs for i, a in enumerate(["X", "y"])})
        return {"path": "d.npz", "x_key": "X"}
    if kind == "npy":
        (root / "arrays").mkdir()
        for s in blobs:
            np.save(root / "arrays" / f"x_{s}.npy", blobs[s][0])
            np.save(root / "arrays" / f"y_{s}.npy", NAMES[blobs[s][1]])  # string labels
        return {"path": "arrays"}
    if kind == "csv":
        pd.concat([frame(blobs["train"], "train"), frame(blobs["test"], "test")]).to_csv(root / "d.csv", index=False)
        return {"path": "d.csv", "split_column": "split"}
    for s in blobs:
        frame(blobs[s]).to_parquet(root / f"{s}.parquet")
    return {"data_files": {"train": "train.parquet", "test": "test.parquet"}}


@pytest.mark.parametrize("kind", ["npz", "npz-X", "npy", "csv", "parquet"])
def test_every_layout_reads_the_same_samples_labels_and_training_split(kind: str, blobs, tmp_path: Path) -> None:
    config = ClassificationConfig(**write_layout(kind, blobs, tmp_path))
    assert Classification().check_config(config, tmp_path) == []
    data = ClassificationData(config, "cpu", tmp_path)
    assert np.array_equal(data.x.numpy(), blobs["test"][0]) and np.array_equal(data.y.numpy(), blobs["test"][1])
    assert np.array_equal(data.x_train.numpy(), blobs["train"][0])
    assert data.info | {"label_mapping": ""} == {"classes": 3, "features": 6, "train_samples": 90, "label_mapping": ""}
    (x, y), = data.train_batches(batch_size=128, seed=0)
    assert sorted(y.tolist()) == sorted(blobs["train"][1].tolist()) and x.dtype.is_floating_point
    assert [len(b) for b in data.calibration_batches(50, batch_size=32)] == [32, 18]


def test_string_labels_follow_the_data_sets_names_or_the_given_class_order(blobs, tmp_path: Path) -> None:
    keys = write_layout("csv", blobs, tmp_path)
    data = ClassificationData(ClassificationConfig(**keys), "cpu", tmp_path)
    assert data.info["label_mapping"] == "class names as ids: cat=0, dog=1, fox=2"
    flipped = ClassificationData(ClassificationConfig(**keys, classes=("fox", "dog", "cat", "owl")), "cpu", tmp_path)
    assert np.array_equal(flipped.y.numpy(), 2 - blobs["test"][1]) and flipped.classes == 4
    with pytest.raises(ValueError, match=r"label 'fox' of .*d\.csv.* is not one of classes \(cat, dog\): add it"):
        ClassificationData(ClassificationConfig(**keys, classes=("cat", "dog")), "cpu", tmp_path)
    np.savez(tmp_path / "ints.npz", x_test=blobs["test"][0], y_test=blobs["test"][1])
    with pytest.raises(ValueError, match=r"holds integer labels \(the model's output ids already\): remove classes"):
        ClassificationData(ClassificationConfig(path="ints.npz", classes=("a", "b", "c")), "cpu", tmp_path)


def test_data_without_a_training_split_is_evaluated_and_methods_that_need_one_skip(blobs, tmp_path: Path) -> None:
    np.savez(tmp_path / "test-only.npz", x_test=blobs["test"][0], y_test=blobs["test"][1])
    config = ClassificationConfig(path="test-only.npz")
    assert Classification().check_config(config, tmp_path) == []
    data = ClassificationData(config, "cpu", tmp_path)
    assert data.info["train_samples"] == 0
    with pytest.raises(Skip, match="no training split 'train'"):
        data.calibration_batches(10)


def test_a_model_that_cannot_take_the_features_fails_with_the_datas_shape(blobs, tmp_path: Path) -> None:
    import torch

    data = ClassificationData(ClassificationConfig(**write_layout("npz", blobs, tmp_path)), "cpu", tmp_path)
    with pytest.raises(ValueError, match=r"does not take this data's inputs, float32 \[N, 6\] \(mat1 and mat2 .*7x3"):
        data.before_compression(torch.nn.Linear(7, 3))
    with pytest.raises(ValueError, match=r"the model has 2 outputs but the data has 3 classes"):
        data.before_compression(torch.nn.Linear(6, 2))
    data.before_compression(torch.nn.Linear(6, 3))


@pytest.mark.parametrize(("keys", "message"), [
    ({"path": "d.csv"}, "is one table: set split_column"),
    ({"dataset": "digits", "label_column": "y"}, "label_column: only for your own data"),
    ({"path": "d.npz", "feature_columns": ["a"]}, "feature_columns: only for CSV/Parquet tables"),
    ({"data_files": {"train": "a.csv"}}, "split 'test' has no file in data_files"),
    ({"data_files": {"test": "a.json"}}, "data_files must be CSV or Parquet"),
    ({}, "set one of dataset"),
], ids=["no-split-column", "digits-extra", "npz-extra", "no-eval-file", "json", "nothing"])
def test_config_mistakes_are_one_sentence_with_the_fix(keys: dict, message: str) -> None:
    problems: list[str] = []
    assert build(ClassificationConfig, keys, "tasks[0]", problems) is None
    assert message in problems[0]


def test_validate_names_the_missing_file_array_column_and_folder(blobs, tmp_path: Path) -> None:
    import torch

    write_layout("csv", blobs, tmp_path)
    np.savez(tmp_path / "d.npz", x_test=blobs["test"][0], x_train=blobs["train"][0])
    torch.save(torch.nn.Linear(6, 3), tmp_path / "model.pt")
    suite = write_suite(tmp_path, """
        [suite]
        name = "mistakes"
        [[models]]
        name = "m"
        source = "file"
        ref = "model.pt"
        options = { unsafe_pickle = true, python_path = ["src"] }
        [[tasks]]
        name = "arrays"
        kind = "classification"
        path = "d.npz"
        [[tasks]]
        name = "table"
        kind = "classification"
        path = "d.csv"
        split_column = "split"
        label_column = "species"
        [[tasks]]
        name = "nofile"
        kind = "classification"
        data_files = { test = "missing.parquet" }
    """)
    proc = cli("validate", str(suite))
    assert proc.returncode == 2
    out = " ".join((proc.stdout + proc.stderr).split())
    assert "d.npz' has no array y_test (it has: x_test, x_train)" in out
    assert "has no array y_train" in out  # half a training split
    assert "d.csv' has no column 'species' (its columns: f0, f1, f2, f3, f4, f5, label, split): set label_column" in out
    assert "data_files.test: data file" in out and "missing.parquet' does not exist" in out
    assert "options.python_path: folder" in out and "src' does not exist" in out


def test_old_suites_keep_their_run_ids() -> None:
    """New keys at their defaults stay out of a spec's identity (the quickstart's run ids)."""
    assert to_dict(ClassificationConfig("digits")) == {"dataset": "digits", "split": "test", "batch_size": 256}
    assert to_dict(FileOptions(unsafe_pickle=True)) == {"unsafe_pickle": True}
    used = ClassificationConfig(path="d.csv", split_column="split", feature_columns=("a", "b"))
    assert to_dict(used) == {"dataset": None, "split": "test", "batch_size": 256, "path": "d.csv",
                             "split_column": "split", "feature_columns": ["a", "b"]}
    assert decode(ClassificationConfig, json.loads(json.dumps(to_dict(used)))) == used
    options = FileOptions(unsafe_pickle=True, python_path=("src",))
    assert decode(FileOptions, to_dict(options)) == options


@pytest.mark.e2e
def test_bench_a_pickled_user_model_on_a_csv_matches_the_direct_accuracy(zoo, zoo_bench) -> None:
    import torch

    _, proc, all_rows = zoo_bench
    rows = {method: row for (model, _, method), row in all_rows.items() if model == "mlp"}
    assert set(rows) == {"baseline", "int8", "magnitude", "structured"}, proc.stderr[-3000:]
    assert all(r["status"] == "ok" for r in rows.values()), {m: r.get("error") for m, r in rows.items()}
    user = zoo.path("user")
    sys.path.insert(0, str(user / "src"))  # the user's class, as the run found it through python_path
    try:
        model = torch.load(user / "mlp.pt", weights_only=False)
    finally:
        sys.path.remove(str(user / "src"))
        sys.modules.pop("mynet", None)
    x, y = read_csv_split(user / "data" / "blobs.csv", "test")
    with torch.inference_mode():
        direct = int((model(x).argmax(dim=1) == y).sum()) / len(y)
    base = rows["baseline"]["metrics"]
    assert base["accuracy"] == direct > 0.6
    assert (base["eval_samples"], base["train_samples"], base["classes"], base["features"]) == (100, 300, 3, 8)
    assert rows["int8"]["metrics"]["size_mb"] < base["size_mb"]
    assert rows["structured"]["metrics"]["params"] < base["params"]
