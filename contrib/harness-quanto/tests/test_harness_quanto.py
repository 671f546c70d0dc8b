"""harness-quanto against optimum-quanto called directly: the same settings give the same
model (the same logits on every test sample) and the same accuracy, in process
(tests/test_toolkits.py runs it through ``harness bench``); what the method reports matches what quanto stored and what the
profiler saw."""

from __future__ import annotations

import copy
import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("optimum") is None:  # found, not imported: its import takes seconds at collection
    pytest.skip("optimum-quanto is not installed", allow_module_level=True)
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module", autouse=True)
def harness_cache(tmp_path_factory: pytest.TempPathFactory):
    """The test session's model cache (the one tests/conftest.py shares between xdist
    workers): the digits MLP is trained once per session, never into ~/.cache."""
    base = tmp_path_factory.getbasetemp()
    cache = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "harness-cache"
    cache.mkdir(exist_ok=True)
    saved = os.environ.get("HARNESS_CACHE")
    os.environ["HARNESS_CACHE"] = str(cache)
    yield cache
    if saved is None:
        os.environ.pop("HARNESS_CACHE")
    else:
        os.environ["HARNESS_CACHE"] = saved


@pytest.fixture(scope="module")
def task() -> Any:
    from harness_plugins.tasks.classification import ClassificationConfig, ClassificationData

    return ClassificationData(ClassificationConfig("digits"), "cpu")


@pytest.fixture(scope="module")
def mlp(harness_cache: Path) -> Any:
    from harness_plugins.sources.builtin.digits import load_trained

    return load_trained("digits-mlp")


CASES = {  # the method's params; quanto's own call takes the same qtypes
    "int8-weights": {"weights": "qint8"},
    "int4-weights": {"weights": "qint4"},
    "w8a8": {"weights": "qint8", "activations": "qint8"},
}


def through_harness(model: Any, task: Any, table: dict[str, Any], tmp_path: Path) -> tuple[Any, dict]:
    """The method as the harness runs it: its Params from the suite's table, check, apply."""
    from harness_quanto import Quantize

    from harness.api import RunContext

    ctx = RunContext("cpu", 0, tmp_path, tmp_path, task=task)
    assert Quantize().check(model, ctx) is None
    return Quantize().apply(copy.deepcopy(model), Quantize.Params(**table), ctx)


def directly(model: Any, task: Any, table: dict[str, Any]) -> Any:
    """quanto's README recipe: quantize, calibrate (activations only), freeze."""
    import optimum.quanto as quanto

    model = copy.deepcopy(model)
    activations = table.get("activations")
    quanto.quantize(model, weights=quanto.qtypes[table["weights"]],
                    activations=quanto.qtypes[activations] if activations else None)
    if activations:
        with torch.no_grad(), quanto.Calibration(momentum=0.9):
            for batch in task.calibration_batches(128, 16):  # the adapter's defaults
                model(batch)
    quanto.freeze(model)
    return model


def accuracy(model: Any, task: Any) -> float:
    with torch.no_grad():  # quanto's own way; the harness evaluates under inference_mode
        return (model(task.x).argmax(-1) == task.y).sum().item() / len(task.y)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_same_settings_give_the_same_model_as_quanto_directly(case: str, mlp: Any, task: Any,
                                                                   tmp_path: Path) -> None:
    table = CASES[case]
    ours, info = through_harness(mlp, task, table, tmp_path)
    theirs = directly(mlp, task, table)
    with torch.inference_mode():  # as the harness's tasks and timer call it
        a, float_out = ours(task.x), mlp(task.x)
    with torch.no_grad():
        b = theirs(task.x)
    assert (a - b).abs().max().item() <= 1e-6
    assert not torch.equal(a, float_out)  # it did quantize
    assert task.evaluate(ours)["accuracy"] == accuracy(theirs, task)
    # what it reports is what quanto stored: 3 QLinear layers, their quantized weights' bytes
    assert info["quantized_layers"] == {"QLinear": 3} and info["left_float"] == []
    weights = {name: m.weight for name, m in theirs.named_modules() if type(m).__name__ == "QLinear"}
    if case == "int4-weights":  # 64 inputs: per channel; 256: groups of 128, packed two to a byte
        assert info["weight_groups"] == ["groups of 128", "per output channel"]
        assert info["layers_outside_inference_mode"] == 3
        assert weights["net.2"]._data._data.numel() == 256 * 256 // 2
    else:
        assert info["weight_groups"] == ["per output channel"]
        assert info["layers_outside_inference_mode"] == 0
        assert info["quantized_weight_bytes"] == sum(w._data.numel() + w._scale.numel() * 4 for w in weights.values())
    assert info["kernels"].startswith("real" if case == "w8a8" else "simulated")
    assert info["library"].startswith("optimum-quanto ")


