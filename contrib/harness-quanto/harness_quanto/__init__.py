"""Hugging Face ``optimum-quanto`` quantization as a harness method — a third-party
distribution importing only ``harness``'s public surface (``harness.api``,
``harness.toolkit``, ``hookimpl``).

``quanto.quantize`` does what quanto's README does: ``quantize(model, weights=...,
activations=..., exclude=...)``; with activations, a ``Calibration()`` pass over the task's
calibration batches records their ranges; then ``freeze(model)`` stores the weights
quantized (int8 and float8 one per byte, int4/int2 packed two/four to a byte, in groups
quanto picks: 128 inputs, or the largest multiple of 32 below it that divides the layer,
else per output channel). As quanto's documentation does for LLMs, the output head (and
layers tied to an embedding) stays float unless ``include_head`` — the rule of every
harness built-in, from ``harness.toolkit.head_names``.

What runs on a CPU (torch 2.13, optimum-quanto 0.2.7, seen in the profiler): int8 weights
with int8 activations multiply in int8 (``aten::_int_mm``): ``kernels`` real. Every other
combination dequantizes the weights to float before a float matmul: a real size, a
simulated speed (``kernels``: simulated). On CUDA quanto has int4/float8 kernels (Marlin,
tinygemm) for float16/bfloat16 activations; the harness's profiler check says whether
they ran.

quanto's 2- and 4-bit weights cannot be used under ``torch.inference_mode`` ("Cannot set
version_counter for inference tensor"), where the harness evaluates and times: those
layers run with inference mode off and gradients off (:class:`QLinearNoInferenceMode`),
which computes the same values; the row's info counts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness import hookimpl
from harness.api import Method, RunContext, Skip
from harness.toolkit import count_params, head_names, library

WEIGHTS = ("qint2", "qint4", "qint8", "qfloat8", "qfloat8_e4m3fn", "qfloat8_e4m3fnuz", "qfloat8_e5m2")
ACTIVATIONS = ("none", "qint8", "qfloat8", "qfloat8_e4m3fn", "qfloat8_e4m3fnuz", "qfloat8_e5m2")


@dataclass(frozen=True)
class QuantizeParams:
    weights: str = "qint8"  # one of quanto's qtypes: qint2, qint4, qint8, qfloat8 (e4m3fn), ...
    activations: str = "none"  # none (weight-only), qint8 or a qfloat8 type: calibrated on the task's data
    include_head: bool = False  # the output head and embedding-tied layers too
    calibration_samples: int = 128
    batch_size: int = 16
    momentum: float = 0.9  # quanto's Calibration: the moving average of the activation ranges

    def __post_init__(self) -> None:
        if self.weights not in WEIGHTS:
            raise ValueError(f"weights = {self.weights!r} must be one of quanto's {', '.join(WEIGHTS)}")
        if self.activations not in ACTIVATIONS:
            raise ValueError(f"activations = {self.activations!r} must be one of {', '.join(ACTIVATIONS)}")
        if self.calibration_samples < 1 or self.batch_size < 1:
            raise ValueError("calibration_samples and batch_size must be >= 1")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum = {self.momentum} must be in [0, 1)")


def __getattr__(name: str) -> Any:
    """The subclasses are built on first use (so that importing this plugin does not
    import quanto, which takes seconds) and are importable by name: a stored artifact
    (``torch.save`` of the model) unpickles them from here."""
    if name in ("QLinearNoInferenceMode", "QConv2dNoInferenceMode"):
        from optimum.quanto import QConv2d, QLinear

        base = QLinear if name == "QLinearNoInferenceMode" else QConv2d

        def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
            import torch

            if not torch.is_inference_mode_enabled():
                return base.forward(self, *args, **kwargs)
            with torch.inference_mode(False), torch.no_grad():
                return base.forward(self, *args, **kwargs)

        cls = type(name, (base,), {"forward": forward, "__module__": __name__, "__qualname__": name,
                                   "__doc__": f"quanto's {base.__name__} with 2/4-bit weights, run outside torch.inference_mode"})
        globals()[name] = cls
        return cls
    raise AttributeError(name)


def allow_inference_mode(model: Any) -> int:
    """Swap the class of every layer holding 2/4-bit quanto weights for its subclass that
    runs outside inference mode; return how many."""
    from optimum.quanto import QConv2d, QLinear, WeightQBitsTensor

    subclasses = {QLinear: _subclass("QLinearNoInferenceMode"), QConv2d: _subclass("QConv2dNoInferenceMode")}
    swapped = 0
    for module in model.modules():
        if type(module) in subclasses and isinstance(module.weight, WeightQBitsTensor):
            module.__class__ = subclasses[type(module)]
            swapped += 1
    return swapped


def _subclass(name: str) -> type:
    return globals().get(name) or __getattr__(name)


def stored_bytes(tensor: Any) -> int:
    """Bytes a (possibly quantized) tensor holds: the sum of its inner plain tensors,
    through the tensor-subclass protocol (``__tensor_flatten__``) that quanto's tensors follow."""
    if hasattr(tensor, "__tensor_flatten__"):
        names, _ = tensor.__tensor_flatten__()
        return sum(stored_bytes(getattr(tensor, n)) for n in names)
    return tensor.numel() * tensor.element_size()


