"""Runtimes the compressed model runs in for its evaluation and timing — ``torch``
(eager; ``[measure] compile`` adds torch.compile), ``onnxruntime`` and ``openvino`` —
and the runtimes' own compression methods (ONNX Runtime's int8 quantization, OpenVINO's
through NNCF), which run on the model the runtime exported."""

from __future__ import annotations

from harness import hookimpl


@hookimpl
def harness_register_runtimes(register):
    from harness_plugins.runtimes.torch_runtime import TorchRuntime

    register(TorchRuntime)
    register("harness_plugins.runtimes.onnxruntime:OnnxRuntime", name="onnxruntime")
    register("harness_plugins.runtimes.openvino:OpenVino", name="openvino")


@hookimpl
def harness_register_methods(register):
    from harness_plugins.runtimes import nncf_methods, ort_methods

    for method in ort_methods.METHODS + nncf_methods.METHODS:
        register(method)
