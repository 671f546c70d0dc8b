"""harness-llmcompressor against llm-compressor called directly: the same recipe on the same
calibration data gives the same model (the same logits) and the same fidelity, in process
(tests/test_toolkits.py runs it through ``harness bench``)."""

from __future__ import annotations

import copy
import importlib.util
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

if importlib.util.find_spec("llmcompressor") is None:  # found, not imported: its import takes seconds at collection
    pytest.skip("llmcompressor is not installed", allow_module_level=True)
torch = pytest.importorskip("torch")

WORLD = Path(__file__).resolve().parents[3] / "suites" / "tasks" / "world.txt"


@pytest.fixture(scope="module", autouse=True)
def harness_cache(tmp_path_factory: pytest.TempPathFactory):
    """The test session's model cache (the one tests/conftest.py shares between xdist
    workers): the mini world LM is trained once per session, never into ~/.cache."""
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
def lm(harness_cache: Path) -> Any:
    from harness_plugins.sources.builtin import world_lm

    world_lm.train_to_cache("world-lm-mini")
    return world_lm.load("world-lm-mini", "cpu")


@pytest.fixture(scope="module")
def task(lm: Any) -> Any:
    from harness_plugins.tasks.lm.fidelity import FidelityConfig, FidelityData

    task = FidelityData(FidelityConfig(text=str(WORLD), seq_len=32, max_tokens=1024),
                        SimpleNamespace(device="cpu", seed=0, suite_dir=WORLD.parent))
    task.before_compression(lm)
    return task


CASES = {  # the method's params, and llm-compressor's own modifiers for the same recipe
    "gptq-w4a16-g64": ({"scheme": "W4A16", "group_size": 64}, lambda m: [
        m.GPTQModifier(config_groups={"group_0": m.scheme("W4A16", group_size=64)}, ignore=["lm_head"])]),
    "smoothquant-gptq-w8a8": ({"scheme": "W8A8", "smoothquant": 0.8}, lambda m: [
        m.SmoothQuantModifier(smoothing_strength=0.8), m.GPTQModifier(targets="Linear", scheme="W8A8", ignore=["lm_head"])]),
}


def modifiers() -> Any:
    from compressed_tensors.quantization import preset_name_to_scheme
    from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier
    from llmcompressor.modifiers.smoothquant import SmoothQuantModifier

    def scheme(name: str, group_size: int) -> Any:
        scheme = preset_name_to_scheme(name, ["Linear"])
        scheme.weights = scheme.weights.model_copy(update={"group_size": group_size, "strategy": "group"})
        return scheme

    return SimpleNamespace(GPTQModifier=GPTQModifier, QuantizationModifier=QuantizationModifier,
                           SmoothQuantModifier=SmoothQuantModifier, scheme=scheme)


def through_harness(model: Any, task: Any, table: dict[str, Any], tmp_path: Path) -> tuple[Any, dict]:
    from harness_llmcompressor import Oneshot

    from harness.api import RunContext

    ctx = RunContext("cpu", 0, tmp_path, tmp_path, task=task)
    assert Oneshot().check(model, ctx) is None
    return Oneshot().apply(copy.deepcopy(model), Oneshot.Params(**table), ctx)


def directly(model: Any, task: Any, case: str) -> Any:
    """llm-compressor's README recipe: oneshot(model, dataset, recipe), here with the
    task's calibration windows as a DataLoader of input_ids (the adapter's default 128)."""
    from llmcompressor import oneshot

    windows = [{"input_ids": w} for w in task.calibration_batches(128, 1)]
    data = torch.utils.data.DataLoader(windows, batch_size=None)
    return oneshot(model=copy.deepcopy(model), dataset=data, recipe=CASES[case][1](modifiers()),
                   num_calibration_samples=len(windows))


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_same_recipe_gives_the_same_model_as_llmcompressor_directly(case: str, lm: Any, task: Any,
                                                                        tmp_path: Path) -> None:
    ours, info = through_harness(lm, task, CASES[case][0], tmp_path)
    theirs = directly(lm, task, case)
    ids = task.calibration_batches(8, 8)[0]
    with torch.inference_mode():
        a, b, float_out = ours(ids).logits, theirs(ids).logits, lm(ids).logits
    assert (a - b).abs().max().item() <= 1e-6
    assert not torch.equal(a, float_out)  # it did quantize
    assert task.evaluate(ours) == task.evaluate(theirs)
    assert info["ignored"] == ["lm_head"] and info["layers_touched"] == 14  # 2 layers x (4 attention + 3 MLP)
    weights = "int4 groups of 64" if case == "gptq-w4a16-g64" else "int8 channel"
    assert all(k.startswith(f"weights {weights}") for k in info["quantized_layers"]), info["quantized_layers"]
    assert ("inputs int8" in next(iter(info["quantized_layers"]))) == (case != "gptq-w4a16-g64")
    assert info["kernels"].startswith("simulated") and info["library"].startswith("llmcompressor ")


def test_installed_as_a_distribution_of_its_own_and_found_through_the_entry_point_group() -> None:
    """As a user installs it (``pip install ./contrib/harness-llmcompressor``); tests/test_toolkits.py runs it
    through ``harness bench`` beside the other adapters."""
    from importlib.metadata import entry_points

    assert [(e.name, e.dist.name) for e in entry_points(group="harness") if e.value == "harness_llmcompressor"] == \
        [("llmcompressor", "harness-llmcompressor")]
    module = next(e for e in entry_points(group="harness") if e.value == "harness_llmcompressor").load()
    assert callable(module.harness_register_methods)  # the hook the harness calls


def test_params_out_of_range_are_refused_in_one_sentence(tmp_path: Path, lm: Any, task: Any) -> None:
    from harness_llmcompressor import OneshotParams, recipe

    with pytest.raises(ValueError, match="algorithm = 'sparsegpt' must be one of gptq, awq, rtn"):
        OneshotParams(algorithm="sparsegpt")
    with pytest.raises(ValueError, match="scheme = 'INT3' is not a compressed-tensors preset"):
        recipe(OneshotParams(scheme="INT3"), [])


def test_a_group_scheme_that_does_not_divide_a_layer_skips_with_llmcompressors_reason(lm: Any, task: Any,
                                                                                     tmp_path: Path) -> None:
    from harness.api import Skip

    with pytest.raises(Skip, match=r"W4A16 scheme's groups do not divide model.layers.0.mlp.down_proj \(columns=192"):
        through_harness(lm, task, {"scheme": "W4A16"}, tmp_path)  # the mini LM's MLP is 192 wide, the groups 128


def test_a_model_that_is_not_a_transformers_model_is_skipped_with_the_reason(task: Any, tmp_path: Path) -> None:
    from harness_llmcompressor import Oneshot

    from harness.api import RunContext

    reason = Oneshot().check(torch.nn.Linear(4, 4), RunContext("cpu", 0, tmp_path, tmp_path, task=task))
    assert reason == "llm-compressor's oneshot works on transformers models (PreTrainedModel); this model is not one"


def test_what_needs_a_gpu_skips_on_a_cpu_with_llmcompressors_reason(lm: Any, task: Any, tmp_path: Path) -> None:
    from harness.api import Skip

    if torch.cuda.is_available():
        pytest.skip("a CUDA machine runs AWQ")
    with pytest.raises(Skip, match="llm-compressor's awq needs a GPU here: Cannot access accelerator device"):
        through_harness(lm, task, {"scheme": "W4A16", "group_size": 64, "algorithm": "awq"}, tmp_path)
