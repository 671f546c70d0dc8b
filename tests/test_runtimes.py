"""Runtimes as a measured axis: the plan (each runtime with its own baseline, a runtime's
own methods only in it, run ids of torch-only suites unchanged), the suite's errors, the
RuntimeModel's graphs per call signature, and ONNX Runtime's accuracy equal to a session
made directly on the exported graph."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.leaderboard import build_frame
from harness.plan import build_plan
from harness.plugins import load_plugins
from harness.spec import Placement
from harness.suite import SuiteError, load_suite
from harness.worker import run

from conftest import FAST_MEASURE, write_suite

pytest.importorskip("onnxruntime", reason="the runtimes extra (onnxruntime) is not installed")

BODY = """
[suite]
name = "rt"
{measure}
[[models]]
name = "mlp"
source = "builtin"
ref = "digits-mlp"

[[tasks]]
name = "digits"
kind = "classification"
dataset = "digits"

[[methods]]
name = "int8"
use = "quant.int8-dynamic"
{extra}
"""
STATIC = """
[[methods]]
name = "ort-static"
use = "ort.int8-static"
params = { calibration_samples = 64 }
"""


def suite(tmp_path: Path, runtime: str | None, extra: str = "") -> Path:
    measure = FAST_MEASURE + (f"runtime = {runtime}\n" if runtime else "")
    return write_suite(tmp_path, BODY.format(measure=measure, extra=extra))


def test_each_runtime_has_its_baseline_and_a_runtimes_own_method_runs_only_in_it(tmp_path: Path) -> None:
    plugins = load_plugins()
    runs = build_plan(load_suite(suite(tmp_path, '["torch", "onnxruntime"]', STATIC), plugins), plugins)
    assert [r.method for r in runs] == ["baseline", "baseline@onnxruntime", "int8", "int8@onnxruntime",
                                        "ort-static@onnxruntime"]
    assert [r.measure.runtime for r in runs] == ["torch", "onnxruntime", "torch", "onnxruntime", "onnxruntime"]
    # the runtime's library versions are part of the identity of its runs only
    assert "onnxruntime" in runs[1].versions["runtime"] and "runtime" not in runs[0].versions
    # a suite that names no runtime keeps its run ids: torch is the default, left out of ids
    alone = build_plan(load_suite(suite(tmp_path / "..", None), plugins), plugins)
    assert [r.run_id for r in alone] == [runs[0].run_id, runs[2].run_id]


def test_a_runtimes_method_without_its_runtime_and_an_unknown_runtime_are_refused(tmp_path: Path) -> None:
    plugins = load_plugins()
    with pytest.raises(SuiteError) as missing:
        load_suite(suite(tmp_path, None, STATIC), plugins)
    assert "'ort-static' runs in the onnxruntime runtime: add \"onnxruntime\" to [measure] runtime" in str(missing.value)
    with pytest.raises(SuiteError) as unknown:
        load_suite(suite(tmp_path, '["torch", "onxruntime"]'), plugins)
    assert "unknown runtime 'onxruntime'; did you mean 'onnxruntime'?" in str(unknown.value)
    chain = STATIC.replace('use = "ort.int8-static"\nparams = { calibration_samples = 64 }',
                           'steps = [{ use = "ort.int8-dynamic" }, { use = "prune.magnitude" }]')
    with pytest.raises(SuiteError) as order:
        load_suite(suite(tmp_path, '["onnxruntime"]', chain), plugins)
    assert "has a torch step after a onnxruntime step" in str(order.value)


class TwoHeads(torch.nn.Module):
    """Keyword inputs and a dict output, as a Hugging Face model has."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(50, 8)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, input_ids, attention_mask=None):  # noqa: ANN001
        h = self.embed(input_ids)
        if attention_mask is not None:
            h = h * attention_mask.unsqueeze(-1)
        pooled = h.mean(dim=1)
        return {"logits": self.head(pooled), "pooled": pooled}


