"""vLLM's ``llm-compressor`` as a harness method — a third-party distribution importing only
``harness``'s public surface (``harness.api``, ``harness.toolkit``, ``hookimpl``).

``llmcompressor.oneshot`` runs a recipe of llm-compressor's own modifiers on the model in
memory, calibrated on the task's calibration batches (one sample per step, as
llm-compressor calibrates): ``algorithm = "gptq"`` (``GPTQModifier``), ``"awq"``
(``AWQModifier``) or ``"rtn"`` (``QuantizationModifier``: round to nearest), with one of
compressed-tensors' preset ``scheme`` names (``W4A16``, ``W4A16_ASYM``, ``W8A16``,
``W8A8``, ``FP8``, ``FP8_DYNAMIC``, ...), its weights' groups resized by ``group_size``
(llm-compressor's ``config_groups``); ``smoothquant`` > 0 puts a
``SmoothQuantModifier`` of that strength first (SmoothQuant + GPTQ W8A8 is
llm-compressor's W8A8 recipe). As llm-compressor's examples do, the output head
(``lm_head``) is left alone: the layers of ``harness.toolkit.head_names`` are ``ignore``d.

What it produces in memory is compressed-tensors **fake quantization**: each quantized
Linear keeps float32 weights (already rounded to the scheme's grid) with their scales and
zero points, and quantizes its inputs at every call for W8A8/FP8 schemes; ``kernels`` is
simulated. The real format is the compressed checkpoint (``save_pretrained(...,
save_compressed=True)``: int4 packed in int32, int8, float8), which vLLM runs with its
kernels on a GPU; the harness's CPU runtimes cannot run it.

llm-compressor works on ``transformers`` models (``PreTrainedModel``); others skip, as does
what it cannot do on a CPU (0.14's AWQ pins its activation cache to page-locked memory,
which needs a GPU) and a group scheme that does not divide a layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness import hookimpl
from harness.api import Method, RunContext, Skip
from harness.toolkit import head_names, library

ALGORITHMS = ("gptq", "awq", "rtn")


@dataclass(frozen=True)
class OneshotParams:
    scheme: str = "W4A16"  # a compressed-tensors preset scheme: W4A16, W8A16, W8A8, FP8, FP8_DYNAMIC, ...
    algorithm: str = "gptq"  # gptq | awq | rtn (round to nearest)
    group_size: int = 0  # weights sharing a scale along the input; 0: the scheme's own (128 for W4A16, W8A16)
    smoothquant: float = 0.0  # SmoothQuantModifier's smoothing_strength before quantizing; 0: none
    calibration_samples: int = 128  # llm-compressor's examples use 512 on real LLMs

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm = {self.algorithm!r} must be one of {', '.join(ALGORITHMS)}")
        if not 0.0 <= self.smoothquant < 1.0:
            raise ValueError(f"smoothquant = {self.smoothquant} must be in [0, 1): a SmoothQuant strength, 0 for none")
        if self.calibration_samples < 1 or self.group_size < 0:
            raise ValueError("calibration_samples must be >= 1 and group_size >= 0")


def recipe(params: OneshotParams, ignore: list[str]) -> list[Any]:
    """llm-compressor's modifiers for ``params`` (its own classes, its own arguments)."""
    from compressed_tensors.quantization.quant_scheme import PRESET_SCHEMES

    if params.scheme not in PRESET_SCHEMES:
        raise ValueError(f"scheme = {params.scheme!r} is not a compressed-tensors preset; "
                         f"the installed one has {', '.join(PRESET_SCHEMES)}")
    modifiers: list[Any] = []
    if params.smoothquant:
        from llmcompressor.modifiers.smoothquant import SmoothQuantModifier

        modifiers.append(SmoothQuantModifier(smoothing_strength=params.smoothquant))
    if params.algorithm == "gptq":
        from llmcompressor.modifiers.quantization import GPTQModifier as Quantizer
    elif params.algorithm == "awq":
        from llmcompressor.modifiers.awq import AWQModifier as Quantizer
    else:
        from llmcompressor.modifiers.quantization import QuantizationModifier as Quantizer
    if not params.group_size:
        modifiers.append(Quantizer(targets="Linear", scheme=params.scheme, ignore=ignore))
        return modifiers
    from compressed_tensors.quantization import preset_name_to_scheme

    scheme = preset_name_to_scheme(params.scheme, ["Linear"])  # the preset, its weights in other groups
    scheme.weights = scheme.weights.model_copy(update={"group_size": params.group_size, "strategy": "group"})
    modifiers.append(Quantizer(config_groups={"group_0": scheme}, ignore=ignore))
    return modifiers


