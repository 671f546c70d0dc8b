"""The ``text-classification`` task: config checks, labels read by name, and accuracy equal
to what transformers + datasets compute directly on the same split — in process, and once
end to end through ``harness bench`` with a tiny BERT sequence classifier from ``tests/zoo.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import cli, write_suite

pytest.importorskip("transformers")
pytest.importorskip("datasets")

from harness.api import RunContext, Skip  # noqa: E402
from harness_plugins.tasks.class_labels import column_labels, to_model_ids  # noqa: E402
from harness_plugins.tasks.text_classification import (  # noqa: E402
    TextClassification,
    TextClassificationConfig,
)

LABEL2ID = {"negative": 0, "positive": 1}


def csv_config(data: Path, **extra: Any) -> TextClassificationConfig:
    return TextClassificationConfig(data_files={"train": str(data / "train.csv"), "test": str(data / "test.csv")},
                                    **extra)


def prepared(config: TextClassificationConfig, model: Any, tmp_path: Path) -> Any:
    task = TextClassification().prepare(config, RunContext("cpu", 0, tmp_path, tmp_path))
    task.before_compression(model)
    return task


@pytest.fixture(scope="module")
def model(zoo) -> Any:
    from harness_plugins.sources.hf import HFOptions, load_pretrained

    return load_pretrained(str(zoo.path("bert-sst")), HFOptions(), "cpu")


def direct(zoo, split: str = "test", batch_size: int = 32) -> tuple[list[int], list[int]]:
    """(labels, predictions) computed with transformers + datasets alone."""
    import datasets
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    where = zoo.path("bert-sst")
    tok = AutoTokenizer.from_pretrained(where)
    clf = AutoModelForSequenceClassification.from_pretrained(where).eval()
    data = datasets.load_dataset("csv", data_files={split: str(zoo.path("sentiment") / f"{split}.csv")})[split]
    predictions: list[int] = []
    with torch.inference_mode():
        for i in range(0, len(data), batch_size):
            enc = tok(data[i:i + batch_size]["text"], padding=True, truncation=True, max_length=128,
                      return_tensors="pt")
            predictions += clf(**enc).logits.argmax(-1).tolist()
    return [clf.config.label2id[y] for y in data["label"]], predictions


def test_config_needs_one_data_source_and_sane_values() -> None:
    with pytest.raises(ValueError, match="exactly one of dataset"):
        TextClassificationConfig()
    with pytest.raises(ValueError, match="exactly one of dataset"):
        TextClassificationConfig(dataset="glue", data_files={"test": "t.csv"})
    with pytest.raises(ValueError, match="split 'validation' has no file in data_files"):
        TextClassificationConfig(data_files={"test": "t.csv"}, split="validation")
    with pytest.raises(ValueError, match="one format"):
        TextClassificationConfig(data_files={"test": "t.csv", "train": "t.parquet"})
    with pytest.raises(ValueError, match="one format"):
        TextClassificationConfig(data_files={"test": "t.txt"})
    with pytest.raises(ValueError, match="max_length"):
        TextClassificationConfig(dataset="glue", max_length=1)


def test_check_config_names_missing_files_directories_and_columns(zoo, tmp_path: Path) -> None:
    import datasets

    kind, data = TextClassification(), zoo.path("sentiment")
    assert kind.check_config(csv_config(data), tmp_path) == []
    missing = kind.check_config(TextClassificationConfig(data_files={"test": "nope.csv"}), tmp_path)
    assert missing == ["data_files.test: file 'nope.csv' does not exist (paths are relative to the suite file)"]
    [bad] = kind.check_config(csv_config(data, text_column="sentence"), tmp_path)[:1]
    assert bad.startswith("text_column: column 'sentence' is not in data_files.train") and "text, label" in bad
    pair = kind.check_config(csv_config(data, text_pair_column="hypothesis"), tmp_path)
    assert len(pair) == 2 and all(p.startswith("text_pair_column: column 'hypothesis'") for p in pair)
    assert "does not exist" in kind.check_config(TextClassificationConfig(dataset="./gone"), tmp_path)[0]
    assert "not a datasets save_to_disk directory" in kind.check_config(
        TextClassificationConfig(dataset=str(data)), tmp_path)[0]
    datasets.DatasetDict({"test": datasets.Dataset.from_dict({"sentence": ["a"], "label": [0]})}).save_to_disk(
        tmp_path / "disk")
    found = kind.check_config(TextClassificationConfig(dataset="./disk"), tmp_path)
    assert found == ["text_column: column 'text' is not in dataset './disk' split 'test' (its columns: "
                     "sentence, label): set text_column to one of them"]
    assert "'validation' is not a split" in kind.check_config(
        TextClassificationConfig(dataset="./disk", split="validation", text_column="sentence"), tmp_path)[0]
    assert kind.check_config(TextClassificationConfig(dataset="glue", subset="sst2"), tmp_path) == []  # hub: on load


def test_validate_reports_a_bad_column_before_anything_runs(zoo, tmp_path: Path) -> None:
    suite = write_suite(tmp_path, f"""
        [[models]]
        name = "bert"
        source = "hf"
        ref = "{zoo.path('bert-sst')}"

        [[tasks]]
        name = "sst"
        kind = "text-classification"
        data_files = {{ test = "{zoo.path('sentiment') / 'test.csv'}" }}
        label_column = "sentiment"
    """)
    proc = cli("validate", str(suite))
    assert proc.returncode == 2
    assert "label_column: column 'sentiment' is not in data_files.test" in proc.stdout + proc.stderr


def test_the_worked_example_in_the_docs_validates(tmp_path: Path) -> None:
    from conftest import ROOT

    doc = (ROOT / "docs" / "text-classification.md").read_text()
    example = next(block.split("```", 1)[0] for block in doc.split("```toml\n")[1:] if "[suite]" in block)
    proc = cli("validate", str(write_suite(tmp_path, example)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "bert-sst2" in proc.stdout


def test_labels_are_matched_by_name_or_used_as_ids() -> None:
    ids, how = to_model_ids([0, 1, 1], ["Positive", "NEGATIVE"], LABEL2ID, 2, "x")  # ClassLabel, other order
    assert ids == [1, 0, 0] and how.startswith("by name") and "Positive=1" in how
    ids, how = to_model_ids(["positive", "negative"], None, LABEL2ID, 2, "x")  # strings
    assert ids == [1, 0] and "by name" in how
    ids, how = to_model_ids([0, 1], ["neg", "pos"], LABEL2ID, 2, "x")  # ClassLabel, other names: ids
    assert ids == [0, 1] and how.startswith("the data set's ClassLabel ids") and "neg, pos" in how
    ids, how = to_model_ids([1, 0], None, {"LABEL_0": 0, "LABEL_1": 1}, 2, "x")
    assert ids == [1, 0] and how.startswith("the data set's integer labels")
    with pytest.raises(ValueError, match="split 's'.*label 'neutral' is not a class of the model .*negative, positive"):
        to_model_ids(["positive", "neutral"], None, LABEL2ID, 2, "label_column 'label' of split 's'")
    with pytest.raises(ValueError, match="label id -1 is not an output of the model"):
        to_model_ids([-1, -1], ["negative", "positive"], LABEL2ID, 2, "x")  # GLUE-style unlabelled test split
    with pytest.raises(ValueError, match="label id 3"):
        to_model_ids([0, 3], None, LABEL2ID, 2, "x")


def test_column_labels_read_classlabel_strings_and_integers() -> None:
    import datasets

    feats = datasets.Features({"label": datasets.ClassLabel(names=["neg", "pos"])})
    assert column_labels(datasets.Dataset.from_dict({"label": [1, 0]}, features=feats), "label") == ([1, 0], ["neg", "pos"])
    assert column_labels(datasets.Dataset.from_dict({"label": ["a", "b"]}), "label") == (["a", "b"], None)
    assert column_labels(datasets.Dataset.from_dict({"label": [2, 0]}), "label") == ([2, 0], None)
    with pytest.raises(ValueError, match="label_column 'label' is empty in row 1"):
        column_labels(datasets.Dataset.from_dict({"label": ["a", None]}), "label")
    with pytest.raises(ValueError, match="labels must be class names"):
        column_labels(datasets.Dataset.from_dict({"label": [0.5, 1.0]}), "label")


def test_accuracy_and_macro_f1_equal_transformers_and_sklearn(zoo, model, tmp_path: Path) -> None:
    from sklearn.metrics import f1_score

    task = prepared(csv_config(zoo.path("sentiment")), model, tmp_path)
    ours = task.evaluate(model)
    labels, predictions = direct(zoo)
    accuracy = sum(y == p for y, p in zip(labels, predictions)) / len(labels)
    assert ours["accuracy"] == accuracy and 0.6 < accuracy < 1.0
    assert ours["macro_f1"] == pytest.approx(f1_score(labels, predictions, average="macro"), abs=1e-12)
    assert ours["eval_samples"] == 96 and ours["accuracy_stderr"] == pytest.approx((accuracy * (1 - accuracy) / 96) ** 0.5)
    assert ours["label_mapping"].startswith("by name")
    capped = prepared(csv_config(zoo.path("sentiment"), max_samples=10), model, tmp_path).evaluate(model)
    assert capped["eval_samples"] == 10
    assert capped["accuracy"] == sum(y == p for y, p in zip(labels[:10], predictions[:10])) / 10


def test_inputs_for_timing_calibration_and_training(zoo, model, tmp_path: Path) -> None:
    import copy

    from harness.toolkit import fit

    task = prepared(csv_config(zoo.path("sentiment")), model, tmp_path)
    x = task.example_input(3)
    assert x.dtype.is_floating_point is False and x.shape[0] == 3 and model(x).logits.shape == (3, 2)
    assert x.equal(task.example_input(3))
    calibration = task.calibration_batches(20, batch_size=8)
    assert sum(len(b) for b in calibration) == 20 and all(len(b) <= 8 for b in calibration)
    epoch = list(task.train_batches(64, seed=0))
    assert sum(len(y) for _, y in epoch) == 256 and epoch[0][0].shape[0] == len(epoch[0][1])
    tuned = copy.deepcopy(model)
    report = fit(tuned, task, epochs=1, lr=1e-3, seed=0, batch_size=64)
    assert report.samples == 256 and report.losses[0] > 0


def test_a_save_to_disk_directory_with_classlabels(zoo, model, tmp_path: Path) -> None:
    """Class names in the opposite order to the model's: labels are matched by name."""
    import datasets

    feats = datasets.Features({"text": datasets.Value("string"),
                               "label": datasets.ClassLabel(names=["positive", "negative"])})
    splits = {}
    for split in ("train", "test"):
        rows = datasets.load_dataset("csv", data_files=str(zoo.path("sentiment") / f"{split}.csv"))["train"]
        splits[split] = datasets.Dataset.from_dict(
            {"text": rows["text"], "label": [0 if y == "positive" else 1 for y in rows["label"]]}, features=feats)
    datasets.DatasetDict(splits).save_to_disk(tmp_path / "sst-disk")
    from_disk = prepared(TextClassificationConfig(dataset="sst-disk"), model, tmp_path).evaluate(model)
    from_csv = prepared(csv_config(zoo.path("sentiment")), model, tmp_path).evaluate(model)
    assert from_disk["accuracy"] == from_csv["accuracy"] and from_disk["macro_f1"] == from_csv["macro_f1"]
    assert "positive=1" in from_disk["label_mapping"]
    with pytest.raises(ValueError, match=r"split 'validation' is not in the data set \(its splits: train, test\)"):
        TextClassification().prepare(TextClassificationConfig(dataset="sst-disk", split="validation"),
                                     RunContext("cpu", 0, tmp_path, tmp_path))
    splits["test"].save_to_disk(tmp_path / "only-test")  # one Dataset: evaluation only, no training split
    alone = prepared(TextClassificationConfig(dataset="./only-test"), model, tmp_path)
    assert alone.evaluate(model)["accuracy"] == from_csv["accuracy"]
    with pytest.raises(Skip, match="no training split 'train'"):
        alone.calibration_batches(8)
    with pytest.raises(ValueError, match="split 'test' has no column text_column 'sentence' .*text, label"):
        TextClassification().prepare(TextClassificationConfig(dataset="./only-test", text_column="sentence"),
                                     RunContext("cpu", 0, tmp_path, tmp_path))


