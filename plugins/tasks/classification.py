"""The ``classification`` task: top-1 accuracy with its standard error."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from harness import hookimpl
from harness.api import PreparedTask, TaskKind


@dataclass(frozen=True)
class ClassificationConfig:
    dataset: str
    split: str = "test"
    batch_size: int = 256

    def __post_init__(self) -> None:
        from harness_plugins.data.digits import DATASETS, SPLITS

        if self.dataset not in DATASETS:
            from harness.toolkit import nearest

            raise ValueError(f"dataset '{self.dataset}' is not bundled{nearest(self.dataset, DATASETS)}")
        if self.split not in SPLITS:
            raise ValueError(f"split '{self.split}' must be one of {', '.join(SPLITS)}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")


class ClassificationData(PreparedTask):
    def __init__(self, config: ClassificationConfig, device: str):
        from harness_plugins.data import digits as datasets

        self.config, self.device = config, device
        self.x, self.y = datasets.load(config.dataset, config.split)
        self.x_train, self.y_train = datasets.load(config.dataset, "train")

    def evaluate(self, model: Any) -> dict[str, float]:
        import torch

        correct = 0
        with torch.inference_mode():
            for i in range(0, len(self.y), self.config.batch_size):
                x = self.x[i:i + self.config.batch_size].to(self.device)
                y = self.y[i:i + self.config.batch_size].to(self.device)
                correct += int((model(x).argmax(dim=1) == y).sum())
        n = len(self.y)
        p = correct / n
        return {"accuracy": p, "accuracy_stderr": math.sqrt(p * (1 - p) / n), "eval_samples": n}

    def example_input(self, batch_size: int) -> Any:
        import torch

        reps = -(-batch_size // len(self.x))
        return torch.cat([self.x] * reps)[:batch_size].to(self.device).contiguous()

    def calibration_batches(self, n_samples: int, batch_size: int = 64) -> list[Any]:
        x = self.x_train[:n_samples].to(self.device)
        return [x[i:i + batch_size] for i in range(0, len(x), batch_size)]

    def train_batches(self, batch_size: int, seed: int):
        import torch

        order = torch.randperm(len(self.y_train), generator=torch.Generator().manual_seed(seed))
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            yield self.x_train[idx].to(self.device), self.y_train[idx].to(self.device)

    def loss(self, output: Any, target: Any) -> Any:
        import torch.nn.functional as F

        return F.cross_entropy(output, target)


class Classification(TaskKind):
    name = "classification"
    description = "top-1 accuracy (± standard error) on a bundled data set's held-out split"
    Config = ClassificationConfig

    def prepare(self, config: ClassificationConfig, ctx: Any) -> ClassificationData:
        return ClassificationData(config, ctx.device)


@hookimpl
def harness_register_tasks(register):
    register(Classification)
