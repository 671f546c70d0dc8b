"""ONNX Runtime's own int8 quantization (``onnxruntime.quantization``), applied to the
graph the ``onnxruntime`` runtime exported:

- ``ort.int8-dynamic``: ``quantize_dynamic`` — int8 weights, activations quantized at run
  time (``DynamicQuantizeLinear`` + ``MatMulInteger``/``ConvInteger``); no data.
- ``ort.int8-static``: ``quantize_static`` in the QDQ format — int8 weights and uint8
  activations with scales calibrated (MinMax) on the task's calibration batches.

Both quantize only the weight-carrying ops by default (``MatMul``, ``Gemm``, ``Conv``):
quantizing every op's input gives a cosine of 0.43 against the float model on MiniLM
(0.92 restricted to the weight MatMuls, per channel). ``quant_pre_process`` (shape
inference and ONNX Runtime's own optimisation) runs first, as its docs recommend.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from harness.api import Method, RunContext, Skip
from harness.toolkit import Graph, library

WEIGHT_OPS = ["MatMul", "Gemm", "Conv"]


def _pre_processed(graph: Graph) -> tuple[Path, str]:
    """The graph after ``quant_pre_process``, or as it is when that cannot run."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source = Path(graph.form).resolve()
    out = (Path(graph.work_dir) / f"pre-{source.name}").resolve()
    # Where symbolic shape inference is incomplete, ONNX Runtime saves its partial graph
    # (sym_shape_infer_temp.onnx and uuid-named .data files) into the working directory:
    # that is the run's work folder here, never the user's.
    here = os.getcwd()
    try:
        os.chdir(graph.work_dir)
        quant_pre_process(str(source), str(out), skip_symbolic_shape=False)
        return out, "quant_pre_process"
    except Exception as exc:  # noqa: BLE001 - an optimisation, not a requirement
        return Path(graph.form), f"without quant_pre_process ({type(exc).__name__})"
    finally:
        os.chdir(here)


def _check_ops(ops: list[str]) -> list[str]:
    unknown = [op for op in ops if op not in WEIGHT_OPS + ["Add", "Mul", "Relu", "Attention", "Gather", "Softmax",
                                                          "Sigmoid", "Transpose", "Concat", "MaxPool", "AveragePool",
                                                          "GlobalAveragePool", "LeakyRelu", "Where", "Resize"]]
    return unknown


@dataclass(frozen=True)
class DynamicParams:
    per_channel: bool = True
    reduce_range: bool = False  # 7-bit weights, for CPUs without VNNI where 8-bit can saturate
    op_types: list[str] = field(default_factory=lambda: list(WEIGHT_OPS))

    def __post_init__(self) -> None:
        unknown = _check_ops(self.op_types)
        if unknown or not self.op_types:
            raise ValueError(f"op_types {unknown or self.op_types} are not ONNX ops ONNX Runtime quantizes; "
                             f"e.g. {WEIGHT_OPS}")


class OrtInt8Dynamic(Method):
    name = "ort.int8-dynamic"
    family = "quantization"
    runtime: ClassVar[str | None] = "onnxruntime"
    description = "ONNX Runtime quantize_dynamic: int8 weights, activations quantized at run time"
    Params = DynamicParams

    def apply(self, graph: Graph, params: DynamicParams, ctx: RunContext) -> tuple[Graph, dict[str, Any]]:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        source, pre = _pre_processed(graph)
        out = Path(graph.work_dir) / f"int8-dynamic-{Path(graph.form).name}"
        quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8, per_channel=params.per_channel,
                         reduce_range=params.reduce_range, op_types_to_quantize=list(params.op_types))
        graph.form = out
        return graph, {"bits": 8, "weights": "int8" + (" per channel" if params.per_channel else " per tensor"),
                       "activations": "int8, quantized at run time", "ops": list(params.op_types),
                       "kernels": "real", "library": library("onnxruntime"), "how": f"quantize_dynamic, {pre}"}


@dataclass(frozen=True)
class StaticParams:
    per_channel: bool = True
    calibration_samples: int = 256
    calibration_method: str = "MinMax"  # MinMax | Entropy | Percentile
    op_types: list[str] = field(default_factory=lambda: list(WEIGHT_OPS))

    def __post_init__(self) -> None:
        if self.calibration_method not in ("MinMax", "Entropy", "Percentile"):
            raise ValueError(f"calibration_method {self.calibration_method!r} must be MinMax, Entropy or Percentile")
        if not 1 <= self.calibration_samples <= 100_000:
            raise ValueError("calibration_samples must be in 1..100000")
        unknown = _check_ops(self.op_types)
        if unknown or not self.op_types:
            raise ValueError(f"op_types {unknown or self.op_types} are not ONNX ops ONNX Runtime quantizes; "
                             f"e.g. {WEIGHT_OPS}")


class OrtInt8Static(Method):
    name = "ort.int8-static"
    family = "quantization"
    needs = ("calibration",)
    runtime: ClassVar[str | None] = "onnxruntime"
    description = "ONNX Runtime quantize_static (QDQ): int8 weights, uint8 activations calibrated on the task's data"
    Params = StaticParams

    def apply(self, graph: Graph, params: StaticParams, ctx: RunContext) -> tuple[Graph, dict[str, Any]]:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )

        if ctx.task is None:
            raise Skip("static quantization calibrates on a task's data; this run has none")
        batches = ctx.task.calibration_batches(params.calibration_samples, 32)
        feeds = [graph.feeds(b) for b in batches]
        if not feeds:
            raise Skip("the task has no calibration data")

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.items = iter(feeds)

            def get_next(self) -> dict[str, Any] | None:
                return next(self.items, None)

        source, pre = _pre_processed(graph)
        out = Path(graph.work_dir) / f"int8-static-{Path(graph.form).name}"
        quantize_static(str(source), str(out), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        per_channel=params.per_channel, op_types_to_quantize=list(params.op_types),
                        calibrate_method=getattr(CalibrationMethod, params.calibration_method))
        graph.form = out
        samples = sum(len(next(iter(f.values()))) for f in feeds)
        return graph, {"bits": 8, "weights": "int8" + (" per channel" if params.per_channel else " per tensor"),
                       "activations": f"uint8, {params.calibration_method} on {samples} calibration samples",
                       "format": "QDQ", "ops": list(params.op_types), "kernels": "real",
                       "library": library("onnxruntime"), "how": f"quantize_static, {pre}"}


METHODS = (OrtInt8Dynamic, OrtInt8Static)
