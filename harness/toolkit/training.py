"""A small, deterministic supervised training loop for methods that train.

Methods call :func:`fit` with the run's task; it uses the task's own batches and loss,
so the same helper serves classification and other task kinds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FitReport:
    epochs: int
    steps: int = 0
    samples: int = 0
    seconds: float = 0.0  # training only: time spent in ``on_step`` is left out
    losses: list[float] = field(default_factory=list)  # mean loss per epoch
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "steps": self.steps, "samples": self.samples,
                "seconds": self.seconds, "epoch_losses": self.losses}


def zero_masks(model: Any) -> dict[str, Any]:
    """Masks of the exact zeros in every weight matrix, to keep pruned weights at zero."""
    return {name: (p != 0) for name, p in model.named_parameters() if p.dim() >= 2 and bool((p == 0).any())}


def fit(model: Any, task: Any, *, epochs: int, lr: float, seed: int, batch_size: int = 64,
        loss: Callable[[Any, Any, Any], Any] | None = None, keep_zeros: bool = False,
        optimizer: str = "adam", batches: Callable[[int], Iterable[tuple[Any, Any]]] | None = None,
        autocast: Any = None, on_step: Callable[[int, float], bool] | None = None) -> FitReport:
    """Train ``model`` in place on ``task``'s training split.

    :param loss: ``loss(output, target, inputs)``; defaults to the task's loss.
    :param keep_zeros: re-zero weights that were zero at the start after every step,
        so fine-tuning a pruned model keeps its sparsity.
    :param batches: ``batches(epoch)`` gives that epoch's (inputs, target) pairs, for a
        custom order (curriculum); default: ``task.train_batches(batch_size, seed + epoch)``.
    :param autocast: a torch dtype (e.g. ``torch.bfloat16``) to run forward and loss
        under ``torch.autocast`` on the model's device type; None trains in full precision.
    :param on_step: ``on_step(steps, train_seconds)`` after every step, in eval mode and
        outside the clock; returning True stops training.
    """
    import contextlib

    import torch

    torch.manual_seed(seed)
    masks = zero_masks(model) if keep_zeros else {}
    params = dict(model.named_parameters())
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)(trainable, lr=lr)
    device_type = next(iter(params.values())).device.type if params else "cpu"
    report = FitReport(epochs=epochs)
    model.train()
    elapsed = 0.0
    for epoch in range(epochs):
        total, count = 0.0, 0
        epoch_batches = batches(epoch) if batches else task.train_batches(batch_size, seed + epoch)
        t0 = time.perf_counter()
        for inputs, target in epoch_batches:
            opt.zero_grad(set_to_none=True)
            cast = torch.autocast(device_type, dtype=autocast) if autocast is not None else contextlib.nullcontext()
            with cast:
                output = model(inputs)
                value = loss(output, target, inputs) if loss else task.loss(output, target)
            value.backward()
            opt.step()
            if masks:
                with torch.no_grad():
                    for name, mask in masks.items():
                        params[name].mul_(mask)
            total += float(value.detach()) * len(target)
            count += len(target)
            report.steps += 1
            if on_step is not None:
                elapsed += time.perf_counter() - t0
                model.eval()
                stop = on_step(report.steps, elapsed)
                model.train()
                t0 = time.perf_counter()
                if stop:
                    report.stopped_early = True
                    break
        elapsed += time.perf_counter() - t0
        report.samples += count
        report.losses.append(total / max(count, 1))
        if report.stopped_early:
            report.epochs = epoch + 1
            break
    report.seconds = elapsed
    model.eval()
    return report
