"""Unstructured magnitude pruning (torch.nn.utils.prune, made permanent)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.api import Method
from harness.toolkit import count_params, no_layers
from harness_plugins.methods.pruning.common import check_amount, prunable, sparsity_info


@dataclass(frozen=True)
class MagnitudeParams:
    amount: float = 0.5
    scope: Literal["layer", "global"] = "layer"
    include_head: bool = False

    def __post_init__(self) -> None:
        check_amount(self.amount)


class Magnitude(Method):
    name = "prune.magnitude"
    family = "pruning"
    description = "zero the smallest-magnitude weights of Linear/Conv layers (per layer or global)"
    Params = MagnitudeParams

    def check(self, model, ctx):
        return None if prunable(model) else no_layers(model, "Linear or Conv layers")

    def apply(self, model, params, ctx):
        import torch
        from torch.nn.utils import prune

        before = count_params(model)
        layers = prunable(model, params.include_head)
        targets = [(m, "weight") for _, m in layers]
        if params.scope == "global":
            prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=params.amount)
        else:
            for module, attr in targets:
                prune.l1_unstructured(module, attr, amount=params.amount)
        for module, attr in targets:
            prune.remove(module, attr)  # permanent: the zeros are in .weight, no mask left
        return model, sparsity_info(layers, before, model, f"torch.nn.utils.prune {torch.__version__}",
                                    scope=params.scope)
