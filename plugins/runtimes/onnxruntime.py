"""``onnxruntime``: the model exported to ONNX and run by ONNX Runtime — the CPU
execution provider, or on ``device = "cuda"`` the TensorRT (where installed) and CUDA
providers, falling back to the CPU for the nodes they cannot take.

The session uses the run's thread budget (``intra_op_num_threads`` = torch's threads),
all graph optimisations, and writes the optimised graph it will execute: its node types
are the kernels this runtime reports (e.g. ``MatMulInteger`` for int8).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from harness.api import RunContext, Runtime
from harness.toolkit import Graph, export_onnx, installed_version, save_files


def onnx_weight_bytes(path: Path) -> int:
    """Bytes of the graph's stored weights (its initializers, in their stored dtypes)."""
    import onnx

    model = onnx.load(str(path))
    total = 0
    for tensor in model.graph.initializer:
        total += len(tensor.raw_data) if tensor.raw_data else onnx.numpy_helper.to_array(tensor).nbytes
    return total


def op_types(path: Path) -> list[str]:
    """The node types of an ONNX graph, each once, in order of first appearance."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return list(dict.fromkeys(node.op_type for node in model.graph.node))


class OrtRun:
    """Runs one ONNX Runtime session on lists of numpy arrays."""

    def __init__(self, session: Any, inputs: list[str], optimized: Path, weights: int):
        self.session, self.inputs, self.optimized, self.weight_bytes = session, inputs, optimized, weights

    def __call__(self, arrays: list[Any]) -> list[Any]:
        return self.session.run(None, dict(zip(self.inputs, arrays)))

    def kernels(self) -> list[str] | None:
        """The node types of the optimised graph the session executes (its providers'
        kernels for those nodes), as ONNX Runtime wrote it."""
        return op_types(self.optimized) if self.optimized.exists() else None


class OnnxRuntime(Runtime):
    name = "onnxruntime"
    description = "ONNX Runtime: the model exported to ONNX (CPU provider; CUDA/TensorRT providers on cuda)"
    libraries: ClassVar[tuple[str, ...]] = ("onnxruntime", "onnx", "onnxscript")
    preload: ClassVar[tuple[str, ...]] = ("onnxruntime", "onnx")
    requires: ClassVar[tuple[str, ...]] = ("onnxruntime", "onnx", "onnxscript")

    def check(self, model: Any, ctx: RunContext) -> str | None:
        try:
            import onnxruntime
        except ImportError:
            return "onnxruntime is not installed: pip install 'compression-harness[runtimes]'"
        if ctx.device.startswith("cuda") and "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            return ("this onnxruntime has no CUDA execution provider (providers: "
                    f"{', '.join(onnxruntime.get_available_providers())}): pip install onnxruntime-gpu")
        return None

    def export(self, module: Any, inputs: tuple[Any, ...], names: list[str], outputs: list[str],
               ctx: RunContext) -> Graph:
        path = _fresh(ctx.work_dir / "onnxruntime", "model.onnx")
        how = export_onnx(module, inputs, names, outputs, path)
        examples = [x.detach().cpu().numpy() for x in inputs]
        return Graph(path, names, outputs, examples, path.parent, notes=[how])

    def save(self, graph: Graph, folder: Path) -> Path | None:
        return save_files(graph, folder)

    def load(self, graph: Graph, ctx: RunContext) -> OrtRun:
        import onnxruntime as ort
        import torch

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # the run's thread budget, as torch has
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: not its note that the saved graph is for this machine
        optimized = _fresh(Path(graph.work_dir), "optimized.onnx")
        options.optimized_model_filepath = str(optimized)
        providers = ["CPUExecutionProvider"]
        if ctx.device.startswith("cuda"):
            index = int(ctx.device.split(":")[1]) if ":" in ctx.device else 0
            available = ort.get_available_providers()
            providers = [(p, {"device_id": index}) for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider")
                         if p in available] + ["CPUExecutionProvider"]
        session = ort.InferenceSession(str(graph.form), options, providers=providers)
        graph.notes.append(f"onnxruntime {installed_version('onnxruntime')}, providers "
                           f"{', '.join(session.get_providers())}, {options.intra_op_num_threads} thread(s)")
        return OrtRun(session, graph.inputs, optimized, onnx_weight_bytes(Path(graph.form)))


def _fresh(folder: Path, name: str) -> Path:
    """``folder/name``, or ``folder/<n>-name`` when an earlier graph of the run has it."""
    folder.mkdir(parents=True, exist_ok=True)
    path, n = folder / name, 1
    while path.exists():
        path, n = folder / f"{n}-{name}", n + 1
    return path
