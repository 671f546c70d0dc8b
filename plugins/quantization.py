"""Quantization methods. torchao where it has kernels for the device; torch.ao's
fbgemm/x86 kernels for int8 on CPU, where torchao's int8 runs without a fast kernel."""

from __future__ import annotations

import importlib.metadata as md
from dataclasses import dataclass
from typing import Any, Literal

from harness import hookimpl
from harness.api import Method


def version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def linear_layers(model: Any) -> list[str]:
    import torch

    return [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]


@dataclass(frozen=True)
class Int8DynamicParams:
    backend: Literal["auto", "torchao", "torch.ao"] = "auto"


class Int8Dynamic(Method):
    name = "quant.int8-dynamic"
    family = "quantization"
    description = "int8 weights, activations quantized on the fly per batch (Linear layers)"
    Params = Int8DynamicParams

    def check(self, model, ctx):
        return None if linear_layers(model) else "the model has no Linear layers to quantize"

    def apply(self, model, params, ctx):
        import torch

        layers = linear_layers(model)
        backend = params.backend
        if backend == "auto":
            backend = "torchao" if ctx.device.startswith("cuda") else "torch.ao"
        if backend == "torchao":
            from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

            quantize_(model, Int8DynamicActivationInt8WeightConfig())
            kernels = "real" if ctx.device.startswith("cuda") else "real (torchao int8 path; slow on CPU)"
            library = f"torchao {version('torchao')}"
        else:
            model = torch.ao.quantization.quantize_dynamic(model.cpu(), {torch.nn.Linear}, dtype=torch.qint8)
            kernels = "real (fbgemm/x86 int8 GEMM)"
            library = f"torch.ao.quantization {torch.__version__}"
        return model, {
            "layers": len(layers), "bits_per_weight": 8, "activations": "int8, dynamic per batch",
            "kernels": kernels, "library": library, "backend": backend,
        }


@hookimpl
def harness_register_methods(register):
    register(Int8Dynamic)
