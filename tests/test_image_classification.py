"""The ``image-classification`` task: config checks, explicit preprocessing, labels read
by name, accuracy equal to what transformers + PIL compute directly on the same files — in
process, and once end to end through ``harness bench`` with the tiny ViT of
``tests/zoo.py`` on its ImageFolder of shapes. Without torchvision, the ``torchvision`` /
``timm`` sources' one sentence; with it, test_vision_sources.py."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, cli, write_suite

pytest.importorskip("transformers")
pytest.importorskip("datasets")

from harness.api import RunContext, Skip  # noqa: E402
from harness_plugins.data.images import center_crop, explicit_transform, resize_image  # noqa: E402
from harness_plugins.sources import vision  # noqa: E402
from harness_plugins.tasks.image_classification import (  # noqa: E402
    ImageClassification,
    ImageClassificationConfig,
    by_class_ids,
)


def ctx(tmp_path: Path) -> RunContext:
    return RunContext("cpu", 0, tmp_path, tmp_path)


def prepared(config: ImageClassificationConfig, model: Any, tmp_path: Path) -> Any:
    task = ImageClassification().prepare(config, ctx(tmp_path))
    task.before_compression(model)
    return task


@pytest.fixture(scope="module")
def model(zoo) -> Any:
    from harness_plugins.sources.hf import HFOptions, load_pretrained

    return load_pretrained(str(zoo.path("vit")), HFOptions(), "cpu")


def direct(zoo, split: str = "test") -> dict[str, tuple[int, int]]:
    """{file: (label, prediction)} computed with transformers + PIL alone, in one batch."""
    import torch
    from PIL import Image
    from transformers import AutoModelForImageClassification
    from transformers.models.auto.image_processing_auto import (
        AutoImageProcessor,  # as plugins/sources/hf.py does
    )

    where = zoo.path("vit")
    processor = AutoImageProcessor.from_pretrained(where)
    clf = AutoModelForImageClassification.from_pretrained(where).eval()
    files = sorted((zoo.path("shapes") / split).glob("*/*.png"))
    pixels = processor([Image.open(f).convert("RGB") for f in files], return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        predictions = clf(pixels).logits.argmax(-1).tolist()
    return {f.name + f.parent.name: (clf.config.label2id[f.parent.name], p) for f, p in zip(files, predictions)}


def test_config_needs_one_data_source_and_sane_values() -> None:
    with pytest.raises(ValueError, match="exactly one of data_dir"):
        ImageClassificationConfig()
    with pytest.raises(ValueError, match="exactly one of data_dir"):
        ImageClassificationConfig(data_dir="d", dataset="x")
    with pytest.raises(ValueError, match="subset names a hub data set's configuration"):
        ImageClassificationConfig(data_dir="d", subset="full")
    with pytest.raises(ValueError, match="batch_size and max_samples"):
        ImageClassificationConfig(data_dir="d", batch_size=0)
    with pytest.raises(ValueError, match="resize must be a positive number of pixels"):
        ImageClassificationConfig(data_dir="d", resize=(1, 2, 3))
    with pytest.raises(ValueError, match="crop must be"):
        ImageClassificationConfig(data_dir="d", crop=0)
    with pytest.raises(ValueError, match="set mean and std together"):
        ImageClassificationConfig(data_dir="d", mean=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="3 values each"):
        ImageClassificationConfig(data_dir="d", mean=(0.5,), std=(0.5,))
    with pytest.raises(ValueError, match="class_ids maps each class name"):
        ImageClassificationConfig(data_dir="d", class_ids={"a": -1})
    assert ImageClassificationConfig(data_dir="d", resize=(8, 12), crop=8).explicit()
    assert not ImageClassificationConfig(data_dir="d").explicit()


def test_check_config_names_missing_directories_splits_and_columns(zoo, tmp_path: Path) -> None:
    import datasets

    kind, shapes = ImageClassification(), zoo.path("shapes")
    assert kind.check_config(ImageClassificationConfig(data_dir=str(shapes)), tmp_path) == []
    assert kind.check_config(ImageClassificationConfig(data_dir="gone"), tmp_path) == [
        "data_dir: directory 'gone' does not exist (paths are relative to the suite file)"]
    [bad] = kind.check_config(ImageClassificationConfig(data_dir=str(shapes), split="validation"), tmp_path)
    assert bad.startswith("split: 'validation' is not a split of data_dir") and "its splits: test, train" in bad
    (tmp_path / "flat" / "test").mkdir(parents=True)
    (tmp_path / "flat" / "test" / "a.png").write_bytes(b"")
    assert "has no class folders" in kind.check_config(ImageClassificationConfig(data_dir="flat"), tmp_path)[0]
    rows = {"img": [datasets.Image().encode_example(str(next(shapes.glob("test/*/*.png"))))], "label": [0]}
    datasets.DatasetDict({"test": datasets.Dataset.from_dict(rows, features=datasets.Features(
        {"img": datasets.Image(), "label": datasets.Value("int64")}))}).save_to_disk(tmp_path / "disk")
    assert kind.check_config(ImageClassificationConfig(dataset="./disk"), tmp_path) == [
        "image_column: column 'image' is not in dataset './disk' split 'test' (its columns: img, label): "
        "set image_column to one of them"]
    assert kind.check_config(ImageClassificationConfig(dataset="./disk", image_column="img"), tmp_path) == []
    assert kind.check_config(ImageClassificationConfig(dataset="imagenette"), tmp_path) == []  # hub: on load


def test_explicit_resize_crop_and_normalisation() -> None:
    import numpy as np
    from PIL import Image

    wide = Image.new("RGB", (40, 20), (51, 102, 204))
    assert resize_image(wide, 10, "bilinear").size == (20, 10)  # shorter side to 10, aspect kept
    assert resize_image(wide, (12, 30), "nearest").size == (30, 12)  # [height, width]
    marked = np.zeros((9, 12, 3), dtype=np.uint8)
    marked[4, 6] = 255  # the pixel that must land at the centre of a 3x4 crop: offsets (3, 4)
    cropped = np.asarray(center_crop(Image.fromarray(marked), (3, 4)))
    assert cropped.shape == (3, 4, 3) and cropped[1, 2].tolist() == [255, 255, 255] and cropped.sum() == 3 * 255
    with pytest.raises(ValueError, match="crop 30x30 is larger than the image"):
        center_crop(wide, 30)
    config = ImageClassificationConfig(data_dir="d", resize=10, crop=8, mean=(0.2, 0.4, 0.8), std=(0.5, 0.25, 0.1))
    x = explicit_transform(config)(wide.convert("L").convert("RGBA"))  # converted to RGB first
    grey = np.float32(np.asarray(wide.convert("L"))[0, 0]) / 255
    assert tuple(x.shape) == (3, 8, 8) and str(x.dtype) == "torch.float32"
    assert np.allclose(x[:, 0, 0].numpy(), (grey - np.array([0.2, 0.4, 0.8])) / np.array([0.5, 0.25, 0.1]), atol=1e-6)
    raw = explicit_transform(ImageClassificationConfig(data_dir="d", crop=4))(wide)
    assert raw.shape == (3, 4, 4) and raw[:, 0, 0].tolist() == pytest.approx([0.2, 0.4, 0.8])


def test_accuracy_equals_transformers_and_pil_on_the_same_files(zoo, model, tmp_path: Path) -> None:
    from sklearn.metrics import f1_score

    task = prepared(ImageClassificationConfig(data_dir=str(zoo.path("shapes")), batch_size=64), model, tmp_path)
    ours = task.evaluate(model)
    expected = direct(zoo)
    labels = [y for y, _ in expected.values()]
    predictions = [p for _, p in expected.values()]
    accuracy = sum(y == p for y, p in zip(labels, predictions)) / len(labels)
    assert ours["accuracy"] == accuracy and ours["eval_samples"] == 48 == len(expected)
    assert ours["macro_f1"] == pytest.approx(f1_score(labels, predictions, average="macro"), abs=1e-12)
    assert ours["label_mapping"] == "by name through the model's config.label2id: horizontal=0, vertical=1"
    assert ours["preprocessing"].startswith("the model's image processor") and ours["image_shape"] == [3, 16, 16]
    rows = task.eval_data  # the same files, image by image: the same label and the same prediction
    names = [Path(img.filename).name + Path(img.filename).parent.name for img in rows["image"]]
    with_model = [int(p) for p in model(task.x).logits.argmax(-1)]
    assert names == list(expected) and list(zip(task.y, with_model)) == list(expected.values())


def test_explicit_keys_win_over_the_model_processor(zoo, model, tmp_path: Path) -> None:
    """The zoo's processor is resize 16 + mean/std 0.5: the same as explicit keys, to the bit."""
    shapes = str(zoo.path("shapes"))
    own = prepared(ImageClassificationConfig(data_dir=shapes), model, tmp_path)
    same = prepared(ImageClassificationConfig(data_dir=shapes, resize=(16, 16), mean=(0.5,) * 3, std=(0.5,) * 3),
                    model, tmp_path)
    assert same.info["preprocessing"] == "explicit resize/crop/mean/std"
    assert (same.x - own.x).abs().max() < 1e-6 and same.evaluate(model)["accuracy"] == own.evaluate(model)["accuracy"]
    unnormalised = prepared(ImageClassificationConfig(data_dir=shapes, crop=16), model, tmp_path)
    assert float(unnormalised.x.min()) >= 0 and not unnormalised.x.equal(own.x)


