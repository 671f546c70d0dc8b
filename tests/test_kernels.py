"""Kernel truth from what ran: real methods on a tiny model, profiled, and their claims of
real kernels confirmed or contradicted; ONNX Runtime's and OpenVINO's op names classified."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from harness.api import RunContext
from harness.config import MeasureConfig
from harness.measure.kernels import LOW, claimed_kernels, measure_kernels, runtime_kind


def tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32), torch.nn.ReLU(),
                               torch.nn.Linear(32, 4)).eval()


def example() -> torch.Tensor:
    return torch.randn(2, 16, generator=torch.Generator().manual_seed(1))


def compressed(name: str, tmp_path: Path, **table: Any) -> tuple[Any, list[dict[str, Any]]]:
    """``tiny()`` compressed by the real method ``name``, and the worker's steps record."""
    from harness.params import build
    from harness.plugins import load_plugins

    cls = load_plugins().lookup("method", name)
    problems: list[str] = []
    params = build(cls.Params, table, name, problems)
    ctx = RunContext(device="cpu", seed=0, work_dir=tmp_path, suite_dir=tmp_path)
    model, info = cls().apply(tiny(), params, ctx)
    return model.eval(), [{"use": name, "params": table, "info": info}]


def kernels_of(model: Any, steps: list[dict[str, Any]]) -> tuple[Any, list[str], str]:
    f = measure_kernels(model, example, 2, "cpu", claimed_kernels(steps))
    return f.metrics.get("kernels"), f.metrics.get("kernels_seen", []), f.provenance["kernels"]


def test_int8_dynamic_is_confirmed_real_by_the_kernel_that_ran(tmp_path: Path) -> None:
    model, steps = compressed("quant.int8-dynamic", tmp_path)
    verdict, seen, why = kernels_of(model, steps)
    assert verdict == "real" and seen == ["quantized::linear_dynamic"]
    assert why.startswith("measured: claimed real by quant.int8-dynamic; the profiler saw quantized::linear_dynamic")


def test_a_simulated_method_stays_simulated(tmp_path: Path) -> None:
    model, steps = compressed("quant.int8-weight", tmp_path)  # torchao: int8 storage, float matmul
    assert steps[0]["info"]["kernels"].startswith("simulated")
    verdict, seen, why = kernels_of(model, steps)
    assert verdict == "simulated" and "aten::mm (float32)" in seen
    assert "as quant.int8-weight says; the profiler saw only aten::mm (float32)" in why


def test_a_claim_of_real_kernels_that_did_not_run_is_shown_simulated(tmp_path: Path) -> None:
    model, steps = compressed("quant.int8-weight", tmp_path)
    steps[0]["info"]["kernels"] = "real (int8 GEMM)"  # what the method believed
    verdict, seen, why = kernels_of(model, steps)
    assert verdict == "simulated" and seen == ["aten::mm (float32)"]
    assert why.startswith("measured: claimed real by quant.int8-weight, but the profiler saw only aten::mm (float32)")


def test_bf16_is_real_when_the_gemm_ran_in_bf16_and_a_dense_model_claims_nothing(tmp_path: Path) -> None:
    model, steps = compressed("quant.bf16", tmp_path)
    verdict, seen, _ = kernels_of(model, steps)
    assert verdict == "real" and seen == ["aten::addmm (bfloat16)"]
    steps[0]["info"]["kernels"] = "real"
    assert kernels_of(tiny(), steps)[0] == "simulated"  # a bf16 claim on float32 GEMMs
    baseline = [{"use": "baseline", "info": {"changed": "nothing", "kernels": "real"}}]
    assert claimed_kernels(baseline) is None
    verdict, _, why = kernels_of(tiny(), baseline)
    assert verdict == "real" and "no step claims low-precision or sparse kernels" in why


def test_the_claim_that_counts_in_a_chain() -> None:
    steps = [{"use": "prune.magnitude", "info": {"kernels": "simulated (zeros in dense tensors)"}},
             {"use": "train.finetune", "info": {"kernels": "real"}},
             {"use": "quant.int8-dynamic", "info": {"kernels": "real (fbgemm/x86 int8 GEMM)", "bits_per_weight": 8}}]
    assert claimed_kernels(steps) == "quant.int8-dynamic: real (fbgemm/x86 int8 GEMM)"
    assert claimed_kernels(steps[:2]) == "prune.magnitude: simulated (zeros in dense tensors)"
    assert claimed_kernels(steps[1:2]) is None


def test_no_profiler_leaves_the_figure_absent_and_the_claim_a_claim() -> None:
    def broken(x: Any) -> Any:
        raise RuntimeError("profiler already running")

    f = measure_kernels(broken, example, 2, "cpu", "quant.int8-dynamic: real (fbgemm/x86 int8 GEMM)")
    assert "kernels" not in f.metrics and "kernels_seen" not in f.metrics
    assert f.provenance["kernels"].startswith("absent: the profiler could not run: RuntimeError")
    assert f.provenance["kernels"].endswith("quant.int8-dynamic claims real (fbgemm/x86 int8 GEMM): a claim, not confirmed")


