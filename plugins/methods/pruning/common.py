"""Helpers the pruning methods share (and sparsity and distillation borrow): which layers
pruning touches and the info of a method that zeroes weights (channel removal is in
:mod:`.channels`). No torch at module top."""

from __future__ import annotations

from typing import Any

from harness.toolkit import count_params, target_layers, zero_fraction


def prunable(model: Any, include_head: bool = False) -> list[tuple[str, Any]]:
    """(name, module) of every Linear and Conv layer (no output head or tied layer unless asked)."""
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
