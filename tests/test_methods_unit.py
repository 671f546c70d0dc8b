"""The built-in methods called directly on the builtin digits MLP: faster than the CLI,
and able to look inside the compressed model (2:4 groups, shrunk layers, lm_head)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from harness.api import RunContext
from harness.params import build


@pytest.fixture(scope="module")
def task() -> Any:
    from harness_plugins.tasks.classification import ClassificationConfig, ClassificationData

    return ClassificationData(ClassificationConfig("digits"), "cpu")


def load(ref: str = "digits-mlp") -> Any:
    from harness_plugins.sources.builtin.digits import load_trained

    return load_trained(ref)


def context(task: Any, model: Any = None) -> RunContext:
    import copy

    return RunContext(device="cpu", seed=0, work_dir=Path(tempfile.mkdtemp()), suite_dir=Path("."), task=task,
                      load_model=load, _teacher=copy.deepcopy(model) if model is not None else None)


def method(name: str) -> Any:
    from harness.plugins import load_plugins

    return load_plugins().lookup("method", name)


def params(name: str, **table: Any) -> Any:
    problems: list[str] = []
    value = build(method(name).Params, table, name, problems)
    assert not problems, problems
    return value


def apply(name: str, task: Any, model: Any = None, **table: Any) -> tuple[Any, dict[str, Any]]:
    import torch

    model = model if model is not None else load()
    ctx = context(task, model)
    cls = method(name)
    assert cls().check(model, ctx) is None
    torch.manual_seed(0)
    out, info = cls().apply(model, params(name, **table), ctx)
    return out.eval(), info


@pytest.mark.parametrize("name, table, key", [
    ("prune.magnitude", {"amount": 1.5}, "amount"),
    ("prune.structured", {"amount": 1.0}, "amount"),
    ("prune.wanda", {"amount": -0.1}, "amount"),
    ("quant.int4-weight", {"group_size": 48}, "group_size"),
    ("quant.smoothquant", {"alpha": 2.0}, "alpha"),
    ("distill.kd", {"student": "digits-mlp-w32", "width": 0.5}, "exactly one"),
    ("train.curriculum", {"target": 1.5}, "target"),
])
def test_out_of_range_params_are_rejected(name: str, table: dict[str, Any], key: str) -> None:
    problems: list[str] = []
    assert build(method(name).Params, table, name, problems) is None
    assert len(problems) == 1 and key in problems[0]


def test_cuda_only_methods_skip_on_cpu_with_a_reason(task: Any) -> None:
    model = load()
    for name in ("quant.int4-weight", "quant.gptq"):
        reason = method(name)().check(model, context(task))
        assert reason and "CUDA" in reason


def test_2_4_sparsity_leaves_two_zeros_in_every_group_of_four(task: Any) -> None:
    baseline = task.evaluate(load())["accuracy"]
    model, info = apply("sparse.2-4", task)
    assert info["kernels"].startswith("simulated")
    pruned = dict(model.named_modules())
    for name in info["layers"]:
        groups = pruned[name].weight.detach().reshape(-1, 4)
        assert bool(((groups == 0).sum(dim=1) >= 2).all()), name
    assert info["sparsity_pruned_tensors"] == pytest.approx(0.5, abs=0.01)
    assert task.evaluate(model)["accuracy"] > baseline - 0.05


def test_structured_pruning_shrinks_layers_but_keeps_the_outputs(task: Any) -> None:
    model, info = apply("prune.structured", task, amount=0.5)
    assert info["params_after"] <= 0.6 * info["params_before"]
    assert model.net[-1].out_features == 10 and model.net[0].out_features == 128
    assert task.evaluate(model)["accuracy"] > 0.5


def test_wanda_prunes_the_same_share_of_every_output_row(task: Any) -> None:
    model, info = apply("prune.wanda", task, amount=0.5, calibration_samples=128)
    assert info["calibration_samples"] == 128
    for name in info["layers"]:
        weight = dict(model.named_modules())[name].weight
        assert bool(((weight == 0).sum(dim=1) == weight.shape[1] // 2).all())


def test_distilled_student_is_small_close_to_the_teacher_and_beats_training_alone(task: Any) -> None:
    _, info = apply("distill.kd", task, width=0.25)
    assert info["params_after"] <= info["params_before"] / 4
    assert info["student_accuracy"] >= 0.95 * info["teacher_accuracy"]
    # Same seed, same result: this is a fixed comparison, not a statistical claim. On
    # digits the margin is small and varies with seed and width (see docs/methods.md).
    assert info["beats_no_teacher"] and info["student_accuracy"] > info["no_teacher_accuracy"]
    assert info["training"]["steps"] == info["no_teacher_training"]["steps"]


def test_curriculum_and_random_order_both_report_steps_and_time_to_target(task: Any) -> None:
    _, info = apply("train.curriculum", task, target=0.8, epochs=4, eval_every=10)
    for arm in ("curriculum", "random_order"):
        assert info[arm]["reached_target"], info[arm]["accuracy_curve"]
        assert info[arm]["steps_to_target"] > 0 and info[arm]["seconds_to_target"] > 0
    assert info["scoring_seconds"] > 0


def test_half_precision_keeps_a_float32_interface(task: Any) -> None:
    baseline = task.evaluate(load())["accuracy"]
    for name, bits in (("quant.fp16", 16), ("quant.bf16", 16)):
        model, info = apply(name, task)
        assert info["bits_per_weight"] == bits
        assert abs(task.evaluate(model)["accuracy"] - baseline) <= 0.01


def test_same_seed_same_result(task: Any) -> None:
    import torch

    first, _ = apply("train.finetune", task, epochs=1)
    second, _ = apply("train.finetune", task, epochs=1)
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)


def test_lm_head_and_embeddings_are_left_alone(task: Any) -> None:
    import torch

    from harness.toolkit.layers import target_layers

    class TinyLM(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(32, 16)
            self.block = torch.nn.Linear(16, 16)
            self.lm_head = torch.nn.Linear(16, 32)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.lm_head(self.block(self.embed(ids)))

    model = TinyLM()
    assert [name for name, _ in target_layers(model)] == ["block"]
    assert [name for name, _ in target_layers(model, include_head=True, include_embeddings=True)] == \
        ["embed", "block", "lm_head"]
    quantized, info = method("quant.int8-dynamic")().apply(model, params("quant.int8-dynamic"), context(task))
    assert info["layers"] == ["block"]
    assert type(quantized.lm_head) is torch.nn.Linear and type(quantized.block) is not torch.nn.Linear
    pruned, info = method("prune.magnitude")().apply(TinyLM(), params("prune.magnitude", amount=0.5), context(task))
    assert info["layers"] == ["block"] and not bool((pruned.lm_head.weight == 0).any())


def test_statistics_of_int8_digits_models_count_what_is_stored(task: Any) -> None:
    from harness.measure.model_stats import static_figures

    base = static_figures(load()).metrics
    for name, table in (("quant.int8-dynamic", {}), ("quant.int8-weight", {}),
                        ("quant.int8-static", {"calibration_samples": 64})):
        model, _ = apply(name, task, **table)
        f = static_figures(model)
        assert f.metrics["params"] == base["params"], name
        assert f.metrics["model_weight_mb"] < base["model_weight_mb"] / 2, name  # int8, not the logical float32
        assert 0 <= f.metrics["sparsity"] < 0.1, (name, f.provenance["sparsity"])