class Ran:
    """A model another runtime runs, as the timer sees it: callable, with ``kernels()``."""

    runtime = "onnxruntime"

    def __init__(self, run: Any, names: list[str] | None):
        self.run, self.names = run, names

    def __call__(self, x: Any) -> Any:
        return self.run(x)

    def kernels(self) -> list[str] | None:
        return self.names


def ort_ops(path: Path, x: Any, work: Path) -> list[str]:
    """The op types one ONNX Runtime call ran, from its own profile."""
    ort = pytest.importorskip("onnxruntime")
    options = ort.SessionOptions()
    options.enable_profiling, options.profile_file_prefix = True, str(work / "ort")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    session.run(None, {"x": x})
    events = json.loads(Path(session.end_profiling()).read_text())
    return [e["args"]["op_name"] for e in events if e.get("cat") == "Node" and "op_name" in e.get("args", {})]


def test_an_onnx_runtime_int8_model_classifies_as_real_int8(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
               for n, s in (("w1", (16, 32)), ("w2", (32, 4)))]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["y"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, tmp_path / "float.onnx")
    quantize_dynamic(tmp_path / "float.onnx", tmp_path / "int8.onnx", weight_type=QuantType.QInt8)
    x = example().numpy()
    ops = ort_ops(tmp_path / "int8.onnx", x, tmp_path)
    assert "DynamicQuantizeMatMul" in ops and runtime_kind("DynamicQuantizeMatMul") == LOW
    f = measure_kernels(Ran(lambda t: t, ops), example, 2, "cpu", "ort.int8-dynamic: real (MLAS int8 GEMM)")
    assert f.metrics["kernels"] == "real" and f.metrics["kernels_seen"] == ["DynamicQuantizeMatMul"]
    assert f.provenance["kernels_seen"].startswith("measured: onnxruntime's own report of the ops one call")
    floats = ort_ops(tmp_path / "float.onnx", x, tmp_path)
    f = measure_kernels(Ran(lambda t: t, floats), example, 2, "cpu", "ort.int8-dynamic: real (MLAS int8 GEMM)")
    assert f.metrics["kernels"] == "simulated" and "MatMul" in f.metrics["kernels_seen"]
    f = measure_kernels(Ran(lambda t: t, None), example, 2, "cpu", None)
    assert f.provenance["kernels"] == "absent: onnxruntime does not report the ops it ran"


@pytest.mark.parametrize(("name", "kind"), [
    ("MatMulInteger", "low-precision"), ("ConvInteger", "low-precision"), ("QLinearMatMul", "low-precision"),
    ("QLinearConv", "low-precision"), ("MatMulNBits", "low-precision"), ("FusedGemm", "float"),
    ("DynamicQuantizeLinear", None), ("DequantizeLinear", None),
    ("FullyConnected:i8", "low-precision"), ("FullyConnected:u8", "low-precision"), ("FullyConnected:i4", "low-precision"),
    ("Convolution:bf16", "half-precision"), ("FullyConnected:f32", "float"), ("FakeQuantize:f32", None),
    ("Reorder:u8", None),
])
def test_runtime_op_names_as_onnx_runtime_and_openvino_report_them(name: str, kind: str | None) -> None:
    assert runtime_kind(name) == kind


def test_the_session_profiles_after_timing_with_the_workers_claim(tmp_path: Path) -> None:
    from harness.measure.session import MeasurementSession

    class Task:
        def example_input(self, batch_size: int) -> torch.Tensor:
            return torch.randn(batch_size, 16, generator=torch.Generator().manual_seed(1))

        def extra_measurements(self, model: Any, config: Any) -> tuple[dict, dict]:
            return {}, {}

    model, steps = compressed("quant.int8-dynamic", tmp_path)
    config = MeasureConfig(batch_sizes=[2], warmup_s=0.0, min_time_s=0.01, min_iterations=3, max_time_s=0.05,
                           energy=False, sustained_s=0.0)
    with MeasurementSession("cpu", config) as session:
        session.measure(model, Task(), claimed=claimed_kernels(steps))
    metrics, provenance = session.figures.metrics, session.figures.provenance
    assert "latency_ms_p50" in metrics and metrics["kernels"] == "real"
    assert "one forward at batch 2, after the timing" in provenance["kernels_seen"]


def test_the_report_shows_the_profilers_verdict_over_the_claim() -> None:
    from harness.report.summary import kernel_lines
    from harness.result import RunResult

    infos = [{"kernels": "real (fbgemm int8 GEMM)"}, {"kernels": "real"}]
    seen = RunResult("r1", "s", "m", "int8", "t", "ok", metrics={"kernels": "simulated"}, provenance={
        "kernels": "measured: claimed real by quant.int8-dynamic, but the profiler saw only aten::addmm (float32)"})
    assert kernel_lines(seen, infos) == [
        "simulated (claimed real by quant.int8-dynamic, but the profiler saw only aten::addmm (float32))"]
    unseen = RunResult("r2", "s", "m", "int8", "t", "ok", provenance={"kernels": "absent: the profiler could not run"})
    assert kernel_lines(unseen, infos) == ["real (claimed: fbgemm int8 GEMM)", "real (claimed)"]
