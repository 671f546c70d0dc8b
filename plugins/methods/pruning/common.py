"""Helpers the pruning methods share (and sparsity and distillation borrow): which layers
pruning touches, the info of a method that zeroes weights, and channel shrinking. No
torch at module top."""

from __future__ import annotations

from typing import Any

from harness.toolkit import count_params, zero_fraction
from harness_plugins.methods.layers import output_layers, target_layers


def prunable(model: Any, include_head: bool = False) -> list[tuple[str, Any]]:
    """(name, module) of every Linear and Conv layer (no ``lm_head`` unless asked)."""
    return target_layers(model, conv=True, include_head=include_head)


def check_amount(amount: float, what: str = "the share of weights set to zero") -> None:
    if not 0.0 < amount < 1.0:
        raise ValueError(f"amount = {amount} must be between 0 and 1 ({what})")


def sparsity_info(layers: list[tuple[str, Any]], before: int, model: Any, lib: str, **extra: Any) -> dict[str, Any]:
    """The ``info`` of a method that zeroes weights in dense tensors."""
    return {"layers": [name for name, _ in layers], "layers_touched": len(layers),
            "sparsity_pruned_tensors": zero_fraction([m.weight for _, m in layers]),
            "params_before": before, "params_after": count_params(model),
            "kernels": "simulated (zeros in dense tensors: no speedup without sparse kernels)",
            "library": lib, "calibration_samples": 0, "training_samples": 0, **extra}


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
