"""Float8: torchao's float8 (e4m3) weights with activations scaled and cast to float8 on
the fly, per row or per tensor. The matmul is core torch's ``torch._scaled_mm`` (cuBLAS
float8), or MSLK's row-wise kernel where ``mslk`` is installed on an sm90+ GPU; it needs
compute capability >= 8.9 (Ada, Hopper, Blackwell), so elsewhere the method is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.api import Method
from harness.toolkit import count_params, layer_filter, library
from harness_plugins.methods.quantization.common import (
    TORCHAO,
    aligned_layers,
    needs_capability,
    quant_info,
    torchao_extensions,
)

GRANULARITIES = ("per-row", "per-tensor")


@dataclass(frozen=True)
class FP8Params:
    granularity: Literal["per-row", "per-tensor"] = "per-row"
    include_head: bool = False

    def __post_init__(self) -> None:
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity = {self.granularity!r} must be one of {', '.join(GRANULARITIES)}")


def float8_gemm(granularity: str, device: str) -> str:
    """Which kernel torchao 0.18's ``Float8Tensor`` picks (``KernelPreference.AUTO``):
    MSLK's row-wise GEMM when mslk is installed on sm90+ and scales are per row, else
    ``torch._scaled_mm``."""
    import importlib.util

    import torch

    sm90 = torch.cuda.get_device_capability(torch.device(device)) >= (9, 0)
    if granularity == "per-row" and sm90 and importlib.util.find_spec("mslk") is not None:
        return "mslk f8f8bf16_rowwise float8 GEMM"
    return "torch._scaled_mm float8 GEMM"


class FP8(Method):
    name = "quant.fp8"
    preload = TORCHAO
    family = "quantization"
    description = "float8 e4m3 weights and dynamically scaled float8 activations (Linear layers); compute capability >= 8.9"
    Params = FP8Params

    def check(self, model, ctx):
        reason = needs_capability(ctx, (8, 9), "float8 matmuls")
        if reason is None and not aligned_layers(model, 16)[0]:
            reason = "no Linear layer has input and output sizes that are multiples of 16 (float8 matmuls need it)"
        return reason

    def apply(self, model, params, ctx):
        import torch
        from torchao.quantization import (
            Float8DynamicActivationFloat8WeightConfig,
            PerRow,
            PerTensor,
            quantize_,
        )

        from harness_plugins.methods.quantization.half_precision import half_model

        before = count_params(model)
        layers, left = aligned_layers(model, 16, params.include_head)
        wrapped, how = half_model(model, torch.bfloat16, ctx)  # per-row float8 takes bfloat16 weights
        granularity = PerRow() if params.granularity == "per-row" else PerTensor()
        quantize_(wrapped.model, Float8DynamicActivationFloat8WeightConfig(granularity=granularity),
                  filter_fn=layer_filter(layers))
        kernels = f"real ({float8_gemm(params.granularity, ctx.device)})"
        return wrapped, quant_info(layers, 8, kernels, library("torchao"), before, wrapped, format="float8_e4m3fn",
                                   granularity=params.granularity, layers_left=left,
                                   activations="float8_e4m3fn, scaled per batch (bfloat16 between layers)",
                                   torchao_extensions=torchao_extensions(), **how)
