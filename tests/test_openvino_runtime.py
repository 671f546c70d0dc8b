"""The ``openvino`` runtime and its NNCF methods on the builtin digits CNN, in process:
the worker's runtime phase gives the same predictions as torch, NNCF's int8 keeps the
accuracy and runs int8 kernels, weights-only int8/int4 keep their packed size, and the
harness's ``ov.int8`` is exactly what calling ``nncf.quantize`` yourself gives."""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("openvino", reason="pip install 'compression-harness[runtimes]'")
pytest.importorskip("nncf", reason="pip install 'compression-harness[runtimes]'")

from harness.api import RunContext  # noqa: E402
from harness.measure.figures import Figures  # noqa: E402
from harness.params import build  # noqa: E402
from harness.plugins import load_plugins  # noqa: E402
from harness.spec import StepSpec  # noqa: E402


@pytest.fixture(scope="module")
def task() -> Any:
    from harness_plugins.tasks.classification import ClassificationConfig, ClassificationData

    return ClassificationData(ClassificationConfig("digits"), "cpu")


@pytest.fixture(scope="module")
def cnn() -> Any:
    from harness_plugins.sources.builtin.digits import load_trained

    return load_trained("digits-cnn")


@pytest.fixture(scope="module")
def plugins() -> Any:
    return load_plugins()


def context(task: Any, device: str = "cpu") -> RunContext:
    return RunContext(device=device, seed=0, work_dir=Path(tempfile.mkdtemp()), suite_dir=Path("."), task=task)


def params(plugins: Any, use: str, **table: Any) -> Any:
    problems: list[str] = []
    value = build(plugins.lookup("method", use).Params, table, use, problems)
    assert not problems, problems
    return value


def through(model: Any, task: Any, plugins: Any, *uses: str) -> tuple[Any, list[dict[str, Any]], Figures]:
    """The worker's runtime phase for ``model`` in openvino with the steps ``uses``."""
    from harness.runtime_phase import through_runtime

    spec = SimpleNamespace(measure=SimpleNamespace(runtime="openvino", batch_sizes=[8]), device="cpu",
                           placement=SimpleNamespace(artifacts_dir=None), run_id="test",
                           steps=[StepSpec(use, params(plugins, use)) for use in uses])
    session = SimpleNamespace(figures=Figures())
    wrapped, infos = through_runtime(model, spec, plugins, context(task), session)
    return wrapped, infos, session.figures


@pytest.fixture(scope="module")
def torch_accuracy(task: Any, cnn: Any) -> float:
    return task.evaluate(cnn)["accuracy"]


@pytest.fixture(scope="module")
def exported(task: Any, cnn: Any) -> tuple[Path, Any]:
    """The digits CNN exported once by the runtime: (its ONNX file, rebuild)."""
    from harness.toolkit.runtimes import flat_module
    from harness_plugins.runtimes.openvino import OpenVino

    module, inputs, names, outputs, rebuild = flat_module(cnn, (task.example_input(8),), {})
    graph = OpenVino().export(module, inputs, names, outputs, context(task))
    return graph.work_dir / "model.onnx", rebuild


def fresh_graph(exported: tuple[Path, Any]) -> Any:
    """A new ``openvino.Model`` of the exported CNN (NNCF changes the model it is given)."""
    import openvino as ov

    from harness.toolkit import Graph

    return Graph(ov.convert_model(str(exported[0])), ["input_0"], ["output"], [], Path(tempfile.mkdtemp()))


def runnable(graph: Any, exported: tuple[Path, Any], cnn: Any, task: Any) -> tuple[Any, Any]:
    """(the RuntimeModel a task evaluates, the loaded run) of an openvino graph."""
    from harness.toolkit.runtimes import Built, RuntimeModel
    from harness_plugins.runtimes.openvino import OpenVino

    run = OpenVino().load(graph, context(task))
    model = RuntimeModel("openvino", cnn, lambda args, kwargs: Built(run, graph.inputs, exported[1], 0.0))
    model.kernels_of = run.kernels
    return model, run


def apply(use: str, exported: tuple[Path, Any], task: Any, plugins: Any, **table: Any) -> tuple[Any, dict]:
    method = plugins.lookup("method", use)()
    return method.apply(fresh_graph(exported), params(plugins, use, **table), context(task))


def saved_bin_bytes(model: Any) -> int:
    """Size of the weights file of ``model`` saved as OpenVINO IR (weights as stored)."""
    import openvino as ov

    folder = Path(tempfile.mkdtemp())
    ov.save_model(model, str(folder / "m.xml"), compress_to_fp16=False)
    return (folder / "m.bin").stat().st_size


