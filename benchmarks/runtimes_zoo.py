"""The runtimes suite on a BERT-style text classifier and a torchvision ResNet-18: torch,
ONNX Runtime and OpenVINO, each with its baseline, torch's dynamic int8, ONNX Runtime's
int8 dynamic and static (QDQ, calibrated) and OpenVINO's int8 (NNCF, transformer preset
for BERT) and int8 weights. Every row ends ``ok`` or ``skipped`` with its reason.

The models are the test zoo's (tests/zoo.py), built offline into ``--out``: the text
classifier is a tiny BERT trained on the zoo's sentiment sentences; the ResNet-18 is
torchvision's architecture with random weights and a 2-class head fitted on the zoo's
shapes images (no ImageNet weights offline), at 32×32 pixels. torchvision must match its
torch exactly, so the vision part runs in ``.venv-vision`` (make test builds it):

    .venv/bin/python benchmarks/runtimes_zoo.py --part text
    .venv-vision/bin/python benchmarks/runtimes_zoo.py --part vision

Prints the leaderboard; results in ``--out``/results (default results/runtimes-zoo).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the zoo and the vision test's helpers

MEASURE = """
[measure]
runtime = ["torch", "onnxruntime", "openvino"]
batch_sizes = [1, 8]
warmup_s = 0.05
min_time_s = 0.2
min_iterations = 10
max_time_s = 0.5
energy = false
threads = 1
"""

METHODS = """
[[methods]]
name = "int8"
use = "quant.int8-dynamic"

[[methods]]
name = "ort-int8-dynamic"
use = "ort.int8-dynamic"

[[methods]]
name = "ort-int8-static"
use = "ort.int8-static"

[[methods]]
name = "ov-int8"
use = "ov.int8"
{ov_params}

[[methods]]
name = "ov-int8-weights"
use = "ov.int8-weights"
"""


def text_suite(out: Path) -> str:
    from zoo import Zoo

    zoo = Zoo(out / "zoo")
    data = zoo.path("sentiment")
    return textwrap.dedent(f"""
        [suite]
        name = "runtimes-text"
        timeout_s = 600
        {MEASURE}
        [[models]]
        name = "bert-sst"
        source = "hf"
        ref = "{zoo.path('bert-sst')}"

        [[tasks]]
        name = "sentiment"
        kind = "text-classification"
        data_files = {{ train = "{data / 'train.csv'}", test = "{data / 'test.csv'}" }}
        """) + METHODS.format(ov_params='params = { model_type = "transformer" }')


def vision_suite(out: Path) -> str:
    import torch
    from test_vision_sources import IMAGENET_MEAN, IMAGENET_STD, fit_head
    from torchvision import transforms as T
    from torchvision.models import resnet18
    from zoo import Zoo

    shapes = Zoo(out / "zoo").path("shapes")
    torch.manual_seed(0)
    model = resnet18(num_classes=2).eval()
    transform = T.Compose([T.Resize(32), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    fit_head(model, model.fc, transform, sorted((shapes / "train").glob("*/*.png")))
    torch.save(model.state_dict(), out / "resnet18-shapes.pth")
    return textwrap.dedent(f"""
        [suite]
        name = "runtimes-vision"
        timeout_s = 600
        {MEASURE}
        [[models]]
        name = "resnet18"
        source = "torchvision"
        ref = "resnet18"
        options = {{ weights = "none", weights_file = "{out / 'resnet18-shapes.pth'}", num_classes = 2 }}

        [[tasks]]
        name = "shapes"
        kind = "image-classification"
        data_dir = "{shapes}"
        resize = 32
        mean = {list(IMAGENET_MEAN)}
        std = {list(IMAGENET_STD)}
        """) + METHODS.format(ov_params="")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["text", "vision"], required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "runtimes-zoo")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    suite = args.out / f"{args.part}.toml"
    suite.write_text((text_suite if args.part == "text" else vision_suite)(args.out.resolve()))
    bench = [sys.executable, "-m", "harness.cli", "bench", str(suite), "--results", str(args.out / "results")]
    return subprocess.run(bench).returncode


if __name__ == "__main__":
    sys.exit(main())
