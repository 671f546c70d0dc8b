"""A small, deterministic supervised training loop for methods that train.

Methods call :func:`fit` with the run's task; it uses the task's own batches and loss,
so the same helper serves classification and other task kinds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FitReport:
    epochs: int
    steps: int = 0
    samples: int = 0
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)  # mean loss per epoch

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "steps": self.steps, "samples": self.samples,
                "seconds": self.seconds, "epoch_losses": self.losses}


def zero_masks(model: Any) -> dict[str, Any]:
    """Masks of the exact zeros in every weight matrix, to keep pruned weights at zero."""
    return {name: (p != 0) for name, p in model.named_parameters() if p.dim() >= 2 and bool((p == 0).any())}


def fit(model: Any, task: Any, *, epochs: int, lr: float, seed: int, batch_size: int = 64,
        loss: Callable[[Any, Any, Any], Any] | None = None, keep_zeros: bool = False,
        optimizer: str = "adam") -> FitReport:
    """Train ``model`` in place on ``task``'s training split.

    :param loss: ``loss(output, target, inputs)``; defaults to the task's loss.
    :param keep_zeros: re-zero weights that were zero at the start after every step,
        so fine-tuning a pruned model keeps its sparsity.
    """
    import torch

    torch.manual_seed(seed)
    masks = zero_masks(model) if keep_zeros else {}
    params = dict(model.named_parameters())
    opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)(model.parameters(), lr=lr)
    report = FitReport(epochs=epochs)
    model.train()
    t0 = time.perf_counter()
    for epoch in range(epochs):
        total, count = 0.0, 0
        for inputs, target in task.train_batches(batch_size, seed + epoch):
            opt.zero_grad(set_to_none=True)
            output = model(inputs)
            value = loss(output, target, inputs) if loss else task.loss(output, target)
            value.backward()
            opt.step()
            if masks:
                with torch.no_grad():
                    for name, mask in masks.items():
                        params[name].mul_(mask)
            total += float(value) * len(target)
            count += len(target)
            report.steps += 1
        report.samples += count
        report.losses.append(total / max(count, 1))
    report.seconds = time.perf_counter() - t0
    model.eval()
    return report