def test_each_call_signature_gets_its_own_graph_and_the_outputs_keep_their_type(tmp_path: Path) -> None:
    from harness.api import RunContext
    from harness.toolkit import RuntimeModel
    from harness.toolkit.runtimes import Built, flat_module
    from harness_plugins.runtimes.onnxruntime import OnnxRuntime

    torch.manual_seed(0)
    model = TwoHeads().eval()
    runtime, ctx = OnnxRuntime(), RunContext("cpu", 0, tmp_path, tmp_path)

    def build(args, kwargs):  # noqa: ANN001, ANN202
        module, inputs, names, outputs, rebuild = flat_module(model, args, kwargs)
        return Built(runtime.load(runtime.export(module, inputs, names, outputs, ctx), ctx), names, rebuild, 0.0)

    wrapped = RuntimeModel("onnxruntime", model, build)
    ids = torch.randint(0, 50, (4, 7))
    mask = torch.ones(4, 7, dtype=torch.long)
    mask[:, 5:] = 0
    got = wrapped(input_ids=ids, attention_mask=mask)
    want = model(input_ids=ids, attention_mask=mask)
    assert set(got) == {"logits", "pooled"}
    torch.testing.assert_close(got["logits"], want["logits"], rtol=1e-5, atol=1e-5)
    # another batch size and length: the same graph (dynamic dimensions)
    other = torch.randint(0, 50, (1, 3))
    torch.testing.assert_close(wrapped(input_ids=other, attention_mask=torch.ones_like(other))["logits"],
                               model(input_ids=other, attention_mask=torch.ones_like(other))["logits"],
                               rtol=1e-5, atol=1e-5)
    assert len(wrapped.graphs) == 1
    torch.testing.assert_close(wrapped(ids)["logits"], model(ids)["logits"], rtol=1e-5, atol=1e-5)
    assert len(wrapped.graphs) == 2  # the positional call is its own graph, not the keyword one with a guess
    with pytest.raises(AttributeError, match="runs the model's forward only"):
        wrapped.generate  # noqa: B018


