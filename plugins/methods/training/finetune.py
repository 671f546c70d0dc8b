"""Fine-tuning: train on the task's training split (e.g. to recover accuracy after pruning)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.api import Method


@dataclass(frozen=True)
class FinetuneParams:
    epochs: int = 2
    lr: float = 5e-4
    batch_size: int = 64
    keep_sparsity: bool = True  # weights that are zero stay zero

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if not 0 < self.lr < 1:
            raise ValueError(f"lr = {self.lr} must be in (0, 1)")


class Finetune(Method):
    name = "train.finetune"
    family = "training"
    needs = ("training",)
    description = "train on the task's training split with its loss; keeps pruned zeros at zero"
    Params = FinetuneParams

    def apply(self, model, params, ctx):
        import torch

        from harness.toolkit import fit

        before = ctx.evaluate(model).get("accuracy")
        report = fit(model, ctx.task, epochs=params.epochs, lr=params.lr, seed=ctx.seed,
                     batch_size=params.batch_size, keep_zeros=params.keep_sparsity)
        after = ctx.evaluate(model).get("accuracy")
        return model, {"accuracy_before": before, "accuracy_after": after, **report.to_dict(),
                       "training_samples": report.samples, "calibration_samples": 0, "kernels": "real",
                       "library": f"torch {torch.__version__}"}
