"""``openvino``: the model exported to ONNX, converted to an ``openvino.Model``
(``openvino.convert_model``) and compiled for OpenVINO's CPU device.

The compiled model uses the run's thread budget (``INFERENCE_NUM_THREADS`` = torch's
threads) and these choices, each for a comparison with the other runtimes:

- ``PERFORMANCE_HINT = LATENCY``: one inference stream, as torch and ONNX Runtime run one
  call at a time (the THROUGHPUT hint would split the threads into parallel streams that
  the harness's one caller never fills).
- ``INFERENCE_PRECISION_HINT = f32``: on CPUs with bfloat16 units (AVX512-BF16, AMX)
  OpenVINO computes float layers in bfloat16 by default, which changes the model's outputs
  (0.03 in the digits CNN's logits); the runtime runs the model in the precision the torch
  baseline has, and int8/int4 layers of a compressed model still run in theirs.
- ``ENABLE_CPU_PINNING = False``: the harness may run several runs side by side, each
  with its own thread budget and no affinity of its own; OpenVINO's pinning would put each
  run's threads on the same first cores (torch and ONNX Runtime do not pin either).

``kernels()`` are the compute layers of the executable graph OpenVINO built, as
``layerType:runtimePrecision`` (e.g. ``FullyConnected:u8``, ``Convolution:f32``): its
``rt_info``, not a profile of calls, since a CPU compiled model runs that one graph. For a
FullyConnected layer with int8/int4 weights only (``nncf.compress_weights``), the
precision is its weights' (decompressed inside the kernel, which computes in f32); its
``primitiveType`` tells them apart (``..._I8`` for int8 compute), see :func:`layers`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, ClassVar

from harness.api import RunContext, Runtime
from harness.toolkit import Graph, export_onnx, installed_version

# Layer types of OpenVINO's CPU executable graph that compute (GEMMs, convolutions,
# attention, recurrences; LLMMLP and QKVProjection are its fused LLM blocks).
COMPUTE = {"FullyConnected", "Convolution", "Deconvolution", "MatMul", "ScaledAttn", "RNNSeq", "RNNCell", "LLMMLP",
           "QKVProjection"}


def weight_bytes(model: Any) -> int:
    """Bytes of an ``openvino.Model``'s constants in their stored types (int4 packed two to
    a byte): what ``openvino.save_model(model, ..., compress_to_fp16=False)`` writes."""
    return sum(op.get_byte_size() for op in model.get_ordered_ops() if op.get_type_name() == "Constant")


def layers(compiled: Any) -> list[tuple[str, str, str]]:
    """(layerType, runtimePrecision, primitiveType) of each layer of a compiled model's
    executable graph, in execution order."""
    out = []
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        out.append(tuple(info[k].astype(str) if k in info else "" for k in
                         ("layerType", "runtimePrecision", "primitiveType")))
    return out


class OvRun:
    """Runs one compiled model on lists of numpy arrays, through one infer request kept for
    every call (calls from one caller, one at a time).

    Inputs are set by index as tensors over the caller's arrays (no copy) and the request
    runs synchronously: half the overhead of ``InferRequest.infer(list)`` (60 µs against
    140 µs a call for the digits CNN), whose input dispatch and result dict cost the rest.
    """

    def __init__(self, compiled: Any, weights: int):
        import numpy as np
        import openvino as ov

        self.compiled, self.weight_bytes = compiled, weights
        self.request = compiled.create_infer_request()
        self.n_outputs = len(compiled.outputs)
        self._tensor, self._contiguous = ov.Tensor, np.ascontiguousarray

    def __call__(self, arrays: list[Any]) -> list[Any]:
        for i, array in enumerate(arrays):
            self.request.set_input_tensor(i, self._tensor(self._contiguous(array), shared_memory=True))
        self.request.infer()
        # OpenVINO reuses its output buffers on the next call: each output is copied out.
        return [self.request.get_output_tensor(i).data.copy() for i in range(self.n_outputs)]

    def kernels(self) -> list[str]:
        """``layerType:runtimePrecision`` of the compute layers OpenVINO runs, each once."""
        found = [f"{kind}:{precision}" for kind, precision, _ in layers(self.compiled) if kind in COMPUTE]
        return list(dict.fromkeys(found))


class OpenVino(Runtime):
    name = "openvino"
    description = "OpenVINO: the model exported to ONNX, converted and compiled for the CPU device"
    libraries: ClassVar[tuple[str, ...]] = ("openvino", "onnx", "onnxscript")
    # No preload: importing openvino starts the sender thread of its telemetry (on unless
    # `opt_in_out --opt_out`), and a fork server with a thread running forks no warm worker.
    requires: ClassVar[tuple[str, ...]] = ("openvino", "onnx", "onnxscript")

    def check(self, model: Any, ctx: RunContext) -> str | None:
        try:
            import openvino  # noqa: F401
        except ImportError:
            return "openvino is not installed: pip install 'compression-harness[runtimes]'"
        if not ctx.device.startswith("cpu"):
            return (f"the openvino runtime runs on the CPU only (this run's device is {ctx.device}): OpenVINO's "
                    "'GPU' device is an Intel GPU, not an NVIDIA one; use device = \"cpu\"")
        return None

    def export(self, module: Any, inputs: tuple[Any, ...], names: list[str], outputs: list[str],
               ctx: RunContext) -> Graph:
        import openvino as ov

        folder = ctx.work_dir / "openvino"
        folder.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="graph-", dir=folder))  # one per call signature
        path = folder / "model.onnx"
        how = export_onnx(module, inputs, names, outputs, path)
        model = ov.convert_model(str(path))
        examples = [x.detach().cpu().numpy() for x in inputs]
        return Graph(model, names, outputs, examples, folder,
                     notes=[how, f"openvino.convert_model of the ONNX graph, openvino {installed_version('openvino')}"])

    def save(self, graph: Graph, folder: Path) -> Path | None:
        """The OpenVINO IR (``model.xml`` + ``model.bin``), weights as stored."""
        import openvino as ov

        folder.mkdir(parents=True, exist_ok=True)
        ov.save_model(graph.form, str(folder / "model.xml"), compress_to_fp16=False)
        return folder / "model.xml"

    def load(self, graph: Graph, ctx: RunContext) -> OvRun:
        import openvino as ov
        import torch

        threads = torch.get_num_threads()  # the run's thread budget, as torch has
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_PRECISION_HINT": "f32", "ENABLE_CPU_PINNING": False}
        compiled = ov.Core().compile_model(graph.form, "CPU", config)
        graph.notes.append(f"compiled for CPU: {threads} thread(s), LATENCY hint, f32 inference precision, "
                           "no CPU pinning")
        return OvRun(compiled, weight_bytes(graph.form))
