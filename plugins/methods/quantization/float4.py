"""FP4: torchao's 4-bit float (e2m1) weights and activations in blocks that share a
scale. ``nvfp4``: a float8 e4m3 scale per 16 values and a float32 scale per tensor;
``mxfp4`` (OCP microscaling): a power-of-two e8m0 scale per 32 values. The block-scaled
matmuls are core torch's (``torch._scaled_mm`` / ``F.scaled_mm``) and need a Blackwell
GPU (compute capability >= 10.0); elsewhere the method is skipped. torchao 0.18 has them
under ``torchao.prototype.mx_formats``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from harness.api import Method, Skip
from harness.toolkit import count_params, installed_version, layer_filter, library
from harness_plugins.methods.quantization.common import (
    TORCHAO,
    aligned_layers,
    needs_capability,
    quant_info,
    torchao_extensions,
)

# format -> (block size along the input dim, bits per weight with the block scales, kernel)
FORMATS = {
    "nvfp4": (16, 4 + 8 / 16, "torch._scaled_mm NVFP4 block-scaled GEMM"),
    "mxfp4": (32, 4 + 8 / 32, "torch F.scaled_mm MXFP4 block-scaled GEMM"),
}
MIN_OUT = 64  # torchao's own NVFP4 filter leaves layers of <= 64 outputs alone: cuBLAS rejects them


@dataclass(frozen=True)
class FP4Params:
    format: Literal["nvfp4", "mxfp4"] = "nvfp4"
    include_head: bool = False

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format = {self.format!r} must be one of {', '.join(FORMATS)}")


def torchao_fp4_missing() -> str | None:
    """Why this torchao cannot quantize to FP4, or None when it offers both configs."""
    version = installed_version("torchao")
    if version is None:
        return "FP4 needs torchao, which is not installed"
    try:
        from torchao.prototype.mx_formats import (  # noqa: F401
            MXDynamicActivationMXWeightConfig,
            NVFP4DynamicActivationNVFP4WeightConfig,
        )
    except ImportError as exc:
        return f"torchao {version} has no FP4 inference configs ({exc})"
    return None


def fp4_config(fmt: str) -> Any:
    import importlib.util

    import torch
    from torchao.prototype.mx_formats import (
        MXDynamicActivationMXWeightConfig,
        NVFP4DynamicActivationNVFP4WeightConfig,
    )

    if fmt == "mxfp4":
        return MXDynamicActivationMXWeightConfig(activation_dtype=torch.float4_e2m1fn_x2,
                                                 weight_dtype=torch.float4_e2m1fn_x2)
    # the fused activation-quantizing Triton kernel is MSLK's; without it torchao quantizes in torch ops
    return NVFP4DynamicActivationNVFP4WeightConfig(use_triton_kernel=importlib.util.find_spec("mslk") is not None)


class FP4(Method):
    name = "quant.fp4"
    preload = TORCHAO
    family = "quantization"
    description = "4-bit float weights and activations in scaled blocks, NVFP4 or MXFP4 (Linear layers); compute capability >= 10.0"
    Params = FP4Params

    def check(self, model, ctx):
        reason = needs_capability(ctx, (10, 0), "FP4 block-scaled matmuls (NVFP4/MXFP4)") or torchao_fp4_missing()
        if reason is None and not aligned_layers(model, 16, min_out=MIN_OUT)[0]:
            reason = f"no Linear layer has sizes that are multiples of 16 and more than {MIN_OUT} outputs (FP4 kernels need it)"
        return reason

    def apply(self, model, params, ctx):
        import torch
        from torchao.quantization import quantize_

        from harness_plugins.methods.quantization.half_precision import half_model

        block, bits, kernel = FORMATS[params.format]
        before = count_params(model)
        layers, left = aligned_layers(model, block, params.include_head, min_out=MIN_OUT)
        if not layers:
            raise Skip(f"no Linear layer fits {params.format}: {left}")
        wrapped, how = half_model(model, torch.bfloat16, ctx)  # torchao's FP4 takes bfloat16 weights only
        quantize_(wrapped.model, fp4_config(params.format), filter_fn=layer_filter(layers))
        return wrapped, quant_info(layers, bits, f"real ({kernel})", f"{library('torchao')} (prototype mx_formats)",
                                   before, wrapped, format=params.format, granularity=f"blocks of {block}",
                                   layers_left=left, activations=f"{params.format}, scaled per block on the fly",
                                   torchao_extensions=torchao_extensions(), **how)
