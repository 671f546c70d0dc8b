"""NNCF (OpenVINO's Neural Network Compression Framework) weight compression on PyTorch
models, as harness methods — a third-party distribution: it imports only ``harness``'s
public surface (``harness.api``, ``harness.toolkit``, ``hookimpl``).

- ``nncf.int8-weights``: ``nncf.compress_weights`` in INT8 mode (asymmetric by default):
  8-bit weights per output channel.
- ``nncf.int4-weights``: INT4 mode (symmetric by default), in groups of ``group_size``
  along the input; with ``awq`` / ``scale_estimation`` calibrated on the task's data. As
  NNCF does by default, embeddings and the last layer stay int8 unless ``all_layers``;
  ``ratio`` < 1 keeps that share of the rest in int8 too.

What NNCF produces on a torch model: the weights stored packed (uint8; int4 two to a
byte) with fp16 scales, and a decompression hook before every use — the model is
really smaller, but it computes in float32 after decompressing each weight at every call:
``kernels`` says ``simulated`` and the timing is of that (NNCF's fast path is OpenVINO:
the built-in ``ov.int8-weights`` / ``ov.int4-weights`` compress the exported graph there).

NNCF traces the model on one calibration batch of the task even for data-free modes (its
``nncf.Dataset`` is how it learns the input). It logs a bit-width table and a progress bar
to the run's log. ``nncf`` is not preloaded: its import starts OpenVINO's telemetry thread,
which a fork server must not fork past.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from harness import hookimpl
from harness.api import Method, RunContext, Skip
from harness.toolkit import count_params, library

# the dtype NNCF stores each mode's weights in, and how many weights a stored value holds
PACKING = {"int8": 1, "int4": 2}


@dataclass(frozen=True)
class Int8Params:
    symmetric: bool = False  # INT8_SYM: no zero points (NNCF's default for int8 is asymmetric)


@dataclass(frozen=True)
class Int4Params:
    symmetric: bool = True  # INT4_SYM (NNCF's default) or INT4_ASYM
    group_size: int = 128  # weights sharing a scale along the input; -1: per output channel
    ratio: float = 1.0  # share of the ratio-defining layers in int4 (the rest int8)
    all_layers: bool = False  # embeddings and the last layer in int4 too
    awq: bool = False  # activation-aware scaling (needs calibration data and NNCF's patterns)
    scale_estimation: bool = False
    calibration_samples: int = 64

    def __post_init__(self) -> None:
        if self.group_size != -1 and self.group_size < 1:
            raise ValueError(f"group_size = {self.group_size} must be -1 (per channel) or positive")
        if not 0.0 < self.ratio <= 1.0:
            raise ValueError(f"ratio = {self.ratio} must be in (0, 1]")
        if self.calibration_samples < 1:
            raise ValueError("calibration_samples must be >= 1")


def mode(bits: Literal["int8", "int4"], symmetric: bool) -> Any:
    import nncf

    return getattr(nncf.CompressWeightsMode, f"{bits.upper()}_{'SYM' if symmetric else 'ASYM'}")


def calibration(ctx: RunContext, samples: int) -> Any:
    """The task's calibration batches as an ``nncf.Dataset`` (NNCF traces the model on them)."""
    import nncf

    if ctx.task is None:
        raise Skip("NNCF traces the model on a task's data; this run has none")
    batches = ctx.task.calibration_batches(samples, 1)  # one sample per item: NNCF's subset_size counts items
    if not batches:
        raise Skip("the task has no calibration data for NNCF to trace the model with")
    return nncf.Dataset(batches)


def compressed(model: Any) -> dict[str, Any]:
    """What NNCF left in ``model``: the decompressors it hooked (one per compressed weight),
    their kinds, and the bytes of the weights as stored."""
    import torch

    kinds: dict[str, int] = {}
    for module in model.modules():
        name = type(module).__name__
        if name.endswith("WeightsDecompressor"):
            kinds[name] = kinds.get(name, 0) + 1
    packed = sum(p.numel() for p in model.parameters() if p.dtype == torch.uint8)
    return {"decompressors": kinds, "layers_touched": sum(kinds.values()), "packed_weight_bytes": packed}


class _NNCFWeights(Method):
    family = "quantization"
    needs = ("calibration",)
    requires = ("nncf",)
    bits: ClassVar[Literal["int8", "int4"]]

    def check(self, model: Any, ctx: RunContext) -> str | None:
        if not ctx.device.startswith("cpu") and not ctx.device.startswith("cuda"):
            return f"NNCF's PyTorch backend runs on CPU or CUDA, not {ctx.device}"
        return None

    def options(self, params: Any) -> dict[str, Any]:
        return {"mode": mode(self.bits, params.symmetric)}

    def samples(self, params: Any) -> int:
        """Calibration samples NNCF gets: one to trace the model where the mode is data-free."""
        return 1

    def apply(self, model: Any, params: Any, ctx: RunContext) -> tuple[Any, dict[str, Any]]:
        import nncf

        before = count_params(model)
        options = self.options(params)
        try:
            out = nncf.compress_weights(model, dataset=calibration(ctx, self.samples(params)),
                                        subset_size=self.samples(params), **options)
        except nncf.errors.InvalidGroupSizeError as exc:  # e.g. group_size 128 on a layer of 64 inputs
            raise Skip(f"NNCF: {str(exc).splitlines()[0]} (a smaller group_size fits)") from exc
        found = compressed(out)
        if not found["layers_touched"]:
            raise Skip("NNCF compressed no weight of this model (it found no Linear/Embedding/Conv layer to compress)")
        return out, {
            **found,
            "nncf_options": {k: str(v) for k, v in options.items()},
            "params_before": before,
            "params_after": count_params(out),
            "kernels": "simulated (weights stored packed; NNCF decompresses each to float32 before its matmul)",
            "library": library("nncf"),
        }


class Int8Weights(_NNCFWeights):
    name = "nncf.int8-weights"
    description = "NNCF compress_weights INT8 on the torch model: 8-bit weights per channel, float compute"
    Params = Int8Params
    bits = "int8"


class Int4Weights(_NNCFWeights):
    name = "nncf.int4-weights"
    description = "NNCF compress_weights INT4 on the torch model: 4-bit weights in groups (AWQ, scale estimation optional)"
    Params = Int4Params
    bits = "int4"

    def options(self, params: Any) -> dict[str, Any]:
        return {"mode": mode("int4", params.symmetric), "group_size": params.group_size, "ratio": params.ratio,
                "all_layers": params.all_layers, "awq": params.awq, "scale_estimation": params.scale_estimation}

    def samples(self, params: Any) -> int:
        return params.calibration_samples if params.awq or params.scale_estimation else 1


@hookimpl
def harness_register_methods(register: Any) -> None:
    register(Int8Weights)
    register(Int4Weights)
