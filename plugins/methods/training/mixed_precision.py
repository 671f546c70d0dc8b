"""Mixed-precision training: bf16 (or fp16) autocast vs float32 from the same start, with
the speed and steps to a target accuracy of each (:mod:`.time_to_target`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.api import Method
from harness_plugins.methods.training.time_to_target import (
    check_target_params,
    starting_point,
    train_arm,
)


@dataclass(frozen=True)
class MixedPrecisionParams:
    dtype: Literal["bfloat16", "float16"] = "bfloat16"
    target: float = 0.9  # accuracy to reach
    epochs: int = 5
    lr: float = 1e-3
    batch_size: int = 64
    eval_every: int = 5  # steps between evaluations
    init: Literal["scratch", "model"] = "scratch"  # train from fresh weights or from the given model

    def __post_init__(self) -> None:
        check_target_params(self)


class MixedPrecision(Method):
    name = "train.mixed-precision"
    family = "training"
    needs = ("training",)
    description = "train under bf16 autocast, compared with float32 from the same start: speed and steps to a target"
    Params = MixedPrecisionParams

    def check(self, model, ctx):
        import torch

        if str(ctx.device).startswith("cuda") and not torch.cuda.is_bf16_supported():
            return "this GPU has no bfloat16 support"
        return None

    def apply(self, model, params, ctx):
        import torch

        dtype = getattr(torch, params.dtype)
        start = starting_point(model, params.init, ctx.seed)
        fp32 = starting_point(start, "model", ctx.seed)
        mixed = train_arm(start, ctx, params, autocast=dtype)
        full = train_arm(fp32, ctx, params)
        speedup = full["seconds"] / mixed["seconds"] if mixed["seconds"] else None
        return start, {
            "autocast_dtype": params.dtype, "target": params.target, "mixed": mixed, "float32": full,
            "steps_to_target": mixed["steps_to_target"], "seconds_to_target": mixed["seconds_to_target"],
            "float32_steps_to_target": full["steps_to_target"], "float32_seconds_to_target": full["seconds_to_target"],
            "training_speedup_vs_float32": speedup,
            "training_samples": mixed["samples"], "calibration_samples": 0,
            "kernels": "real (torch.autocast)", "library": f"torch {torch.__version__}",
        }
