"""Calibrated post-training quantization: int8 static, SmoothQuant, AWQ and GPTQ.

Each runs batches from the task's training split through the model to see real
activations before it quantizes. torchao's observe/convert flows where they run on the
device; torch.ao's FX static quantization (fbgemm/x86 kernels, Conv included) for int8
static on CPU, where torchao's int8 matmul has no fast eager kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from harness.api import Method, Skip
from harness.toolkit import count_params, head_names, layer_filter, library, no_layers
from harness_plugins.methods.quantization.common import (
    TORCHAO,
    calibrate,
    int4_config,
    int4_layers,
    linear_layers,
    on_cuda,
    quant_info,
)

TORCHAO_CPU_INT8 = "simulated (int8 values; torchao's eager CPU int8 matmul has no fast kernel, only torch.compile gives one)"


def _check_samples(samples: int) -> None:
    if samples < 1:
        raise ValueError(f"calibration_samples = {samples} must be >= 1")


@dataclass(frozen=True)
class Int8StaticParams:
    calibration_samples: int = 256
    backend: Literal["auto", "torchao", "torch.ao"] = "auto"
    include_head: bool = False

    def __post_init__(self) -> None:
        _check_samples(self.calibration_samples)


class Int8Static(Method):
    name = "quant.int8-static"
    preload = TORCHAO
    family = "quantization"
    needs = ("calibration",)
    description = "int8 weights and activations with scales calibrated on training inputs"
    Params = Int8StaticParams

    def check(self, model, ctx):
        return None if linear_layers(model) else no_layers(model, "Linear layers to quantize")

    def apply(self, model, params, ctx):
        before = count_params(model)
        backend = params.backend
        if backend == "auto":
            backend = "torchao" if on_cuda(ctx) else "torch.ao"
        fallback = None
        if backend == "torch.ao":
            try:
                model, layers, used = _fx_static(model, ctx, params)
                kernels, lib = "real (fbgemm/x86 int8 kernels)", _fx_library()
            except _Untraceable as exc:
                if params.backend == "torch.ao":
                    raise Skip(f"backend = \"torch.ao\" needs a model torch.fx can trace ({exc}); "
                               "use backend = \"torchao\"") from None
                backend, fallback = "torchao", f"torch.ao FX could not trace the model ({exc}): torchao used"
        if backend == "torchao":
            from torchao.quantization import Int8StaticActivationInt8WeightConfig, PerRow, PerTensor

            # SmoothQuant with alpha=None is torchao's plain calibrated static int8 flow.
            config = Int8StaticActivationInt8WeightConfig(granularity=[PerTensor(), PerRow()])
            layers = linear_layers(model, params.include_head)
            used = _smoothquant(model, ctx, config, None, layers, params.calibration_samples)
            kernels = "real" if on_cuda(ctx) else TORCHAO_CPU_INT8
            lib = library("torchao")
        info = quant_info(layers, 8, kernels, lib, before, model, activations="int8, static scales", backend=backend)
        if fallback:
            info["backend_note"] = fallback
        info["calibration_samples"] = used
        return model, info


class _Untraceable(Exception):
    pass


def _fx_library() -> str:
    import torch

    return f"torch.ao.quantization (FX) {torch.__version__}"


def _fx_static(model: Any, ctx: Any, params: Int8StaticParams) -> tuple[Any, list[str], int]:
    """torch.ao FX static int8 (fbgemm/x86, Conv included): (model, quantized layers,
    calibration samples). The output head and tied layers stay float unless asked."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    mapping = get_default_qconfig_mapping("x86")
    if not params.include_head:
        for name in head_names(model):
            mapping.set_module_name(name, None)
    example = ctx.task.calibration_batches(1)[0]
    try:
        prepared = prepare_fx(model.cpu(), mapping, (example,))
    except Exception as exc:  # symbolic tracing fails before the model is changed
        raise _Untraceable(f"{type(exc).__name__}: {exc}") from None
    used = calibrate(prepared, ctx, params.calibration_samples)
    model = convert_fx(prepared)
    layers = [name for name, m in model.named_modules()  # quantized (and fused) Linear/Conv modules
              if ".quantized" in type(m).__module__ and hasattr(m, "weight")]
    return model, layers, used


def _smoothquant(model: Any, ctx: Any, base: Any, alpha: float | None, layers: list[str], samples: int) -> int:
    from torchao.prototype.smoothquant import SmoothQuantConfig
    from torchao.quantization import quantize_

    quantize_(model, SmoothQuantConfig(base, step="prepare", alpha=alpha), filter_fn=layer_filter(layers))
    used = calibrate(model, ctx, samples)
    quantize_(model, SmoothQuantConfig(base, step="convert", alpha=alpha), filter_fn=layer_filter(layers))
    return used


@dataclass(frozen=True)
class SmoothQuantParams:
    alpha: float = 0.5
    static: bool = False  # static activation scales instead of dynamic per-token ones
    calibration_samples: int = 256
    include_head: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha = {self.alpha} must be between 0 and 1 (migration strength)")
        _check_samples(self.calibration_samples)


class SmoothQuant(Method):
    name = "quant.smoothquant"
    preload = TORCHAO
    family = "quantization"
    needs = ("calibration",)
    description = "move activation outliers into the weights (per-channel smoothing), then int8 weights and activations"
    Params = SmoothQuantParams

    def check(self, model, ctx):
        return None if linear_layers(model) else no_layers(model, "Linear layers to quantize")

    def apply(self, model, params, ctx):
        from torchao.quantization import (
            Int8DynamicActivationInt8WeightConfig,
            Int8StaticActivationInt8WeightConfig,
            PerRow,
            PerTensor,
        )

        before = count_params(model)
        layers = linear_layers(model, params.include_head)
        base = (Int8StaticActivationInt8WeightConfig(granularity=[PerTensor(), PerRow()]) if params.static
                else Int8DynamicActivationInt8WeightConfig())
        used = _smoothquant(model, ctx, base, params.alpha, layers, params.calibration_samples)
        info = quant_info(layers, 8, "real" if on_cuda(ctx) else TORCHAO_CPU_INT8, library("torchao"), before, model,
                          alpha=params.alpha, activations="int8, " + ("static" if params.static else "dynamic"))
        info["calibration_samples"] = used
        return model, info