def calibration(ctx: RunContext, samples: int) -> Any:
    """The task's calibration samples as the DataLoader ``oneshot`` takes: one dict of
    model inputs per step (an LM task's token windows become ``input_ids``)."""
    import torch

    if ctx.task is None:
        raise Skip("llm-compressor calibrates on a task's data; this run has none")
    batches = [b if isinstance(b, dict) else {"input_ids": b} for b in ctx.task.calibration_batches(samples, 1)]
    if not batches:
        raise Skip("the task has no calibration data for llm-compressor to calibrate on")
    return torch.utils.data.DataLoader(batches, batch_size=None)


def quantized(model: Any) -> dict[str, Any]:
    """The layers compressed-tensors quantized, counted by their weight and input formats."""
    formats: dict[str, int] = {}
    for module in model.modules():
        scheme = getattr(module, "quantization_scheme", None)
        if scheme is None:
            continue
        parts = []
        for role, args in (("weights", scheme.weights), ("inputs", scheme.input_activations)):
            if args is not None:
                kind = f"{args.type}{args.num_bits}"
                how = f"groups of {args.group_size}" if args.group_size else str(args.strategy)
                parts.append(f"{role} {kind} {how}" + (" dynamic" if getattr(args, "dynamic", False) is True else ""))
        key = ", ".join(parts)
        formats[key] = formats.get(key, 0) + 1
    return formats


class Oneshot(Method):
    name = "llmcompressor.oneshot"
    family = "quantization"
    needs = ("calibration",)
    requires = ("llmcompressor",)
    description = "llm-compressor oneshot: GPTQ / AWQ / round-to-nearest (+ SmoothQuant) to a compressed-tensors scheme: fake-quant"
    Params = OneshotParams

    def check(self, model: Any, ctx: RunContext) -> str | None:
        if not any(c.__name__ == "PreTrainedModel" for c in type(model).__mro__):
            return "llm-compressor's oneshot works on transformers models (PreTrainedModel); this model is not one"
        return None

    def apply(self, model: Any, params: Any, ctx: RunContext) -> tuple[Any, dict[str, Any]]:
        from llmcompressor import oneshot

        ignore = head_names(model)
        modifiers = recipe(params, ignore)
        data = calibration(ctx, params.calibration_samples)
        try:
            out = oneshot(model=model, dataset=data, recipe=modifiers, num_calibration_samples=len(data))
        except ValueError as exc:  # its check that a group scheme fits every layer
            if "not divisible by group_size" not in str(exc):
                raise
            layers = [line.strip(" -") for line in str(exc).splitlines() if line.strip().startswith("- ")]
            raise Skip(f"llm-compressor: the {params.scheme} scheme's groups do not divide {', '.join(layers)} "
                       "(a per-channel scheme such as W8A16, or a model whose widths are multiples of the group, fits)"
                       ) from exc
        except RuntimeError as exc:  # 0.14's AWQ pins its activation cache to page-locked memory: a GPU's
            if "accelerator" not in str(exc) or ctx.device.startswith("cuda"):
                raise
            raise Skip(f"llm-compressor's {params.algorithm} needs a GPU here: {str(exc).strip()}") from exc
        found = quantized(out)
        if not found:
            raise Skip(f"llm-compressor's {params.scheme} recipe quantized no layer of this model")
        return out, {
            "recipe": [type(m).__name__ for m in modifiers], "scheme": params.scheme, "ignored": ignore,
            "quantized_layers": found, "layers_touched": sum(found.values()),
            "calibration_samples": len(data),
            "kernels": "simulated (compressed-tensors fake quantization in float32; the packed checkpoint runs in vLLM)",
            "library": f"{library('llmcompressor')}, {library('compressed-tensors')}",
        }


@hookimpl
def harness_register_methods(register: Any) -> None:
    register(Oneshot)
