"""OpenVINO's own compression through NNCF, applied to the ``openvino.Model`` the
``openvino`` runtime converted:

- ``ov.int8``: ``nncf.quantize`` — post-training quantization: int8 weights (per channel)
  and int8/uint8 activations whose ranges are calibrated on the task's calibration
  samples, with fast bias correction. OpenVINO's CPU plugin runs the quantized
  Convolution/FullyConnected/MatMul layers with int8 kernels.
- ``ov.int8-weights``: ``nncf.compress_weights`` in INT8 mode — int8 weights per output
  channel, activations in float; no data.
- ``ov.int4-weights``: ``nncf.compress_weights`` in INT4 mode — 4-bit weights in groups of
  ``group_size`` along the input; data-free unless ``awq`` or ``scale_estimation`` asks
  for the task's calibration samples (NNCF skips AWQ, with a log line, where it finds none
  of its patterns: LLM MLP blocks have them, BERT encoders do not). As NNCF does by
  default, the embeddings and the last layer stay in int8 (``all_layers = true`` makes
  them 4-bit too), and so do convolutions.

For a transformer (BERT, MiniLM, ...), give ``ov.int8`` ``params = { model_type =
"transformer" }``: NNCF then runs SmoothQuant first (alpha 0.95 on the MatMuls), leaves
the ops of its transformer patterns in float, and its ``preset`` defaults to ``mixed``
(asymmetric activations). On all-MiniLM-L6-v2 fine-tuned for a small sentiment task the
default lost 2.5 points of accuracy (86.25 % against 88.75 %); ``transformer`` lost none.

Calibration samples go to NNCF one per item (batch size 1, each text at its own length),
as NNCF expects: its ``subset_size`` counts items, and statistics over batched items are
less exact (NNCF warns about them). Nothing is preloaded: importing nncf imports openvino,
whose telemetry starts a thread (see the ``openvino`` runtime).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from harness.api import Method, RunContext, Skip
from harness.toolkit import Graph, library

# element types NNCF stores compressed weights in, and their bits
LOW_BITS = {"i8": 8, "u8": 8, "i4": 4, "u4": 4, "nf4": 4}


def compressed_weights(model: Any) -> dict[str, tuple[int, int]]:
    """{element type: (tensors, values)} of the low-bit weight constants of an
    ``openvino.Model``: constants of rank 2 or more stored as int8/uint8/int4/uint4/nf4,
    except the zero points of asymmetric weights (NNCF names them ``.../zero_point``)."""
    out: dict[str, tuple[int, int]] = {}
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Constant" or len(op.get_output_shape(0)) < 2 \
                or op.get_friendly_name().endswith("zero_point"):
            continue
        kind = op.get_output_element_type(0).get_type_name()
        if kind in LOW_BITS:
            tensors, values = out.get(kind, (0, 0))
            size = 1
            for dim in op.get_output_shape(0):
                size *= dim
            out[kind] = (tensors + 1, values + size)
    return out


def weights_info(model: Any) -> dict[str, Any]:
    """What an NNCF-compressed model holds: ``weights_by_type`` (tensors and values per
    element type) and ``bits_per_weight`` (their mean bits, scales apart)."""
    found = compressed_weights(model)
    values = sum(v for _, v in found.values())
    if not values:
        raise Skip("NNCF compressed no weight of this model (no layer it can compress)")
    bits = sum(LOW_BITS[k] * v for k, (_, v) in found.items()) / values
    return {"weights_by_type": {k: {"tensors": t, "values": v} for k, (t, v) in found.items()},
            "bits_per_weight": round(bits, 3), "layers_touched": sum(t for t, _ in found.values())}


def samples(graph: Graph, ctx: RunContext, n: int) -> list[dict[str, Any]]:
    """The task's first ``n`` calibration samples as the graph's feeds, one per item."""
    if ctx.task is None:
        raise Skip("calibration needs a task's data; this run has none")
    items = [graph.feeds(batch) for batch in ctx.task.calibration_batches(n, 1)]
    if not items:
        raise Skip("the task has no calibration data")
    return items


def libraries() -> str:
    return f"{library('nncf')}, {library('openvino')}"


@dataclass(frozen=True)
class Int8Params:
    calibration_samples: int = 300  # NNCF's subset_size
    preset: Literal["auto", "performance", "mixed"] = "auto"  # auto: NNCF's (mixed for transformers)
    model_type: Literal["", "transformer"] = ""
    fast_bias_correction: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.calibration_samples <= 100_000:
            raise ValueError("calibration_samples must be in 1..100000")


class OvInt8(Method):
    name = "ov.int8"
    family = "quantization"
    needs = ("calibration",)
    runtime: ClassVar[str | None] = "openvino"
    description = "NNCF post-training quantization for OpenVINO: int8 weights and activations calibrated on the task"
    Params = Int8Params
    requires = ("nncf", "openvino")

    def apply(self, graph: Graph, params: Int8Params, ctx: RunContext) -> tuple[Graph, dict[str, Any]]:
        import nncf

        items = samples(graph, ctx, params.calibration_samples)
        options: dict[str, Any] = {"subset_size": len(items), "fast_bias_correction": params.fast_bias_correction}
        if params.preset != "auto":
            options["preset"] = nncf.QuantizationPreset(params.preset)
        if params.model_type:
            options["model_type"] = nncf.ModelType(params.model_type)
        graph.form = nncf.quantize(graph.form, nncf.Dataset(items), **options)
        preset = params.preset if params.preset != "auto" else ("mixed" if params.model_type else "performance")
        return graph, {"bits": 8, **weights_info(graph.form),
                       "weights": "int8, symmetric, per output channel",
                       "activations": f"int8 ({preset} preset: {'asymmetric' if preset == 'mixed' else 'symmetric'}"
                                      f"), ranges calibrated on {len(items)} samples",
                       "model_type": params.model_type or "default", "calibration_samples": len(items),
                       "kernels": "real (OpenVINO's CPU int8 kernels: the quantized layers run u8/i8 × i8)",
                       "library": libraries(),
                       "how": "nncf.quantize" + (" (SmoothQuant first)" if params.model_type else "")}


@dataclass(frozen=True)
class Int8WeightsParams:
    symmetric: bool = False  # INT8_SYM: no zero point; default INT8_ASYM, as NNCF


class OvInt8Weights(Method):
    name = "ov.int8-weights"
    family = "quantization"
    runtime: ClassVar[str | None] = "openvino"
    description = "NNCF weight compression for OpenVINO: int8 weights per channel, float activations; no data"
    Params = Int8WeightsParams
    requires = ("nncf", "openvino")

    def apply(self, graph: Graph, params: Int8WeightsParams, ctx: RunContext) -> tuple[Graph, dict[str, Any]]:
        import nncf

        mode = nncf.CompressWeightsMode.INT8_SYM if params.symmetric else nncf.CompressWeightsMode.INT8_ASYM
        graph.form = nncf.compress_weights(graph.form, mode=mode)
        return graph, {"bits": 8, **weights_info(graph.form),
                       "weights": f"int8 {'symmetric' if params.symmetric else 'asymmetric'}, per output channel",
                       "activations": "float (not quantized)", "calibration_samples": 0,
                       "kernels": "real (int8 weights stay int8 in memory and are decompressed inside OpenVINO's "
                                  "FullyConnected kernels, which compute in f32; a Convolution's are decompressed "
                                  "once when the model is compiled)",
                       "library": libraries(), "how": f"nncf.compress_weights(mode={mode.name})"}


@dataclass(frozen=True)
class Int4WeightsParams:
    group_size: int = 128  # weights per scale along the input; -1: one scale per output channel
    ratio: float = 1.0  # share of the layers in 4-bit (the others int8), by NNCF's sensitivity
    symmetric: bool = True  # INT4_SYM; false: INT4_ASYM (a zero point per group)
    all_layers: bool = False  # also the embeddings and the last layer (NNCF keeps them in int8)
    awq: bool = False  # activation-aware scaling: needs the task's calibration samples
    scale_estimation: bool = False  # scales fitted to the layer outputs: needs calibration samples
    calibration_samples: int = 128  # NNCF's subset_size, for awq / scale_estimation

    def __post_init__(self) -> None:
        if self.group_size != -1 and not 1 <= self.group_size <= 4096:
            raise ValueError("group_size must be -1 (per channel) or in 1..4096, e.g. 32, 64 or 128")
        if not 0.0 < self.ratio <= 1.0:
            raise ValueError("ratio must be in (0, 1]")
        if not 1 <= self.calibration_samples <= 100_000:
            raise ValueError("calibration_samples must be in 1..100000")


class OvInt4Weights(Method):
    name = "ov.int4-weights"
    family = "quantization"
    runtime: ClassVar[str | None] = "openvino"
    description = ("NNCF weight compression for OpenVINO: int4 weights in groups (embeddings and last layer int8), "
                   "float activations; data-free unless awq/scale_estimation")
    Params = Int4WeightsParams
    requires = ("nncf", "openvino")

    def apply(self, graph: Graph, params: Int4WeightsParams, ctx: RunContext) -> tuple[Graph, dict[str, Any]]:
        import nncf

        mode = nncf.CompressWeightsMode.INT4_SYM if params.symmetric else nncf.CompressWeightsMode.INT4_ASYM
        options: dict[str, Any] = {"mode": mode, "group_size": params.group_size, "ratio": params.ratio,
                                   "all_layers": params.all_layers}
        items: list[dict[str, Any]] = []
        if params.awq or params.scale_estimation:
            items = samples(graph, ctx, params.calibration_samples)
            options |= {"dataset": nncf.Dataset(items), "subset_size": len(items), "awq": params.awq,
                        "scale_estimation": params.scale_estimation}
        graph.form = nncf.compress_weights(graph.form, **options)
        info = weights_info(graph.form)
        four = sum(v["tensors"] for k, v in info["weights_by_type"].items() if LOW_BITS[k] == 4)
        kept = "" if params.all_layers else ", the embeddings and the last layer"
        return graph, {"bits": 4, **info,
                       "weights": f"int4 {'symmetric' if params.symmetric else 'asymmetric'}, group "
                                  f"{params.group_size}: {four} of {info['layers_touched']} weight tensors; the "
                                  f"others int8 (NNCF's backup: convolutions{kept}, and 1 - ratio of the rest)",
                       "group_size": params.group_size, "activations": "float (not quantized)",
                       "calibration_samples": len(items),
                       "data_aware_asked": [n for n in ("awq", "scale_estimation") if getattr(params, n)],
                       "kernels": "real (int4 weights stay packed in memory and are decompressed inside OpenVINO's "
                                  "FullyConnected kernels, which compute in f32)",
                       "library": libraries(), "how": f"nncf.compress_weights(mode={mode.name})"}


METHODS = (OvInt8, OvInt8Weights, OvInt4Weights)
