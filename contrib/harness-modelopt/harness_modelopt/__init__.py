"""NVIDIA Model Optimizer (``nvidia-modelopt``, the seeds' "TensorRT Model Optimizer")
post-training quantization as a harness method — a third-party distribution importing
only ``harness``'s public surface.

``modelopt.quantize`` runs ``mtq.quantize(model, <preset>, forward_loop)`` with one of
ModelOpt's own presets by name (``config = "INT8_SMOOTHQUANT_CFG"``, ``"INT4_AWQ_CFG"``,
``"FP8_DEFAULT_CFG"``, ``"INT8_WEIGHT_ONLY_CFG"``, ...; any ``*_CFG`` of
``modelopt.torch.quantization``), its forward loop calibrating on the task's calibration
batches. The preset decides which layers are quantized (ModelOpt's presets leave
``*lm_head*``, ``*output_layer*``, routers and BatchNorm alone); the row's info lists the
quantizers it enabled, by role and format.

What it produces is **fake quantization**, as ModelOpt's documentation says: every
quantized layer quantizes and dequantizes its weights (and, for W8A8/FP8 presets, its
inputs) in float32 at each call. Accuracy is that of the quantized format; the speed is
not a speed of int8/int4/fp8 kernels (``kernels``: simulated): that comes from exporting
to TensorRT or TensorRT-LLM, on a GPU. NVFP4, MXFP* and W4A8 presets need CUDA to run and
are skipped elsewhere.

``modelopt`` is not preloaded: its import (about 9 s) starts native threads, past which
a fork server cannot fork; each run imports it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from harness import hookimpl
from harness.api import Method, RunContext, Skip
from harness.toolkit import library

# presets whose formats ModelOpt runs only on CUDA (NVFP4 and MX formats, W4A8's FP8 path)
CUDA_ONLY = re.compile(r"NVFP4|MXFP|MXINT|W4A8|W4A16_NVFP4")


@dataclass(frozen=True)
class QuantizeParams:
    config: str = "INT8_SMOOTHQUANT_CFG"  # the name of one of modelopt.torch.quantization's presets
    calibration_samples: int = 128  # ModelOpt suggests 128-512
    batch_size: int = 16

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Z0-9_]+_CFG", self.config):
            raise ValueError(f"config = {self.config!r} must name a ModelOpt preset, e.g. 'INT8_SMOOTHQUANT_CFG'")
        if self.calibration_samples < 1 or self.batch_size < 1:
            raise ValueError("calibration_samples and batch_size must be >= 1")


def preset(name: str) -> dict[str, Any]:
    """A copy of ModelOpt's preset ``name`` (mtq.quantize may change what it is given)."""
    import copy

    import modelopt.torch.quantization as mtq

    if not hasattr(mtq, name):
        known = sorted(n for n in dir(mtq) if n.endswith("_CFG"))
        raise Skip(f"modelopt {library('nvidia-modelopt').split()[-1]} has no preset {name}; it has {', '.join(known)}")
    return copy.deepcopy(getattr(mtq, name))


def forward_loop(ctx: RunContext, params: QuantizeParams) -> Any:
    """ModelOpt's calibration callable: the model over the task's calibration batches."""
    import torch

    if ctx.task is None:
        raise Skip("ModelOpt calibrates on a task's data; this run has none")
    batches = ctx.task.calibration_batches(params.calibration_samples, params.batch_size)
    if not batches:
        raise Skip("the task has no calibration data for ModelOpt to calibrate on")

    def loop(model: Any) -> None:
        with torch.no_grad():
            for batch in batches:
                model(**batch) if isinstance(batch, dict) else model(batch)

    return loop


def quantizers(model: Any) -> dict[str, Any]:
    """The quantizers ModelOpt enabled, counted by role (weight, input, output) and format
    (``int8``, ``int4 blocks of 128``, ``fp8 e4m3``)."""
    formats: dict[str, int] = {}
    for name, module in model.named_modules():
        is_quantizer = any(cls.__name__ == "TensorQuantizer" for cls in type(module).__mro__)  # AWQ subclasses it
        if not is_quantizer or not getattr(module, "is_enabled", False):
            continue
        role = re.sub(r"^.*?(\w+)_quantizer(\.\d+)?$", r"\1", name)
        bits = module.num_bits
        kind = f"fp8 e{bits[0]}m{bits[1]}" if isinstance(bits, tuple) else f"int{bits}"
        blocks = getattr(module, "block_sizes", None) or {}
        size = next((v for k, v in blocks.items() if isinstance(k, int) and v), None)
        key = f"{role}: {kind}" + (f" blocks of {size}" if size else "")
        formats[key] = formats.get(key, 0) + 1
    return formats


class Quantize(Method):
    name = "modelopt.quantize"
    family = "quantization"
    needs = ("calibration",)
    requires = ("modelopt",)
    description = "NVIDIA ModelOpt mtq.quantize with one of its presets (INT8 SmoothQuant, INT4 AWQ, FP8, ...): fake-quant"
    Params = QuantizeParams

    def check(self, model: Any, ctx: RunContext) -> str | None:
        return None  # the preset is checked in apply, where its params are known

    def apply(self, model: Any, params: Any, ctx: RunContext) -> tuple[Any, dict[str, Any]]:
        if CUDA_ONLY.search(params.config) and not ctx.device.startswith("cuda"):
            raise Skip(f"ModelOpt's {params.config} formats run only on CUDA (this run: {ctx.device})")
        import modelopt.torch.quantization as mtq

        config = preset(params.config)
        out = mtq.quantize(model, config, forward_loop(ctx, params))
        found = quantizers(out)
        if not found:
            raise Skip(f"ModelOpt's {params.config} enabled no quantizer in this model (no layer its preset matches)")
        weight_bits = [int(m.group(1)) for k in found if (m := re.match(r"weight: int(\d+)", k))]
        return out, {
            "preset": params.config,
            "algorithm": str(config.get("algorithm")),
            "quantizers": found,
            **({"bits_per_weight": max(weight_bits)} if weight_bits else {}),
            "kernels": "simulated (fake quantization: ModelOpt quantizes and dequantizes in float32 at every call)",
            "library": library("nvidia-modelopt", "modelopt"),
        }


@hookimpl
def harness_register_methods(register: Any) -> None:
    register(Quantize)
