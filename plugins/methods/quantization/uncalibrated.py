"""Post-training quantization without calibration: int8 dynamic, int8/int4 weight-only,
fp16 and bf16. torchao where it has kernels for the device; torch.ao's fbgemm/x86
kernels for int8 on CPU, where torchao's int8 runs without a fast kernel (measured 14x
slower). The calibrated methods and QAT live in :mod:`.calibrated` and :mod:`.qat`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from harness.api import Method, NoParams
from harness.toolkit import count_params, layer_filter, library, no_layers
from harness_plugins.methods.quantization.common import (
    TORCHAO,
    int4_config,
    int4_layers,
    linear_layers,
    on_cuda,
    quant_info,
)


@dataclass(frozen=True)
class Int8DynamicParams:
    backend: Literal["auto", "torchao", "torch.ao"] = "auto"
    include_head: bool = False


class Int8Dynamic(Method):
    name = "quant.int8-dynamic"
    preload = TORCHAO
    family = "quantization"
    description = "int8 weights, activations quantized on the fly per batch (Linear layers)"
    Params = Int8DynamicParams

    def check(self, model, ctx):
        return None if linear_layers(model) else no_layers(model, "Linear layers to quantize")

    def apply(self, model, params, ctx):
        import torch

        layers, before = linear_layers(model, params.include_head), count_params(model)
        backend = params.backend
        if backend == "auto":
            backend = "torchao" if on_cuda(ctx) else "torch.ao"
        if backend == "torchao":
            from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

            quantize_(model, Int8DynamicActivationInt8WeightConfig(), filter_fn=layer_filter(layers))
            kernels = "real" if on_cuda(ctx) else "real (torchao int8 path; slow on CPU)"
            lib = library("torchao")
        else:
            qconfig = torch.ao.quantization.default_dynamic_qconfig
            model = torch.ao.quantization.quantize_dynamic(model.cpu(), {name: qconfig for name in layers},
                                                           dtype=torch.qint8)
            kernels = "real (fbgemm/x86 int8 GEMM)"
            lib = f"torch.ao.quantization {torch.__version__}"
        return model, quant_info(layers, 8, kernels, lib, before, model,
                                 activations="int8, dynamic per batch", backend=backend)


@dataclass(frozen=True)
class Int8WeightParams:
    include_head: bool = False


class Int8Weight(Method):
    name = "quant.int8-weight"
    preload = TORCHAO
    family = "quantization"
    description = "int8 weights (per output row), float activations (Linear layers)"
    Params = Int8WeightParams

    def check(self, model, ctx):
        return None if linear_layers(model) else no_layers(model, "Linear layers to quantize")

    def apply(self, model, params, ctx):
        from torchao.quantization import Int8WeightOnlyConfig, PerRow, quantize_

        layers, before = linear_layers(model, params.include_head), count_params(model)
        quantize_(model, Int8WeightOnlyConfig(granularity=PerRow()), filter_fn=layer_filter(layers))
        # torchao's weight-only int8 linear upcasts the int8 weight and runs a float
        # matmul; only torch.compile fuses that into one kernel.
        kernels = "simulated (int8 storage; weights upcast to float for each matmul unless torch.compile fuses it)"
        return model, quant_info(layers, 8, kernels, library("torchao"), before, model,
                                 activations="float", granularity="per output row")


@dataclass(frozen=True)
class Int4WeightParams:
    group_size: int = 32
    include_head: bool = False

    def __post_init__(self) -> None:
        if self.group_size not in (32, 64, 128, 256):
            raise ValueError(f"group_size = {self.group_size} must be one of 32, 64, 128, 256")


class Int4Weight(Method):
    name = "quant.int4-weight"
    preload = TORCHAO
    family = "quantization"
    description = "int4 weights in groups along the input dim, float activations (Linear layers)"
    Params = Int4WeightParams

    def check(self, model, ctx):
        if not on_cuda(ctx):
            # Int4Tensor needs the CUDA-only mslk/tinygemm kernels; IntxWeightOnlyConfig
            # would run on CPU but keeps int4 values unpacked in int8: no smaller, no faster.
            return "int4 weight kernels need CUDA (torchao 0.18 has no packed int4 CPU path)"
        return None if linear_layers(model) else no_layers(model, "Linear layers to quantize")

    def apply(self, model, params, ctx):
        import torch
        from torchao.quantization import quantize_

        from harness_plugins.methods.quantization.half_precision import half_model

        before = count_params(model)
        layers = int4_layers(model, params.group_size, params.include_head)
        wrapped, how = half_model(model, torch.bfloat16, ctx)  # the tinygemm kernel takes bfloat16 only
        quantize_(wrapped.model, int4_config(params.group_size), filter_fn=layer_filter(layers))
        return wrapped, quant_info(layers, 4, "real (tinygemm int4 kernel)", library("torchao"), before, wrapped,
                                   group_size=params.group_size, activations="bfloat16", **how)


class _Half(Method):
    family = "quantization"
    Params = NoParams
    dtype_name: str = ""

    def apply(self, model, params, ctx):
        import torch

        from harness_plugins.methods.quantization.half_precision import half_model

        dtype = getattr(torch, self.dtype_name)
        before = count_params(model)
        layers = [name for name, m in model.named_modules() if next(m.parameters(recurse=False), None) is not None]
        wrapped, how = half_model(model, dtype, ctx)  # inputs cast, or autocast, or Skip: from a trial batch
        return wrapped, quant_info(layers, 16, self.kernels(ctx), f"torch {torch.__version__}", before, wrapped,
                                   activations=self.dtype_name, **how)

    def kernels(self, ctx: Any) -> str:
        import torch

        if on_cuda(ctx):
            return "real"
        probe = getattr(torch.ops.mkldnn, f"_is_mkldnn_{'bf16' if self.dtype_name == 'bfloat16' else 'fp16'}_supported")
        if probe():
            return "real (oneDNN half-precision kernels on this CPU)"
        return "real dtype, slow path (this CPU has no oneDNN kernels for it: expect slower than float32)"


class FP16(_Half):
    name = "quant.fp16"
    description = "all weights and activations in float16 (inputs cast in, outputs cast back)"
    dtype_name = "float16"


class BF16(_Half):
    name = "quant.bf16"
    description = "all weights and activations in bfloat16 (inputs cast in, outputs cast back)"
    dtype_name = "bfloat16"

