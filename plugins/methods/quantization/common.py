"""Helpers the quantization methods share: which layers a quantizer touches, the info
every quantizer reports, int4 layer selection and config, and calibration. No torch at
module top."""

from __future__ import annotations

from typing import Any

from harness.toolkit import count_params
from harness_plugins.methods.layers import target_layers


def linear_layers(model: Any, include_head: bool = False) -> list[str]:
    """Names of the Linear layers a quantizer touches (no ``lm_head`` unless asked)."""
    return [name for name, _ in target_layers(model, include_head=include_head)]


def quant_info(layers: list[str], bits: float, kernels: str, lib: str, before: int, after: Any,
               **extra: Any) -> dict[str, Any]:
    """The ``info`` every quantizer reports."""
    return {"layers": layers, "layers_touched": len(layers), "bits_per_weight": bits,
            "params_before": before, "params_after": count_params(after), "kernels": kernels,
            "library": lib, "calibration_samples": 0, "training_samples": 0, **extra}


def on_cuda(ctx: Any) -> bool:
    return str(ctx.device).startswith("cuda")


def int4_layers(model: Any, group_size: int, include_head: bool = False) -> list[str]:
    """Linear layers int4 can take: torchao leaves those whose input size is not a
    multiple of ``group_size`` as they are."""
    return [name for name, m in target_layers(model, include_head=include_head) if m.in_features % group_size == 0]


def int4_config(group_size: int) -> Any:
    """torchao's int4 weight-only config for CUDA, packed for the tinygemm kernel."""
    from torchao.quantization import Int4WeightOnlyConfig

    return Int4WeightOnlyConfig(group_size=group_size, int4_packing_format="tile_packed_to_4d")


def calibrate(model: Any, ctx: Any, samples: int) -> int:
    """Run ``samples`` training inputs through ``model``; return how many were used."""
    import torch

    used = 0
    with torch.no_grad():
        for batch in ctx.task.calibration_batches(samples):
            model(batch)
            used += len(batch)
    return used