def quantized(model: Any) -> dict[str, Any]:
    """What quanto left in ``model``: its layers by class, the weight groups it chose, the
    bytes of the quantized weights as stored."""
    from optimum.quanto import QModuleMixin, QTensor

    layers: dict[str, int] = {}
    groups: set[str] = set()
    weight_bytes = 0
    for module in model.modules():
        if not isinstance(module, QModuleMixin):
            continue
        kind = next(c.__name__ for c in type(module).__mro__ if c.__module__.startswith("optimum.quanto"))
        layers[kind] = layers.get(kind, 0) + 1
        if isinstance(getattr(module, "weight", None), QTensor):
            weight_bytes += stored_bytes(module.weight)
            size = getattr(module, "weight_group_size", None)
            groups.add(f"groups of {size}" if size else "per output channel")
    return {"quantized_layers": layers, "layers_touched": sum(layers.values()),
            "weight_groups": sorted(groups), "quantized_weight_bytes": weight_bytes}


def calibrate(model: Any, ctx: RunContext, params: QuantizeParams) -> int:
    """quanto's ``Calibration`` over the task's calibration batches; the samples seen."""
    import torch
    from optimum.quanto import Calibration

    if ctx.task is None:
        raise Skip("quanto calibrates activations on a task's data; this run has none")
    batches = ctx.task.calibration_batches(params.calibration_samples, params.batch_size)
    if not batches:
        raise Skip("the task has no calibration data for quanto's activation ranges")
    with torch.no_grad(), Calibration(momentum=params.momentum):
        for batch in batches:
            model(**batch) if isinstance(batch, dict) else model(batch)
    return params.calibration_samples


class Quantize(Method):
    name = "quanto.quantize"
    family = "quantization"
    needs = ("calibration",)  # used where activations are quantized
    requires = ("optimum",)
    preload = ("harness_quanto.kernels",)  # its CPU kernels, compiled and loaded outside any run's figures
    description = "optimum-quanto quantize + freeze: int8/int4/int2/float8 weights, optional int8/float8 activations"
    Params = QuantizeParams

    def check(self, model: Any, ctx: RunContext) -> str | None:
        import torch

        if not any(isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)) for m in model.modules()):
            return "quanto quantizes Linear and Conv2d layers; this model has none (an exported graph?)"
        return None

    def apply(self, model: Any, params: Any, ctx: RunContext) -> tuple[Any, dict[str, Any]]:
        from optimum.quanto import freeze, qtypes, quantize

        before = count_params(model)
        exclude = [] if params.include_head else head_names(model)
        activations = None if params.activations == "none" else qtypes[params.activations]
        quantize(model, weights=qtypes[params.weights], activations=activations, exclude=exclude or None)
        samples = calibrate(model, ctx, params) if activations is not None else 0
        freeze(model)
        found = quantized(model)
        if not found["layers_touched"]:
            raise Skip("quanto quantized no layer of this model (it quantizes Linear, Conv2d and LayerNorm)")
        real = params.weights == "qint8" and params.activations == "qint8"
        return model, {
            **found,
            "weights": params.weights, "activations": params.activations, "left_float": exclude,
            "bits_per_weight": qtypes[params.weights].bits,
            "layers_outside_inference_mode": allow_inference_mode(model),
            "calibration_samples": samples,
            "params_before": before,
            "kernels": ("real (int8 x int8 matmuls, aten::_int_mm)" if real else
                        "simulated (weights stored quantized; quanto dequantizes them before a float matmul)"),
            "library": library("optimum-quanto"),
        }


@hookimpl
def harness_register_methods(register: Any) -> None:
    register(Quantize)