def test_onnxruntime_accuracy_is_what_a_session_on_the_exported_graph_computes(tmp_path: Path) -> None:
    method = "ort-static@onnxruntime"
    import onnxruntime as ort

    plugins = load_plugins()
    runs = build_plan(load_suite(suite(tmp_path, '["torch", "onnxruntime"]', STATIC), plugins), plugins)
    spec = dataclasses.replace(next(r for r in runs if r.method == method),
                               placement=Placement(artifacts_dir=str(tmp_path / "art")))
    result = run(spec, plugins)
    assert result.status == "ok", result.error
    m, p = result.metrics, result.provenance
    assert m["runtime_prepare_s"] > 0 and m["load_s"] > 0 and m["first_call_ms"] > 0
    assert "onnxruntime" in p["load_s"] and "first call" in p["first_call_ms"]
    assert "of the onnxruntime graph's stored weights" in p["size_mb"]
    exported = Path(m["exported_graph"])
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    # the task's own evaluation split, fed straight to ONNX Runtime
    from harness.api import RunContext

    task = plugins.lookup("task", "classification")().prepare(spec.task.config, RunContext("cpu", 0, tmp_path, tmp_path))
    x, y = task.x.numpy(), task.y.numpy()
    logits = np.concatenate([session.run(None, {session.get_inputs()[0].name: x[i:i + 64]})[0]
                             for i in range(0, len(x), 64)])
    assert m["accuracy"] == pytest.approx(float((logits.argmax(1) == y).mean()), abs=0)
    ops = {node.op_type for node in __import__("onnx").load(str(exported)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # the QDQ graph is the one that was evaluated
    assert result.steps[0]["info"]["format"] == "QDQ"


def test_the_leaderboard_compares_each_runtime_with_its_own_baseline() -> None:
    from harness.result import RunResult

    def row(method: str, runtime: str, sps: float) -> RunResult:
        spec = {"measure": {"runtime": runtime, "compile": "none"}}
        return RunResult.from_row({"run_id": method, "suite": "s", "model": "m", "task": "t", "method": method,
                                   "status": "ok", "metrics": {"accuracy": 0.9, "throughput_sps": sps},
                                   "provenance": {}, "spec": spec, "env": {}})

    frame = build_frame([row("baseline", "torch", 100.0), row("baseline@onnxruntime", "onnxruntime", 150.0),
                         row("int8", "torch", 120.0), row("int8@onnxruntime", "onnxruntime", 300.0)])
    by = frame.set_index("method")
    assert by.loc["int8@onnxruntime", "speedup"] == pytest.approx(2.0)  # vs ONNX Runtime's baseline
    assert by.loc["int8@onnxruntime", "speedup_vs_eager"] == pytest.approx(3.0)  # vs torch eager's
    assert by.loc["baseline@onnxruntime", "speedup_vs_eager"] == pytest.approx(1.5)
    assert by.loc["int8", "speedup"] == pytest.approx(1.2) and by.loc["int8", "runtime"] == "torch"
    assert by.loc["baseline@onnxruntime", "rank"] == 2 and by.loc["int8@onnxruntime", "rank"] == 1


def test_a_calibration_batch_feeds_a_graph_exported_from_keywords_or_positions(tmp_path: Path) -> None:
    from harness.toolkit import Graph

    ids = torch.ones(2, 5, dtype=torch.long)
    keywords = Graph(None, ["attention_mask", "input_ids"], ["logits"], [], tmp_path)
    fed = keywords.feeds(ids)  # a tensor of token ids: input_ids, and the model's own default mask
    assert set(fed) == {"attention_mask", "input_ids"} and (fed["attention_mask"] == 1).all()
    assert list(Graph(None, ["input_0"], ["output"], [], tmp_path).feeds(ids)) == ["input_0"]
    with pytest.raises(ValueError, match="no input 'pixel_values'"):
        Graph(None, ["pixel_values"], ["logits"], [], tmp_path).feeds({"input_ids": ids})


def test_the_timer_times_the_runtimes_own_call_on_arrays_converted_once() -> None:
    """A runtime's latency is its run on its own arrays (as a program serving with it calls
    it), not the torch-tensor conversions around it: the timer calls ``bound``."""
    from harness.measure.latency import TimingPolicy, time_forward
    from harness.toolkit.runtimes import Built, RuntimeModel

    seen: list[int] = []

    def run(arrays: list) -> list:
        seen.append(id(arrays[0]))
        assert isinstance(arrays[0], np.ndarray)
        return [arrays[0] * 2]

    model = RuntimeModel("fake", None, lambda args, kwargs: Built(run, ["input_0"], lambda out: torch.from_numpy(out[0]), 0.0))
    example = torch.ones(2, 3)
    assert model(example).equal(example * 2)  # called like the torch model: tensors in and out
    seen.clear()
    policy = TimingPolicy(warmup_s=0.0, min_time_s=0.01, min_iterations=5, max_time_s=0.05, ci_target=0.5)
    stats = time_forward(model, example, policy, "cpu")
    assert stats["clock"] == "perf_counter_ns" and len(seen) >= 5
    assert len(set(seen)) == 1  # the same arrays every call: converted once, before the timing


def test_ort_pre_processing_leaves_its_debris_in_the_runs_folder_not_the_users(tmp_path: Path, monkeypatch) -> None:
    """Where its symbolic shape inference is incomplete, ONNX Runtime saves a partial graph
    into the working directory and raises; the method goes on without pre-processing."""
    import onnxruntime.quantization.shape_inference as shape_inference

    from harness.toolkit import Graph
    from harness_plugins.runtimes.ort_methods import _pre_processed

    def incomplete(source: str, out: str, **_: object) -> None:
        Path("sym_shape_infer_temp.onnx").write_bytes(b"partial")
        raise Exception("Incomplete symbolic shape inference")  # noqa: TRY002 - what ONNX Runtime raises

    user, work = tmp_path / "user", tmp_path / "work"
    user.mkdir(), work.mkdir()
    monkeypatch.chdir(user)
    monkeypatch.setattr(shape_inference, "quant_pre_process", incomplete)
    form, how = _pre_processed(Graph(str(tmp_path / "model.onnx"), ["x"], ["y"], [], work))
    assert (form, how) == (tmp_path / "model.onnx", "without quant_pre_process (Exception)")
    assert Path.cwd() == user and not list(user.iterdir())
    assert (work / "sym_shape_infer_temp.onnx").exists()