def test_the_worked_example_in_the_docs_validates(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "vision.md").read_text()
    example = next(block.split("```", 1)[0] for block in doc.split("```toml\n")[1:] if "[suite]" in block)
    proc = cli("validate", str(write_suite(tmp_path, example)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "vit-cifar10" in proc.stdout


def test_labels_by_name_by_class_ids_or_as_ids(zoo, model, tmp_path: Path) -> None:
    """Class names in the opposite order to the model's: matched by name; ``class_ids``
    wins; an unknown name is an error naming it."""
    import datasets

    found = datasets.load_dataset("imagefolder", data_dir=str(zoo.path("shapes")))
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["vertical", "horizontal"])})
    datasets.DatasetDict({s: datasets.Dataset.from_dict({"image": d["image"], "label": [1 - y for y in d["label"]]},
                                                        features=feats) for s, d in found.items()}).save_to_disk(
        tmp_path / "swapped")
    base = prepared(ImageClassificationConfig(data_dir=str(zoo.path("shapes"))), model, tmp_path).evaluate(model)
    by_name = prepared(ImageClassificationConfig(dataset="swapped"), model, tmp_path).evaluate(model)
    assert by_name["accuracy"] == base["accuracy"] and "vertical=1" in by_name["label_mapping"]
    flipped = prepared(ImageClassificationConfig(dataset="swapped", class_ids={"vertical": 0, "horizontal": 1}),
                       model, tmp_path).evaluate(model)
    assert flipped["accuracy"] == pytest.approx(1 - base["accuracy"]) and flipped["label_mapping"] == "through the task's class_ids"
    assert by_class_ids([0, 1], ["a", "b"], {"a": 7, "b": 3}, "x") == ([7, 3], "through the task's class_ids")
    with pytest.raises(ValueError, match="x: class 'b' is not in class_ids \\(it lists a\\): add it"):
        by_class_ids(["a", "b"], None, {"a": 0}, "x")
    with pytest.raises(ValueError, match="holds integer ids, but class_ids maps class names"):
        by_class_ids([0, 1], None, {"a": 0}, "x")
    with pytest.raises(ValueError, match="label id 7 is not an output of the model"):
        prepared(ImageClassificationConfig(dataset="swapped", class_ids={"vertical": 7, "horizontal": 0}), model, tmp_path)