@dataclass(frozen=True)
class AWQParams:
    bits: int | None = None  # 4 on CUDA; 8 elsewhere (torchao's only AWQ base with a CPU path)
    group_size: int = 32
    calibration_samples: int = 256
    scale_search_space_size: int = 20
    include_head: bool = False

    def __post_init__(self) -> None:
        if self.bits not in (None, 4, 8):
            raise ValueError(f"bits = {self.bits} must be 4 or 8")
        if self.group_size not in (32, 64, 128, 256):
            raise ValueError(f"group_size = {self.group_size} must be one of 32, 64, 128, 256")
        _check_samples(self.calibration_samples)


class AWQ(Method):
    name = "quant.awq"
    preload = TORCHAO
    family = "quantization"
    needs = ("calibration",)
    description = "activation-aware weight-only quantization: per-channel scales searched on calibration inputs"
    Params = AWQParams

    def check(self, model, ctx):
        return None if linear_layers(model) else no_layers(model, "Linear layers to quantize")

    def apply(self, model, params, ctx):
        import torch
        from torchao.prototype.awq import AWQConfig
        from torchao.quantization import Int8WeightOnlyConfig, PerRow, quantize_

        bits = params.bits or (4 if on_cuda(ctx) else 8)
        if bits == 4 and not on_cuda(ctx):
            raise Skip("bits = 4 needs CUDA (torchao's int4 tensors have no CPU path); use bits = 8")
        before = count_params(model)
        target, how = model, {}
        if bits == 4:
            from harness_plugins.methods.quantization.half_precision import half_model

            model, how = half_model(model, torch.bfloat16, ctx)  # the tinygemm kernel takes bfloat16 only
            target = model.model
            layers, base = int4_layers(target, params.group_size, params.include_head), int4_config(params.group_size)
            kernels = "real (tinygemm int4 kernel)"
        else:
            layers, base = linear_layers(model, params.include_head), Int8WeightOnlyConfig(granularity=PerRow())
            kernels = "simulated (int8 storage; weights upcast to float for each matmul unless torch.compile fuses it)"
        search = params.scale_search_space_size
        quantize_(target, AWQConfig(base, step="prepare", scale_search_space_size=search), filter_fn=layer_filter(layers))
        used = calibrate(model, ctx, params.calibration_samples)
        quantize_(target, AWQConfig(base, step="convert", scale_search_space_size=search), filter_fn=layer_filter(layers))
        info = quant_info(layers, bits, kernels, library("torchao"), before, model,
                          group_size=params.group_size if bits == 4 else None, activations="float", **how)
        info["calibration_samples"] = used
        return model, info


@dataclass(frozen=True)
class GPTQParams:
    bits: int | None = None  # 4 where torchao's int4 GPTQ kernels (mslk) are installed, else 8
    group_size: int = 128
    percdamp: float = 0.01
    calibration_samples: int = 256
    include_head: bool = False

    def __post_init__(self) -> None:
        if self.bits not in (None, 4, 8):
            raise ValueError(f"bits = {self.bits} must be 4 or 8")
        if not 0.0 < self.percdamp < 1.0:
            raise ValueError(f"percdamp = {self.percdamp} must be between 0 and 1")
        _check_samples(self.calibration_samples)


def _has_mslk() -> bool:
    import importlib.util

    return importlib.util.find_spec("mslk") is not None


class GPTQ(Method):
    name = "quant.gptq"
    preload = TORCHAO
    family = "quantization"
    needs = ("calibration",)
    description = "weight-only quantization that corrects each column's rounding error using calibration Hessians"
    Params = GPTQParams

    def check(self, model, ctx):
        if not on_cuda(ctx):
            # torchao 0.18 gptq_quantize asserts a CUDA device ("GPTQ only supports CUDA currently").
            return "torchao 0.18's GPTQ runs only on CUDA"
        return None if linear_layers(model) else no_layers(model, "Linear layers to quantize")

    def apply(self, model, params, ctx):
        from torchao.prototype.gptq import GPTQConfig
        from torchao.quantization import (
            Int4WeightOnlyConfig,
            Int8WeightOnlyConfig,
            PerRow,
            quantize_,
        )

        bits = params.bits or (4 if _has_mslk() else 8)
        if bits == 4 and not _has_mslk():
            raise Skip("bits = 4 needs the mslk package (torchao's int4 GPTQ packing); use bits = 8")
        base = (Int4WeightOnlyConfig(group_size=params.group_size) if bits == 4
                else Int8WeightOnlyConfig(granularity=PerRow()))
        before = count_params(model)
        layers = linear_layers(model, params.include_head)
        observe = GPTQConfig(step="observe", base_config=base, percdamp=params.percdamp)
        quantize_(model, observe, filter_fn=layer_filter(layers))
        used = calibrate(model, ctx, params.calibration_samples)
        convert = GPTQConfig(step="convert", base_config=base, percdamp=params.percdamp)
        quantize_(model, convert, filter_fn=layer_filter(layers))
        info = quant_info(layers, bits, "real", library("torchao"), before, model,
                          group_size=params.group_size if bits == 4 else None, activations="float")
        info["calibration_samples"] = used
        return model, info
