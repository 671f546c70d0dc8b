"""Structured channel pruning (torch-pruning): whole channels/neurons go and the layers
really shrink."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.api import Method
from harness.toolkit import count_params, library, no_layers
from harness_plugins.methods.pruning.channels import shrink_channels
from harness_plugins.methods.pruning.common import check_amount, prunable


@dataclass(frozen=True)
class StructuredParams:
    amount: float = 0.5
    importance: Literal["l2", "l1"] = "l2"

    def __post_init__(self) -> None:
        check_amount(self.amount, "the share of channels/neurons removed")


class Structured(Method):
    name = "prune.structured"
    family = "pruning"
    description = "remove whole channels/neurons (smallest norm) following layer dependencies: layers really shrink"
    Params = StructuredParams

    def check(self, model, ctx):
        return None if prunable(model) else no_layers(model, "Linear or Conv layers")

    def apply(self, model, params, ctx):
        before = count_params(model)
        shrunk, scope = shrink_channels(model, ctx.task.example_input(1), params.amount, params.importance)
        after = count_params(model)
        return model, {"layers": list(shrunk), "layers_touched": len(shrunk), "shapes": shrunk,
                       "params_before": before, "params_after": after, "params_removed": 1 - after / before, "scope": scope,
                       "kernels": "real (smaller dense layers)", "library": library("torch-pruning"),
                       "calibration_samples": 0, "training_samples": 0}