def test_inputs_for_timing_calibration_and_training(zoo, model, tmp_path: Path) -> None:
    import copy

    from harness.toolkit import fit

    task = prepared(ImageClassificationConfig(data_dir=str(zoo.path("shapes"))), model, tmp_path)
    x = task.example_input(50)  # more than the split: repeated
    assert tuple(x.shape) == (50, 3, 16, 16) and x.equal(task.example_input(50)) and x[48].equal(x[0])
    assert model(x[:3]).logits.shape == (3, 2)
    calibration = task.calibration_batches(20, batch_size=8)
    assert [len(b) for b in calibration] == [8, 8, 4]
    epoch = list(task.train_batches(32, seed=0))
    assert sum(len(y) for _, y in epoch) == 96 and epoch[0][0].shape == (32, 3, 16, 16)
    assert [y.tolist() for _, y in epoch] == [y.tolist() for _, y in task.train_batches(32, seed=0)]
    report = fit(copy.deepcopy(model), task, epochs=1, lr=1e-3, seed=0, batch_size=32)
    assert report.samples == 96 and report.losses[0] > 0
    alone = prepared(ImageClassificationConfig(data_dir=str(zoo.path("shapes")), train_split=""), model, tmp_path)
    with pytest.raises(Skip, match="no training split"):
        alone.calibration_batches(8)


def test_a_model_without_preprocessing_needs_explicit_keys(zoo, tmp_path: Path) -> None:
    import torch

    cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(4, 2)).eval()
    config = ImageClassificationConfig(data_dir=str(zoo.path("shapes")))
    with pytest.raises(ValueError, match="needs the model's preprocessing .* or set resize, crop, mean and std"):
        prepared(config, cnn, tmp_path)
    task = prepared(ImageClassificationConfig(data_dir=str(zoo.path("shapes")), resize=16), cnn, tmp_path)
    result = task.evaluate(cnn)
    assert result["eval_samples"] == 48 and result["label_mapping"].startswith("the data set's ClassLabel ids")
    with pytest.raises(ValueError, match=r"does not take this data's inputs, float32 \[N, 3, 16, 16\]"):
        task.before_compression(torch.nn.Linear(5, 2))


