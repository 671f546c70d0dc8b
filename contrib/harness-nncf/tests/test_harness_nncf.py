"""harness-nncf against NNCF called directly: the same settings give the same model (the
same logits on every test sample) and the same accuracy, in process (tests/test_toolkits.py runs it
through ``harness bench``); what the method reports matches what NNCF stored."""

from __future__ import annotations

import copy
import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("nncf") is None:  # found, not imported: its import takes seconds at collection
    pytest.skip("nncf is not installed", allow_module_level=True)
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


CASES = {  # method, its params, and NNCF's own call with the same settings (its defaults for the rest)
    "int8": ("nncf.int8-weights", {}, {"mode": "INT8_ASYM"}),
    "int4": ("nncf.int4-weights", {"group_size": 32}, {"mode": "INT4_SYM", "group_size": 32}),
}


def through_harness(model: Any, task: Any, use: str, table: dict[str, Any], tmp_path: Path) -> tuple[Any, dict]:
    """The method as the harness runs it: its Params from the suite's table, check, apply."""
    from harness_nncf import Int4Weights, Int8Weights

    from harness.api import RunContext

    method = {cls.name: cls for cls in (Int8Weights, Int4Weights)}[use]()
    ctx = RunContext("cpu", 0, tmp_path, tmp_path, task=task)
    assert method.check(model, ctx) is None
    return method.apply(copy.deepcopy(model), method.Params(**table), ctx)


def directly(model: Any, task: Any, call: dict[str, Any]) -> Any:
    import nncf

    batches = task.calibration_batches(1, 1)  # the adapter's calibration: 1 sample here
    options = dict(call, mode=getattr(nncf.CompressWeightsMode, call["mode"]))
    return nncf.compress_weights(copy.deepcopy(model), dataset=nncf.Dataset(batches), **options)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_same_settings_give_the_same_model_as_nncf_directly(case: str, mlp: Any, task: Any,
                                                                 tmp_path: Path) -> None:
    use, table, call = CASES[case]
    ours, info = through_harness(mlp, task, use, table, tmp_path)
    theirs = directly(mlp, task, call)
    with torch.inference_mode():
        a, b, float_out = ours(task.x), theirs(task.x), mlp(task.x)
    assert (a - b).abs().max().item() <= 1e-6
    assert not torch.equal(a, float_out)  # it did compress
    assert task.evaluate(ours)["accuracy"] == task.evaluate(theirs)["accuracy"]
    # what it reports is what NNCF stored: uint8 weights (int4: two to a byte), one decompressor per layer
    stored = {n: p for n, p in theirs.named_parameters() if p.dtype == torch.uint8}
    assert info["layers_touched"] == len(stored) == 3
    assert info["packed_weight_bytes"] == sum(p.numel() for p in stored.values())
    weights = sum(m.weight.numel() for m in mlp.modules() if isinstance(m, torch.nn.Linear))
    if case == "int8":
        assert info["packed_weight_bytes"] == weights
    else:  # the last layer stays int8 (NNCF's default), the other two are packed 4-bit
        assert info["packed_weight_bytes"] == (weights - 2560) // 2 + 2560
    assert info["kernels"].startswith("simulated") and info["library"].startswith("nncf ")


def test_installed_as_a_distribution_of_its_own_and_found_through_the_entry_point_group() -> None:
    """As a user installs it (``pip install ./contrib/harness-nncf``); tests/test_toolkits.py runs it
    through ``harness bench`` beside the other adapters."""
    from importlib.metadata import entry_points

    assert [(e.name, e.dist.name) for e in entry_points(group="harness") if e.value == "harness_nncf"] == \
        [("nncf", "harness-nncf")]
    module = next(e for e in entry_points(group="harness") if e.value == "harness_nncf").load()
    assert callable(module.harness_register_methods)  # the hook the harness calls


def test_params_out_of_range_are_refused_in_one_sentence() -> None:
    from harness_nncf import Int4Params

    with pytest.raises(ValueError, match="group_size = 0"):
        Int4Params(group_size=0)
    with pytest.raises(ValueError, match="ratio = 1.5"):
        Int4Params(ratio=1.5)


def test_a_group_size_that_does_not_divide_a_layer_skips_with_nncfs_reason(mlp: Any, task: Any,
                                                                          tmp_path: Path) -> None:
    from harness.api import Skip

    with pytest.raises(Skip, match="NNCF: Failed to apply group-wise quantization with group size value 128"):
        through_harness(mlp, task, "nncf.int4-weights", {"group_size": 128}, tmp_path)  # the first layer has 64 inputs
