"""Helpers the quantization methods share: which layers a quantizer touches (and which a
low-bit kernel can take), the info every quantizer reports, the GPU a method needs,
torchao's extension status, int4 layer selection and config, and calibration. No torch
at module top."""

from __future__ import annotations

from typing import Any

from harness.toolkit import count_params, target_layers, torchao_status


def linear_layers(model: Any, include_head: bool = False) -> list[str]:
    """Names of the Linear layers a quantizer touches (no ``lm_head`` unless asked)."""
    return [name for name, _ in target_layers(model, include_head=include_head)]


# A quantizer's Method.preload: a warm worker imports torchao once, not each run.
TORCHAO = ("torchao",)


def quant_info(layers: list[str], bits: float, kernels: str, lib: str, before: int, after: Any,
               **extra: Any) -> dict[str, Any]:
    """The ``info`` every quantizer reports."""
    return {"layers": layers, "layers_touched": len(layers), "bits_per_weight": bits,
            "params_before": before, "params_after": count_params(after), "kernels": kernels,
            "library": lib, "calibration_samples": 0, "training_samples": 0, **extra}


def on_cuda(ctx: Any) -> bool:
    return str(ctx.device).startswith("cuda")


def needs_capability(ctx: Any, minimum: tuple[int, int], what: str) -> str | None:
    """Why ``what`` (plural) cannot run on this run's device (no CUDA GPU, or one of a lower
    compute capability than ``minimum``), or None when it can."""
    import torch

    need = f"compute capability >= {minimum[0]}.{minimum[1]}"
    if not on_cuda(ctx) or not torch.cuda.is_available():
        return f"{what} need a CUDA GPU of {need} (this run's device is {ctx.device})"
    device = torch.device(ctx.device)
    have = tuple(torch.cuda.get_device_capability(device))
    if have < minimum:
        return f"{what} need a GPU of {need}; {torch.cuda.get_device_name(device)} has {have[0]}.{have[1]}"
    return None


def torchao_extensions() -> str:
    """One line on torchao's compiled extensions in this process, for a method's ``info``:
    how many loaded, which failed and why, or torchao's reason for skipping them all."""
    status = torchao_status()
    if "extensions" in status:
        return status["extensions"]
    if not status["torch_compatible"]:
        return f"none loaded: {status['reason']}"
    failed = [f"{name} failed ({why})" for name, why in status["extensions_failed"].items()]
    return "; ".join([f"{len(status['extensions_loaded'])} loaded", *failed])


def int4_layers(model: Any, group_size: int, include_head: bool = False) -> list[str]:
    """Linear layers int4 can take: torchao leaves those whose input size is not a
    multiple of ``group_size`` as they are."""
    return [name for name, m in target_layers(model, include_head=include_head) if m.in_features % group_size == 0]


def aligned_layers(model: Any, multiple: int, include_head: bool = False,
                   min_out: int = 0) -> tuple[list[str], dict[str, str]]:
    """Linear layers whose input and output sizes are multiples of ``multiple`` (and whose
    output size exceeds ``min_out``), and why each other one is left as it is."""
    chosen, left = [], {}
    for name, m in target_layers(model, include_head=include_head):
        if m.in_features % multiple or m.out_features % multiple:
            left[name] = f"{m.out_features}x{m.in_features} is not a multiple of {multiple} in both dims"
        elif m.out_features <= min_out:
            left[name] = f"{m.out_features} outputs: the kernel needs more than {min_out}"
        else:
            chosen.append(name)
    return chosen, left


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
