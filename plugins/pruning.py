"""Pruning: unstructured magnitude pruning with torch.nn.utils.prune, made permanent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from harness import hookimpl
from harness.api import Method


def prunable(model: Any) -> list[tuple[str, Any]]:
    """(name, module) of every Linear and Conv layer."""
    import torch

    kinds = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
    return [(name, m) for name, m in model.named_modules() if isinstance(m, kinds)]


@dataclass(frozen=True)
class MagnitudeParams:
    amount: float = 0.5
    scope: Literal["layer", "global"] = "layer"

    def __post_init__(self) -> None:
        if not 0.0 < self.amount < 1.0:
            raise ValueError(f"amount = {self.amount} must be between 0 and 1 (the share of weights set to zero)")


class Magnitude(Method):
    name = "prune.magnitude"
    family = "pruning"
    description = "zero the smallest-magnitude weights of Linear/Conv layers (per layer or global)"
    Params = MagnitudeParams

    def check(self, model, ctx):
        return None if prunable(model) else "the model has no Linear or Conv layers"

    def apply(self, model, params, ctx):
        import torch
        from torch.nn.utils import prune

        from harness.measure.model_stats import zero_fraction

        layers = prunable(model)
        targets = [(m, "weight") for _, m in layers]
        if params.scope == "global":
            prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=params.amount)
        else:
            for module, attr in targets:
                prune.l1_unstructured(module, attr, amount=params.amount)
        for module, attr in targets:
            prune.remove(module, attr)  # permanent: the zeros are in .weight, no mask left
        realized = zero_fraction([m.weight for _, m in layers])
        return model, {
            "layers": [name for name, _ in layers],
            "scope": params.scope,
            "sparsity_pruned_tensors": realized,
            "kernels": "simulated (zeros in dense tensors: no speedup without sparse kernels)",
            "library": f"torch.nn.utils.prune {torch.__version__}",
        }


@hookimpl
def harness_register_methods(register):
    register(Magnitude)
