"""Time and steps to a target accuracy, for training-time methods that compare two ways
of training the same model (curriculum vs random order, bf16 autocast vs float32).

Both arms start from the same weights and train with :func:`harness.toolkit.fit`; the
task is evaluated every ``eval_every`` steps outside the clock, so the seconds are
training time only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from harness.toolkit import fresh_copy


def check_target_params(params: Any) -> None:
    """Shared range checks of the training-time methods' params."""
    if not 0.0 < params.target <= 1.0:
        raise ValueError(f"target = {params.target} must be an accuracy in (0, 1]")
    if params.epochs < 1 or params.batch_size < 1 or params.eval_every < 1:
        raise ValueError("epochs, batch_size and eval_every must be >= 1")
    if not 0 < params.lr < 1:
        raise ValueError(f"lr = {params.lr} must be in (0, 1)")


@dataclass
class TargetTracker:
    """``on_step`` for fit: evaluates every ``eval_every`` steps and keeps the first hit."""

    ctx: Any
    model: Any
    target: float
    eval_every: int
    steps_to_target: int | None = None
    seconds_to_target: float | None = None
    curve: list[tuple[int, float]] = field(default_factory=list)  # (step, accuracy)

    def __call__(self, steps: int, seconds: float) -> bool:
        if steps % self.eval_every == 0:
            accuracy = self.ctx.evaluate(self.model).get("accuracy")
            self.curve.append((steps, accuracy))
            if self.steps_to_target is None and accuracy is not None and accuracy >= self.target:
                self.steps_to_target, self.seconds_to_target = steps, seconds
        return False

    def to_dict(self) -> dict[str, Any]:
        # A target never reached has no time: the figures are absent, not 0.
        return {"reached_target": self.steps_to_target is not None, "steps_to_target": self.steps_to_target,
                "seconds_to_target": self.seconds_to_target, "accuracy_curve": self.curve}


def starting_point(model: Any, init: str, seed: int) -> Any:
    """The weights both arms start from: fresh (``scratch``) or the given model's."""
    return fresh_copy(model, seed) if init == "scratch" else copy.deepcopy(model)


def train_arm(model: Any, ctx: Any, params: Any, **fit_kwargs: Any) -> dict[str, Any]:
    """Train ``model`` in place for ``params.epochs``; return fit's report and the
    time/steps to ``params.target``."""
    import torch

    from harness.toolkit import fit

    tracker = TargetTracker(ctx, model, params.target, params.eval_every)
    torch.manual_seed(ctx.seed)
    report = fit(model, ctx.task, epochs=params.epochs, lr=params.lr, seed=ctx.seed,
                 batch_size=params.batch_size, on_step=tracker, **fit_kwargs)
    accuracy = ctx.evaluate(model).get("accuracy")
    return {**tracker.to_dict(), "final_accuracy": accuracy, **report.to_dict(),
            "samples_per_s": report.samples / report.seconds if report.seconds else None}
