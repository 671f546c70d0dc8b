"""Curriculum learning: train on the training split ordered from easy to hard, where
"easy" is a low loss of the teacher (the uncompressed model) on that sample, with a
pacing schedule (Bengio et al. 2009; Hacohen & Weinshall 2019): epoch e trains on the
easiest share ``start_fraction`` growing linearly to all samples at ``pace_epochs``,
shuffled within that share. The same model trained in random order, same start and
seed, is the comparison: steps and seconds to the target accuracy for both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from harness.api import Method
from harness_plugins.methods.training.time_to_target import (
    check_target_params,
    starting_point,
    train_arm,
)


@dataclass(frozen=True)
class CurriculumParams:
    target: float = 0.9  # accuracy to reach
    epochs: int = 8
    lr: float = 1e-3
    batch_size: int = 64
    start_fraction: float = 0.3  # share of the easiest samples in the first epoch
    pace_epochs: int = 3  # epochs until the whole training split is in use
    eval_every: int = 5  # steps between evaluations
    init: Literal["scratch", "model"] = "scratch"  # train from fresh weights or from the given model

    def __post_init__(self) -> None:
        check_target_params(self)
        if not 0.0 < self.start_fraction <= 1.0:
            raise ValueError(f"start_fraction = {self.start_fraction} must be in (0, 1]")
        if self.pace_epochs < 1:
            raise ValueError("pace_epochs must be >= 1")


def training_set(task: Any, batch_size: int, seed: int) -> tuple[Any, Any]:
    """The whole training split as two tensors (inputs, targets)."""
    import torch

    pairs = list(task.train_batches(batch_size, seed))
    return torch.cat([x for x, _ in pairs]), torch.cat([y for _, y in pairs])


def teacher_losses(teacher: Any, task: Any, x: Any, y: Any, batch_size: int) -> Any:
    """The task loss of the teacher on every sample, one at a time (any task loss)."""
    import torch

    losses = []
    with torch.no_grad():
        for i in range(0, len(y), batch_size):
            out = teacher(x[i:i + batch_size])
            losses += [float(task.loss(out[j:j + 1], y[i + j:i + j + 1])) for j in range(len(out))]
    return torch.tensor(losses)


class Curriculum(Method):
    name = "train.curriculum"
    family = "training"
    needs = ("teacher", "training")
    description = "easy-to-hard training order scored by the teacher's loss, vs random order: steps/time to a target"
    Params = CurriculumParams

    def apply(self, model, params, ctx):
        import math
        import time

        import torch

        t0 = time.perf_counter()
        x, y = training_set(ctx.task, params.batch_size, ctx.seed)
        order = teacher_losses(ctx.teacher.eval(), ctx.task, x, y, params.batch_size).argsort()
        scoring_s = time.perf_counter() - t0

        def paced_batches(epoch: int):
            share = min(1.0, params.start_fraction + (1 - params.start_fraction) * epoch / params.pace_epochs)
            easiest = order[:math.ceil(share * len(order))]
            picked = easiest[torch.randperm(len(easiest), generator=torch.Generator().manual_seed(ctx.seed + epoch))]
            for i in range(0, len(picked), params.batch_size):
                idx = picked[i:i + params.batch_size]
                yield x[idx], y[idx]

        start = starting_point(model, params.init, ctx.seed)
        plain = starting_point(start, "model", ctx.seed)
        curriculum = train_arm(start, ctx, params, batches=paced_batches)
        random_order = train_arm(plain, ctx, params)
        faster = None
        if curriculum["steps_to_target"] is not None and random_order["steps_to_target"] is not None:
            faster = random_order["steps_to_target"] / curriculum["steps_to_target"]
        return start, {
            "target": params.target, "curriculum": curriculum, "random_order": random_order,
            "steps_to_target": curriculum["steps_to_target"], "seconds_to_target": curriculum["seconds_to_target"],
            "random_steps_to_target": random_order["steps_to_target"],
            "random_seconds_to_target": random_order["seconds_to_target"],
            "steps_speedup_vs_random": faster, "scoring_seconds": scoring_s,
            "training_samples": curriculum["samples"], "calibration_samples": 0,
            "kernels": "real", "library": f"torch {torch.__version__}",
        }
