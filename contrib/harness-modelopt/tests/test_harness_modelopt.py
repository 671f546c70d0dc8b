"""harness-modelopt against ModelOpt called directly: the same preset and calibration
give the same quantized model (the same logits on every test sample) and the same
accuracy, in process (tests/test_toolkits.py runs it through ``harness bench``); CUDA-only presets skip with the reason."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("modelopt")


@pytest.fixture(scope="module", autouse=True)
def harness_cache(tmp_path_factory: pytest.TempPathFactory):
    """The test session's model cache (tests/conftest.py's, shared by xdist workers)."""
    base = tmp_path_factory.getbasetemp()
    cache = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "harness-cache"
    cache.mkdir(exist_ok=True)
    saved = os.environ.get("HARNESS_CACHE")
    os.environ["HARNESS_CACHE"] = str(cache)
    yield cache
    os.environ.pop("HARNESS_CACHE") if saved is None else os.environ.__setitem__("HARNESS_CACHE", saved)


@pytest.fixture(scope="module")
def task() -> Any:
    from harness_plugins.tasks.classification import ClassificationConfig, ClassificationData

    return ClassificationData(ClassificationConfig("digits"), "cpu")


@pytest.fixture(scope="module")
def mlp(harness_cache: Path) -> Any:
    from harness_plugins.sources.builtin.digits import load_trained

    return load_trained("digits-mlp")


def context(task: Any, tmp_path: Path, device: str = "cpu") -> Any:
    from harness.api import RunContext

    return RunContext(device, 0, tmp_path, tmp_path, task=task)


def method_and_params(table: dict[str, Any]) -> tuple[Any, Any]:
    """The method and its Params from a suite's table, as the harness builds them."""
    from harness_modelopt import Quantize

    return Quantize(), Quantize.Params(**table)


def directly(model: Any, task: Any, config: str) -> Any:
    """ModelOpt's own recipe: mtq.quantize with the preset and a forward loop over the
    calibration data (the adapter's defaults: 128 samples in batches of 16)."""
    import modelopt.torch.quantization as mtq  # here, not at import: it takes seconds, paid by one worker only

    batches = task.calibration_batches(128, 16)

    def loop(m: Any) -> None:
        with torch.no_grad():
            for batch in batches:
                m(batch)

    return mtq.quantize(copy.deepcopy(model), copy.deepcopy(getattr(mtq, config)), loop)


@pytest.mark.parametrize("config", ["INT8_SMOOTHQUANT_CFG", "INT4_AWQ_CFG"])
def test_the_same_preset_gives_the_same_model_as_modelopt_directly(config: str, mlp: Any, task: Any,
                                                                   tmp_path: Path) -> None:
    method, params = method_and_params({"config": config})
    ours, info = method.apply(copy.deepcopy(mlp), params, context(task, tmp_path))
    theirs = directly(mlp, task, config)
    with torch.inference_mode():
        a, b, float_out = ours(task.x), theirs(task.x), mlp(task.x)
    assert (a - b).abs().max().item() <= 1e-6
    assert not torch.equal(a, float_out)  # it did quantize
    assert task.evaluate(ours)["accuracy"] == task.evaluate(theirs)["accuracy"]
    if config == "INT8_SMOOTHQUANT_CFG":  # W8A8: weights and inputs of the 3 Linear layers
        assert info["quantizers"] == {"weight: int8": 3, "input: int8": 3} and info["bits_per_weight"] == 8
    else:  # W4A16, groups of 128 along the input
        assert info["quantizers"] == {"weight: int4 blocks of 128": 3} and info["bits_per_weight"] == 4
    assert info["kernels"].startswith("simulated") and info["library"].startswith("modelopt ")


def test_cuda_only_presets_and_unknown_ones_skip_with_the_reason(mlp: Any, task: Any, tmp_path: Path) -> None:
    from harness.api import Skip

    method, params = method_and_params({"config": "NVFP4_DEFAULT_CFG"})
    with pytest.raises(Skip, match="NVFP4_DEFAULT_CFG formats run only on CUDA"):
        method.apply(copy.deepcopy(mlp), params, context(task, tmp_path))
    method, params = method_and_params({"config": "INT3_NOPE_CFG"})
    with pytest.raises(Skip, match="has no preset INT3_NOPE_CFG; it has .*INT8_SMOOTHQUANT_CFG"):
        method.apply(copy.deepcopy(mlp), params, context(task, tmp_path))
    with pytest.raises(ValueError, match="must name a ModelOpt preset"):
        type(params)(config="int8")


def test_installed_as_a_distribution_of_its_own_and_found_through_the_entry_point_group() -> None:
    """As a user installs it (``pip install ./contrib/harness-modelopt``); tests/test_toolkits.py runs it
    through ``harness bench`` beside the other adapters."""
    from importlib.metadata import entry_points

    assert [(e.name, e.dist.name) for e in entry_points(group="harness") if e.value == "harness_modelopt"] == \
        [("modelopt", "harness-modelopt")]
    module = next(e for e in entry_points(group="harness") if e.value == "harness_modelopt").load()
    assert callable(module.harness_register_methods)  # the hook the harness calls