def test_a_stored_int4_model_runs_under_inference_mode_after_loading(mlp: Any, task: Any, tmp_path: Path) -> None:
    """The harness stores a compressed model with torch.save and loads it for the next task."""
    ours, _ = through_harness(mlp, task, CASES["int4-weights"], tmp_path)
    torch.save(ours, tmp_path / "model.pt")
    loaded = torch.load(tmp_path / "model.pt", weights_only=False)
    with torch.inference_mode():
        assert torch.equal(loaded(task.x), ours(task.x))


def test_its_cpu_kernels_are_built_and_loaded_by_its_preload_not_inside_a_run(
        mlp: Any, task: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """quanto compiles (once per install, ~30-60 s) and loads its CPU extension on the first
    use of a packed weight: the method's preload does both before a run, so that neither
    lands in a run's compression time or first call."""
    from harness_quanto import Quantize, kernels
    from optimum.quanto.library.extensions import extension, get_extension

    loads: list[str] = []
    real = extension.load
    monkeypatch.setattr(extension, "load", lambda **kw: loads.append(kw["name"]) or real(**kw))
    monkeypatch.setattr(get_extension("quanto_cpp"), "_lib", None)  # as in a process that has not loaded it
    assert "harness_quanto.kernels" in Quantize.preload
    kernels.load()  # what the fork server's (or a cold worker's) import of it does
    assert loads == ["quanto_cpp"]
    ours, _ = through_harness(mlp, task, CASES["int4-weights"], tmp_path)  # the run: packs and unpacks int4
    with torch.inference_mode():
        ours(task.x)
    assert loads == ["quanto_cpp"]  # nothing built or loaded inside the run


def test_installed_as_a_distribution_of_its_own_and_found_through_the_entry_point_group() -> None:
    """As a user installs it (``pip install ./contrib/harness-quanto``); tests/test_toolkits.py runs it
    through ``harness bench`` beside the other adapters."""
    from importlib.metadata import entry_points

    assert [(e.name, e.dist.name) for e in entry_points(group="harness") if e.value == "harness_quanto"] == \
        [("quanto", "harness-quanto")]
    module = next(e for e in entry_points(group="harness") if e.value == "harness_quanto").load()
    assert callable(module.harness_register_methods)  # the hook the harness calls


def test_params_out_of_range_are_refused_in_one_sentence() -> None:
    from harness_quanto import QuantizeParams

    with pytest.raises(ValueError, match="weights = 'int4' must be one of quanto's qint2, qint4"):
        QuantizeParams(weights="int4")
    with pytest.raises(ValueError, match="activations = 'qint4'"):
        QuantizeParams(activations="qint4")


def test_a_model_without_layers_it_quantizes_is_skipped_with_the_reason(task: Any, tmp_path: Path) -> None:
    from harness_quanto import Quantize

    from harness.api import RunContext

    reason = Quantize().check(torch.nn.Sequential(torch.nn.ReLU()), RunContext("cpu", 0, tmp_path, tmp_path, task=task))
    assert reason.startswith("quanto quantizes Linear and Conv2d layers")