def test_json_lines_and_parquet_files_read_like_csv(zoo, model, tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.read_csv(zoo.path("sentiment") / "test.csv")
    frame.to_json(tmp_path / "test.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "test.parquet")
    expected = prepared(csv_config(zoo.path("sentiment")), model, tmp_path).evaluate(model)["accuracy"]
    for name in ("test.jsonl", "test.parquet"):
        config = TextClassificationConfig(data_files={"test": name})
        assert TextClassification().check_config(config, tmp_path) == []
        [bad] = TextClassification().check_config(TextClassificationConfig(data_files={"test": name},
                                                                           label_column="y"), tmp_path)
        assert bad.startswith(f"label_column: column 'y' is not in data_files.test '{name}' (its columns: text, label)")
        assert prepared(config, model, tmp_path).evaluate(model)["accuracy"] == expected


def test_a_hub_data_set_offline_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="hub data set 'glue' is not in the local Hugging Face cache"):
        TextClassification().prepare(TextClassificationConfig(dataset="glue", subset="sst2"),
                                     RunContext("cpu", 0, tmp_path, tmp_path))


@pytest.mark.e2e
def test_bench_on_a_bert_classifier_matches_the_direct_accuracy(zoo, zoo_bench) -> None:
    _, proc, all_rows = zoo_bench
    rows = {method: row for (model, _, method), row in all_rows.items() if model == "bert-sst"}
    assert set(rows) == {"baseline", "int8", "magnitude", "structured"}, proc.stderr[-3000:]
    assert all(r["status"] == "ok" for r in rows.values()), {m: r.get("error") for m, r in rows.items()}
    labels, predictions = direct(zoo)
    base = rows["baseline"]["metrics"]
    assert base["accuracy"] == sum(y == p for y, p in zip(labels, predictions)) / len(labels)
    assert base["eval_samples"] == 96 and 0 < base["macro_f1"] <= 1
    assert rows["int8"]["metrics"]["size_mb"] < base["size_mb"]
    assert rows["magnitude"]["metrics"]["sparsity"] > 0.1
    assert rows["structured"]["metrics"]["params"] < base["params"]
    for row in rows.values():
        assert abs(row["metrics"]["accuracy"] - base["accuracy"]) < 0.3