def test_images_of_different_sizes_need_resize(tmp_path: Path) -> None:
    import torch
    from PIL import Image

    for name, side in (("a", 8), ("b", 10)):
        (tmp_path / "mixed" / "test" / name).mkdir(parents=True)
        Image.new("RGB", (side, side)).save(tmp_path / "mixed" / "test" / name / "0.png")
    cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    for batch_size in (2, 1):  # within a batch, and between batches
        config = ImageClassificationConfig(data_dir="mixed", mean=(0.5,) * 3, std=(0.5,) * 3, batch_size=batch_size)
        with pytest.raises(ValueError, match="split 'test': the images differ in size after preprocessing"):
            prepared(config, cnn, tmp_path)
    resized = prepared(ImageClassificationConfig(data_dir="mixed", resize=(6, 6), batch_size=1), cnn, tmp_path)
    assert tuple(resized.x.shape) == (2, 3, 6, 6)


def test_a_hub_data_set_offline_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="hub data set 'frgfm/imagenette' is not in the local Hugging Face cache"):
        ImageClassification().prepare(ImageClassificationConfig(dataset="frgfm/imagenette"), ctx(tmp_path))


def test_sources_say_in_one_sentence_that_the_vision_extra_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import fails: not installed
    problem = vision.TorchvisionSource().check_ref("resnet18", vision.TorchvisionOptions(), Path("."))
    assert problem.startswith("the torchvision source needs torchvision, which is not installed: pip install "
                              "'compression-harness[vision]', with a torchvision build that matches the installed torch")
    assert problem.count(". ") == 0 and "\n" not in problem
    with pytest.raises(RuntimeError, match="torchvision source needs torchvision"):
        vision.TorchvisionSource().load("resnet18", vision.TorchvisionOptions(), ctx(Path(".")))

    def broken(name: str) -> Any:  # installed, but built for another torch
        raise OSError("libtorch_cuda.so: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(vision.importlib, "import_module", broken)
    problem = vision.TimmSource().check_ref("resnet50", vision.TimmOptions(), Path("."))
    assert problem.startswith("the timm source needs torchvision and timm, and torchvision cannot be imported "
                              "(libtorch_cuda.so: cannot open shared object file: No such file or directory): pip install")


def test_the_resnet50_imagenette_suite_validates_but_for_torchvision(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Next to an (empty-image) Imagenette tree and without torchvision, the example suite's
    only problem is torchvision, in one sentence (test_vision_sources.py: with it, valid)."""
    from PIL import Image

    monkeypatch.setitem(sys.modules, "torchvision", None)  # import fails: not installed

    suite = tmp_path / "resnet50-imagenette.toml"
    shutil.copy(ROOT / "suites" / "resnet50-imagenette.toml", suite)
    for split in ("train", "val"):
        (tmp_path / "imagenette2-320" / split / "n01440764").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "imagenette2-320" / split / "n01440764" / "a.JPEG")
    proc = cli("validate", str(suite))
    assert proc.returncode == 2
    out = " ".join((proc.stdout + proc.stderr).split())
    assert "the torchvision source needs torchvision" in out and "compression-harness[vision]" in out
    assert "error: 1 problem" in out, out  # torchvision alone: the rest of the suite is valid


@pytest.mark.e2e
def test_bench_on_a_vit_image_folder_matches_the_direct_accuracy(zoo, zoo_bench) -> None:
    _, proc, all_rows = zoo_bench
    rows = {method: row for (model, _, method), row in all_rows.items() if model == "vit"}
    assert set(rows) == {"baseline", "int8", "magnitude", "structured"}, proc.stderr[-3000:]
    assert all(r["status"] == "ok" for r in rows.values()), {m: r.get("error") for m, r in rows.items()}
    expected = direct(zoo)
    base = rows["baseline"]["metrics"]
    assert base["accuracy"] == sum(y == p for y, p in expected.values()) / len(expected)
    assert base["eval_samples"] == 48 and base["label_mapping"].startswith("by name")
    assert rows["int8"]["metrics"]["size_mb"] < base["size_mb"]
    assert rows["magnitude"]["metrics"]["sparsity"] > 0.1
    assert rows["structured"]["metrics"]["params"] < base["params"]
    for row in rows.values():
        assert abs(row["metrics"]["accuracy"] - base["accuracy"]) < 0.3
