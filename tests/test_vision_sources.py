"""The ``torchvision`` and ``timm`` sources with the real libraries: weights, heads and
transforms of a torchvision ResNet-18 and a timm ResNet-18, and ``harness bench`` on the
zoo's ImageFolder of shapes whose accuracy, image by image, is what the libraries give
directly on the same files.

Marked ``vision``: they run in ``.venv-vision`` (``make test``; ``make test-vision`` alone),
whose torchvision is built for its torch; elsewhere they are deselected (conftest.py). No
weights can be downloaded: random initialisations, and heads fitted here.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from harness.api import RunContext
from harness_plugins.sources import vision
from harness_plugins.tasks.image_classification import (
    ImageClassification,
    ImageClassificationConfig,
)

from conftest import ROOT, cli, write_suite

pytestmark = pytest.mark.vision

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def ctx(tmp_path: Path) -> RunContext:
    return RunContext("cpu", 0, tmp_path, tmp_path)


def prepared(config: ImageClassificationConfig, model: Any, tmp_path: Path) -> Any:
    task = ImageClassification().prepare(config, ctx(tmp_path))
    task.before_compression(model)
    return task


def test_torchvision_models_weights_and_transforms(zoo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    from torchvision.models import get_model

    source, ref = vision.TorchvisionSource(), "resnet18"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty cache: nothing is downloaded
    with pytest.raises(RuntimeError, match="ResNet18_Weights.IMAGENET1K_V1 are not in torch hub's cache"):
        source.load(ref, vision.TorchvisionOptions(), ctx(tmp_path))
    cached = vision.cached_weights(vision.torchvision_weights(ref, "DEFAULT"))
    assert cached.name == "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    torch.save(get_model(ref).state_dict(), cached)  # stands in for what prepare would fetch
    model = source.load(ref, vision.TorchvisionOptions(), ctx(tmp_path))
    assert model.harness_class_names[0] == "tench" and model.harness_load_info["weights"].endswith("IMAGENET1K_V1")
    assert "harness_transforms" not in dict(model.named_modules())
    task = prepared(ImageClassificationConfig(data_dir=str(zoo.path("shapes")), max_samples=4), model, tmp_path)
    assert task.info["image_shape"] == [3, 224, 224] and task.evaluate(model)["eval_samples"] == 4
    from PIL import Image  # the task's pixels are exactly the weights' transforms on the same files

    transforms = vision.torchvision_weights(ref, "DEFAULT").transforms()
    files = sorted((zoo.path("shapes") / "test").glob("*/*.png"))[:4]
    assert task.x.equal(torch.stack([transforms(Image.open(f).convert("RGB")) for f in files]))
    headed = source.load(ref, vision.TorchvisionOptions(num_classes=2), ctx(tmp_path))
    assert headed.harness_load_info["new_weights"] == ["fc.bias", "fc.weight"] and headed.harness_class_names is None
    torch.save(headed.state_dict(), tmp_path / "two.pth")
    again = source.load(ref, vision.TorchvisionOptions(weights_file="two.pth", num_classes=2), ctx(tmp_path))
    assert all(a.equal(b) for a, b in zip(again.state_dict().values(), headed.state_dict().values()))
    with pytest.raises(ValueError, match="weights_file 'two.pth' does not fit torchvision resnet18"):
        source.load(ref, vision.TorchvisionOptions(weights_file="two.pth"), ctx(tmp_path))
    assert "did you mean 'resnet18'" in source.check_ref("resnet81", vision.TorchvisionOptions(), tmp_path)
    assert "not one of resnet18's weights" in source.check_ref(ref, vision.TorchvisionOptions(weights="NOPE"), tmp_path)


def test_timm_models_weights_and_transforms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    from PIL import Image

    source = vision.TimmSource()
    options = vision.TimmOptions(pretrained=False, num_classes=2)
    assert source.check_ref("resnet18", options, tmp_path) is None
    assert "is not a timm model" in source.check_ref("resnet81x", options, tmp_path)
    model = source.load("resnet18", options, ctx(tmp_path))
    x = model.harness_transforms(Image.new("RGB", (300, 260)))
    assert x.shape == (3, 224, 224) and model(x[None]).shape == (1, 2)
    torch.save(model.state_dict(), tmp_path / "two.pth")
    again = source.load("resnet18", vision.TimmOptions(weights_file="two.pth", num_classes=2), ctx(tmp_path))
    assert all(a.equal(b) for a, b in zip(again.state_dict().values(), model.state_dict().values()))
    with pytest.raises(ValueError, match="weights_file 'two.pth' does not fit timm resnet18"):
        source.load("resnet18", vision.TimmOptions(weights_file="two.pth"), ctx(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(RuntimeError, match="timm weights for 'resnet18.a1_in1k' are not in the local Hugging Face cache"):
        source.load("resnet18.a1_in1k", vision.TimmOptions(), ctx(tmp_path))


def test_the_resnet50_imagenette_suite_validates(tmp_path: Path) -> None:
    """Next to an (empty-image) Imagenette tree, the example suite is valid where torchvision
    imports (test_image_classification.py: the one sentence where it does not)."""
    from PIL import Image

    suite = tmp_path / "resnet50-imagenette.toml"
    shutil.copy(ROOT / "suites" / "resnet50-imagenette.toml", suite)
    for split in ("train", "val"):
        (tmp_path / "imagenette2-320" / split / "n01440764").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "imagenette2-320" / split / "n01440764" / "a.JPEG")
    proc = cli("validate", str(suite))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def label(file: Path) -> int:
    return ["horizontal", "vertical"].index(file.parent.name)


def pixels(transform: Any, files: list[Path]) -> Any:
    import torch
    from PIL import Image

    return torch.stack([transform(Image.open(f).convert("RGB")) for f in files])


def correct(model: Any, transform: Any, files: list[Path]) -> list[int]:
    """1 where the model's top class is the image's folder (horizontal = 0, vertical = 1):
    torchvision/timm and PIL alone."""
    import torch

    with torch.inference_mode():
        top = model(pixels(transform, files)).argmax(-1).tolist()
    return [int(p == label(f)) for p, f in zip(top, files)]


def fit_head(model: Any, head: Any, transform: Any, files: list[Path]) -> None:
    """Random weights tell the shapes apart only by chance: fit the 2-class ``head`` (a
    Linear) by logistic regression on the random features of ``files``."""
    import torch
    from sklearn.linear_model import LogisticRegression

    features: list[Any] = []
    hook = head.register_forward_hook(lambda module, args, out: features.append(args[0]))
    with torch.inference_mode():
        model(pixels(transform, files))
    hook.remove()
    fit = LogisticRegression(max_iter=2000).fit(features[0].numpy(), [label(f) for f in files])
    w, b = torch.tensor(fit.coef_[0], dtype=torch.float32), float(fit.intercept_[0])
    with torch.no_grad():  # logit(vertical) - logit(horizontal) = w.x + b
        head.weight.copy_(torch.stack([-w / 2, w / 2]))
        head.bias.copy_(torch.tensor([-b / 2, b / 2]))


@pytest.mark.e2e
def test_bench_accuracy_of_torchvision_and_timm_models_equals_the_libraries(zoo, tmp_path: Path) -> None:
    """A torchvision ResNet-18 (explicit resize and ImageNet mean/std) and timm's test_resnet
    (its own transforms), each with a head fitted on the training images and saved as a
    weights_file: the bench's per-image outcomes are those of the model run directly."""
    import timm
    import torch
    from timm.data import create_transform, resolve_data_config
    from torchvision import transforms as T
    from torchvision.models import resnet18

    shapes = zoo.path("shapes")
    train, test = (sorted((shapes / split).glob("*/*.png")) for split in ("train", "test"))
    torch.manual_seed(0)
    tv = resnet18(num_classes=2).eval()
    tv_transform = T.Compose([T.Resize(32), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    fit_head(tv, tv.fc, tv_transform, train)
    tm = timm.create_model("test_resnet", pretrained=False, num_classes=2).eval()
    tm_transform = create_transform(**resolve_data_config({}, model=tm))
    fit_head(tm, tm.get_classifier(), tm_transform, train)
    torch.save(tv.state_dict(), tmp_path / "tv.pth")
    torch.save(tm.state_dict(), tmp_path / "timm.pth")
    expected = {"tv": correct(tv, tv_transform, test), "timm": correct(tm, tm_transform, test)}

    suite = write_suite(tmp_path, textwrap.dedent(f"""
        [suite]
        name = "vision"

        [[models]]
        name = "tv"
        source = "torchvision"
        ref = "resnet18"
        options = {{ weights = "none", weights_file = "tv.pth", num_classes = 2 }}

        [[models]]
        name = "timm"
        source = "timm"
        ref = "test_resnet"
        options = {{ pretrained = false, weights_file = "timm.pth", num_classes = 2 }}

        [[tasks]]
        name = "shapes-explicit"
        kind = "image-classification"
        models = ["tv"]
        data_dir = "{shapes}"
        resize = 32
        mean = {list(IMAGENET_MEAN)}
        std = {list(IMAGENET_STD)}

        [[tasks]]
        name = "shapes"
        kind = "image-classification"
        models = ["timm"]
        data_dir = "{shapes}"

        [measure]
        batch_sizes = [1]
        warmup_s = 0
        min_time_s = 0.01
        min_iterations = 3
        max_time_s = 0.05
        energy = false
        sustained_s = 0
        """))
    results = tmp_path / "results"
    proc = cli("bench", str(suite), "--results", str(results), "--jobs", "2")
    rows = {(r["model"], r["method"]): r for r in map(json.loads, (results / "vision" / "results.jsonl").open())}
    assert set(rows) == {("tv", "baseline"), ("timm", "baseline")}, proc.stdout + proc.stderr
    assert all(r["status"] == "ok" for r in rows.values()), {k: r.get("error") for k, r in rows.items()}
    for name, outcomes in expected.items():
        base = rows[name, "baseline"]
        samples = json.loads((results / "vision" / "samples" / f"{base['run_id']}.json").read_text())
        assert samples["values"] == outcomes, name
        assert base["metrics"]["accuracy"] == sum(outcomes) / len(test) >= 0.8, name  # the fitted head works
        assert base["metrics"]["eval_samples"] == 48 and base["metrics"]["label_mapping"].startswith("the data set's")
    assert rows["tv", "baseline"]["metrics"]["preprocessing"] == "explicit resize/crop/mean/std"
    assert rows["timm", "baseline"]["metrics"]["preprocessing"].startswith("the model's")
