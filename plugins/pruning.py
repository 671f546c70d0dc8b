"""Pruning: unstructured magnitude pruning (torch.nn.utils.prune, made permanent),
structured channel pruning (torch-pruning: the layers really shrink), and Wanda."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from harness import hookimpl
from harness.api import Method
from harness_plugins.layers import count_params, library, output_layers, target_layers


def prunable(model: Any, include_head: bool = False) -> list[tuple[str, Any]]:
    """(name, module) of every Linear and Conv layer (no ``lm_head`` unless asked)."""
    return target_layers(model, conv=True, include_head=include_head)


def check_amount(amount: float, what: str = "the share of weights set to zero") -> None:
    if not 0.0 < amount < 1.0:
        raise ValueError(f"amount = {amount} must be between 0 and 1 ({what})")


def sparsity_info(layers: list[tuple[str, Any]], before: int, model: Any, lib: str, **extra: Any) -> dict[str, Any]:
    """The ``info`` of a method that zeroes weights in dense tensors."""
    from harness.measure.model_stats import zero_fraction

    return {"layers": [name for name, _ in layers], "layers_touched": len(layers),
            "sparsity_pruned_tensors": zero_fraction([m.weight for _, m in layers]),
            "params_before": before, "params_after": count_params(model),
            "kernels": "simulated (zeros in dense tensors: no speedup without sparse kernels)",
            "library": lib, "calibration_samples": 0, "training_samples": 0, **extra}


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
        return None if prunable(model) else "the model has no Linear or Conv layers"

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
        return None if prunable(model) else "the model has no Linear or Conv layers"

    def apply(self, model, params, ctx):
        before = count_params(model)
        shrunk = shrink_channels(model, ctx.task.example_input(1), params.amount, params.importance)
        after = count_params(model)
        return model, {"layers": list(shrunk), "layers_touched": len(shrunk), "shapes": shrunk,
                       "params_before": before, "params_after": after, "params_removed": 1 - after / before,
                       "kernels": "real (smaller dense layers)", "library": library("torch-pruning"),
                       "calibration_samples": 0, "training_samples": 0}


def shrink_channels(model: Any, example: Any, amount: float, importance: str = "l2") -> dict[str, str]:
    """Remove ``amount`` of the channels/neurons of every layer in place, following the
    dependencies between layers (torch-pruning); return the changed shapes by layer."""
    import torch_pruning as tp

    shapes_before = {name: tuple(m.weight.shape) for name, m in prunable(model, include_head=True)}
    scorer = tp.importance.GroupMagnitudeImportance(p=2 if importance == "l2" else 1)
    # The model's outputs (classes, vocabulary) keep their size: its output layers may
    # lose input channels but never outputs.
    pruner = tp.pruner.BasePruner(model, example, importance=scorer, pruning_ratio=amount,
                                  ignored_layers=output_layers(model, example))
    pruner.step()
    return {name: f"{list(shapes_before[name])} -> {list(m.weight.shape)}"
            for name, m in prunable(model, include_head=True) if tuple(m.weight.shape) != shapes_before.get(name)}


@hookimpl
def harness_register_methods(register):
    from harness_plugins.pruning_wanda import Wanda

    for cls in (Magnitude, Structured, Wanda):
        register(cls)