def test_openvino_predicts_as_torch_and_reports_float_kernels(task: Any, cnn: Any, plugins: Any,
                                                              torch_accuracy: float) -> None:
    import torch

    model, infos, figures = through(cnn, task, plugins)
    quality = task.evaluate(model)
    assert abs(quality["accuracy"] - torch_accuracy) <= 1 / quality["eval_samples"] + 1e-12
    x = task.example_input(8)
    first = model(x)
    assert torch.allclose(first, cnn(x), atol=1e-4)  # f32 inference precision, not bf16
    kept = first.clone()
    assert not torch.equal(model(x[:3] * 0.5)[:3], kept[:3]) and torch.equal(first, kept)  # outputs copied out
    assert infos == [] and figures.metrics["load_s"] > 0 and "openvino" in figures.provenance["runtime_prepare_s"]
    kernels = model.kernels()
    assert "Convolution:f32" in kernels and "FullyConnected:f32" in kernels
    assert not any(k.startswith(("Const", "Reorder", "Input")) for k in kernels)
    floats = sum(p.numel() * 4 for p in cnn.parameters())
    assert floats <= model.weight_bytes <= floats * 1.01


@pytest.fixture(scope="module")
def ov_int8(task: Any, exported: tuple[Path, Any], plugins: Any) -> tuple[Any, dict[str, Any]]:
    return apply("ov.int8", exported, task, plugins)


def test_ov_int8_keeps_accuracy_and_runs_int8_kernels(task: Any, cnn: Any, exported: tuple[Path, Any],
                                                      ov_int8: tuple[Any, dict], torch_accuracy: float) -> None:
    graph, info = ov_int8
    model, run = runnable(graph, exported, cnn, task)
    assert task.evaluate(model)["accuracy"] >= torch_accuracy - 0.02
    assert {"Convolution:u8", "FullyConnected:u8"} <= set(model.kernels())
    assert info["bits"] == 8 and info["bits_per_weight"] == 8 and info["calibration_samples"] == 300
    assert info["kernels"].startswith("real") and "nncf" in info["library"] and "openvino" in info["library"]
    floats = sum(p.numel() * 4 for p in cnn.parameters())
    assert run.weight_bytes < floats / 3.5  # int8 weights, float biases and scales


def test_ov_int8_is_what_nncf_quantize_gives(task: Any, cnn: Any, exported: tuple[Path, Any],
                                             ov_int8: tuple[Any, dict]) -> None:
    import nncf
    import numpy as np

    direct = fresh_graph(exported)
    rows = task.training_split()[0][:300].numpy()
    direct.form = nncf.quantize(direct.form, nncf.Dataset([{"input_0": r[None]} for r in rows]),
                                subset_size=300, fast_bias_correction=True)
    x = task.example_input(64).numpy()
    a, b = (runnable(g, exported, cnn, task)[1]([x])[0] for g in (ov_int8[0], direct))
    assert np.abs(a - b).max() <= 1e-6


def test_weight_compression_keeps_accuracy_and_its_packed_size(task: Any, cnn: Any, exported: tuple[Path, Any],
                                                               plugins: Any, torch_accuracy: float) -> None:
    floats = sum(p.numel() * 4 for p in cnn.parameters())
    graph8, info8 = apply("ov.int8-weights", exported, task, plugins)
    model8, run8 = runnable(graph8, exported, cnn, task)
    assert task.evaluate(model8)["accuracy"] >= torch_accuracy - 0.01
    assert info8["bits_per_weight"] == 8 and info8["activations"].startswith("float")
    assert "FullyConnected:u8" in model8.kernels()  # int8 weights, decompressed in the kernel
    assert run8.weight_bytes == saved_bin_bytes(graph8.form) < floats / 3.5

    graph4, info4 = apply("ov.int4-weights", exported, task, plugins)
    _, run4 = runnable(graph4, exported, cnn, task)
    # The first Linear is 4-bit; the convolutions and the last layer stay int8 (NNCF's rule).
    assert info4["weights_by_type"]["i4"]["tensors"] == 1 and 4 < info4["bits_per_weight"] < 5
    assert run4.weight_bytes == saved_bin_bytes(graph4.form) < run8.weight_bytes * 0.6  # two int4 to a byte


def test_params_and_devices_are_refused_with_a_reason(task: Any, cnn: Any, plugins: Any) -> None:
    from harness_plugins.runtimes.openvino import OpenVino

    reason = OpenVino().check(cnn, context(task, device="cuda"))
    assert reason and "Intel GPU" in reason and "cpu" in reason
    problems: list[str] = []
    assert build(plugins.lookup("method", "ov.int4-weights").Params, {"ratio": 0}, "ov.int4-weights",
                 problems) is None
    assert problems and "ratio" in problems[0]
