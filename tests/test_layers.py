"""Which layers methods touch on transformers models (GPT-2's Conv1D, tied heads found by
identity, structured pruning of the MLP), and model statistics that count shared storage
once and never fail on a tensor subclass. Tiny models built from config."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from harness.api import RunContext
from harness.params import build

pytest.importorskip("transformers")

VOCAB, SEQ = 100, 16


class TokenTask:
    """The slice of a task methods use, over random token ids (next-token loss)."""

    def ids(self, n: int, seed: int = 0) -> Any:
        import torch

        return torch.randint(0, VOCAB, (n, SEQ), generator=torch.Generator().manual_seed(seed))

    def example_input(self, batch_size: int) -> Any:
        return self.ids(batch_size)

    def calibration_batches(self, n_samples: int, batch_size: int = 8) -> list[Any]:
        x = self.ids(n_samples, 1)
        return [x[i:i + batch_size] for i in range(0, n_samples, batch_size)]

    def train_batches(self, batch_size: int, seed: int) -> list[tuple[Any, Any]]:
        x = self.ids(8, seed)
        return [(x[i:i + batch_size], x[i:i + batch_size]) for i in range(0, 8, batch_size)]

    def loss(self, output: Any, target: Any) -> Any:
        import torch

        logits = output.logits
        return torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB).float(), target.reshape(-1))

    def evaluate(self, model: Any) -> dict[str, float]:
        import torch

        with torch.no_grad():
            return {"accuracy": float((model(self.ids(2, 9)).logits.argmax(-1) == self.ids(2, 9)).float().mean())}


def bert_config(**extra: Any) -> Any:
    from transformers import BertConfig

    return BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                      vocab_size=VOCAB, max_position_embeddings=64, **extra)


def tiny(kind: str) -> Any:
    import torch
    import transformers as tf

    torch.manual_seed(0)
    build_model = {
        "gpt2": lambda: tf.GPT2LMHeadModel(tf.GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=VOCAB,
                                                         n_positions=64, bos_token_id=0, eos_token_id=0)),
        "llama": lambda: tf.LlamaForCausalLM(tf.LlamaConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=2, vocab_size=VOCAB)),
        "bert-mlm": lambda: tf.BertForMaskedLM(bert_config()),
        "bert": lambda: tf.BertModel(bert_config()),
        "bert-classifier": lambda: tf.BertForSequenceClassification(bert_config(num_labels=3)),
    }[kind]
    return build_model().eval()


def run_method(name: str, model: Any, **table: Any) -> tuple[Any, dict[str, Any]]:
    import torch

    from harness.plugins import load_plugins

    cls = load_plugins().lookup("method", name)
    problems: list[str] = []
    params = build(cls.Params, table, name, problems)
    assert not problems, problems
    ctx = RunContext(device="cpu", seed=0, work_dir=Path(tempfile.mkdtemp()), suite_dir=Path("."), task=TokenTask())
    assert cls().check(model, ctx) is None
    torch.manual_seed(0)
    return cls().apply(model, params, ctx)


def outputs(model: Any) -> Any:
    import torch

    with torch.no_grad():
        out = model(TokenTask().ids(2, 5))
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


def test_conv1d_becomes_an_equivalent_linear() -> None:
    import torch

    from harness.toolkit.layers import target_layers

    model = tiny("gpt2")
    before = outputs(model)
    names = [name for name, _ in target_layers(model)]
    assert not any(type(m).__name__ == "Conv1D" for m in model.modules())
    assert "transformer.h.0.attn.c_attn" in names and "transformer.h.1.mlp.c_proj" in names
    assert "lm_head" not in names  # tied to the token embedding
    assert model.transformer.h[0].attn.c_attn.weight.shape == (96, 32)
    torch.testing.assert_close(outputs(model), before)


@pytest.mark.parametrize("name, table", [
    ("quant.int8-dynamic", {}), ("quant.int8-weight", {}), ("quant.int8-static", {"calibration_samples": 8}),
    ("quant.smoothquant", {"calibration_samples": 8}), ("quant.awq", {"calibration_samples": 8}),
    ("quant.qat", {"epochs": 1, "batch_size": 4}), ("prune.magnitude", {}), ("prune.wanda", {"calibration_samples": 8}),
    ("prune.structured", {}), ("sparse.2-4", {}),
])
def test_every_linear_method_compresses_gpt2(name: str, table: dict[str, Any]) -> None:
    import torch

    model = tiny("gpt2")
    embedding = model.transformer.wte.weight.detach().clone()
    out, info = run_method(name, model, **table)
    assert info["layers_touched"] > 0 and "lm_head" not in info["layers"]
    assert torch.isfinite(outputs(out)).all()
    assert out.lm_head.weight is out.transformer.wte.weight  # still tied, still float
    if name != "quant.qat":  # QAT trains every weight; the others leave the embedding as it was
        assert torch.equal(out.transformer.wte.weight, embedding)


def test_tied_decoder_and_embeddings_are_left_alone_by_identity() -> None:
    import torch

    from harness.measure.model_stats import count_params

    for name in ("prune.magnitude", "quant.int8-dynamic"):
        model = tiny("bert-mlm")
        embedding = model.bert.embeddings.word_embeddings.weight.detach().clone()
        params_before = count_params(model)
        out, info = run_method(name, model)
        assert "cls.predictions.decoder" not in info["layers"], name
        assert type(out.cls.predictions.decoder) is torch.nn.Linear
        assert torch.equal(out.bert.embeddings.word_embeddings.weight, embedding), name
        assert out.cls.predictions.decoder.weight is out.bert.embeddings.word_embeddings.weight
        assert info["params_before"] == params_before == info["params_after"]  # not 22.7 M -> 34.5 M
    _, info = run_method("prune.magnitude", tiny("bert-mlm"), include_head=True)
    assert "cls.predictions.decoder" in info["layers"]


def test_output_head_is_found_however_it_is_named() -> None:
    from harness.toolkit.layers import head_names

    assert head_names(tiny("llama")) == ["lm_head"]  # untied: get_output_embeddings()
    # a transformers task head is everything outside the base model (tied decoder included)
    assert head_names(tiny("bert-mlm")) == ["cls.predictions.transform.dense",
                                            "cls.predictions.transform.LayerNorm", "cls.predictions.decoder"]
    assert head_names(tiny("bert-classifier")) == ["classifier"]
    import torch

    from harness_plugins.methods.quantization.half_precision import HalfPrecision

    wrapped = HalfPrecision(tiny("bert-classifier"), torch.bfloat16)  # an earlier chain step's wrapper
    assert head_names(wrapped) == ["model.classifier"]
    assert head_names(tiny("bert")) == []


@pytest.mark.parametrize("kind", ["gpt2", "llama", "bert", "bert-classifier"])
def test_structured_pruning_shrinks_the_mlp_of_transformers(kind: str) -> None:
    model = tiny(kind)
    shape = tuple(outputs(model).shape)
    out, info = run_method("prune.structured", model, amount=0.5)
    assert tuple(outputs(out).shape) == shape
    assert info["params_after"] < info["params_before"] and "MLP intermediate" in info["scope"]
    assert all("-> [32," in s or ", 32]" in s for s in info["shapes"].values()), info["shapes"]


def test_shared_storage_is_counted_once() -> None:
    import copy

    import torch

    from harness.measure.model_stats import count_params, serialized_size_bytes, weight_bytes

    tied = tiny("bert-mlm")
    untied = copy.deepcopy(tied)
    untied.cls.predictions.decoder.weight = torch.nn.Parameter(tied.cls.predictions.decoder.weight.detach().clone())
    matrix = VOCAB * 32
    assert count_params(untied) - count_params(tied) == matrix
    assert weight_bytes(untied) - weight_bytes(tied) == 4 * matrix
    assert serialized_size_bytes(untied) - serialized_size_bytes(tied) >= 4 * matrix

    class Views(torch.nn.Module):  # two Parameters over one storage
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.Parameter(torch.zeros(8, 8))
            self.b = torch.nn.Parameter(self.a.detach())

    assert count_params(Views()) == 64


class Unreadable:
    """A tensor subclass like the H100's tile-packed int4: every op but detach raises."""

    @staticmethod
    def make(shape: tuple[int, ...]) -> Any:
        import torch

        class UnreadableTensor(torch.Tensor):
            @staticmethod
            def __new__(cls, packed: torch.Tensor, shape: tuple[int, ...]) -> Any:
                out = torch.Tensor._make_wrapper_subclass(cls, shape, dtype=torch.bfloat16)
                out.packed = packed
                return out

            def __tensor_flatten__(self) -> tuple[list[str], Any]:
                return ["packed"], None

            @staticmethod
            def __tensor_unflatten__(inner: dict[str, Any], ctx: Any, shape: Any, stride: Any) -> Any:
                raise NotImplementedError

            @classmethod
            def __torch_dispatch__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
                if func is torch.ops.aten.detach.default:
                    return args[0]
                raise NotImplementedError(f"UnreadableTensor dispatch: {func}")

        return UnreadableTensor(torch.zeros(shape[0], shape[1] // 2, dtype=torch.uint8), shape)


def quantized_mlp(config: Any, dtype: Any) -> Any:
    import torch
    from torchao.quantization import quantize_

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 32)).to(dtype)
    if config is not None:
        quantize_(model, config)
    return model


def test_statistics_never_fail_on_torchao_tensors() -> None:
    import torch
    from torchao.prototype.quantization.int4.inference_workflow import PrototypeInt4WeightOnlyConfig
    from torchao.quantization import (
        Float8WeightOnlyConfig,
        Int8DynamicActivationInt8WeightConfig,
        Int8WeightOnlyConfig,
    )

    from harness.measure.model_stats import static_figures

    dense = static_figures(quantized_mlp(None, torch.float32))
    cases = {  # tensor type -> (config, dtype, stored bits per weight range)
        "Int8Tensor": (Int8WeightOnlyConfig(), torch.float32, (8, 9)),
        "Float8Tensor": (Float8WeightOnlyConfig(), torch.bfloat16, (8, 9)),
        "Int4OpaqueTensor": (PrototypeInt4WeightOnlyConfig(group_size=32), torch.bfloat16, (4, 5.5)),
    }
    cases["Int8Tensor "] = (Int8DynamicActivationInt8WeightConfig(), torch.float32, (8, 9))
    for kind, (config, dtype, (low, high)) in cases.items():
        f = static_figures(quantized_mlp(config, dtype))
        fmt = f.metrics["weight_formats"][kind.strip()]
        assert fmt["layers"] == 2 and low <= fmt["bits_per_weight"] <= high, (kind, fmt)
        assert f.metrics["model_weight_mb"] < dense.metrics["model_weight_mb"] / 2, kind  # packed, not logical
        assert f.metrics["params"] == dense.metrics["params"], kind
        if kind == "Int4OpaqueTensor":  # no dequantize(): absent with the reason, never an error
            assert "sparsity" not in f.metrics and "Int4OpaqueTensor" in f.provenance["sparsity"]
        else:
            assert 0 <= f.metrics["sparsity"] < 0.05, kind


def test_a_tensor_that_refuses_every_op_leaves_figures_absent_not_failed() -> None:
    import torch

    from harness.measure.model_stats import static_figures

    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Linear(32, 8))
    model[0].weight = torch.nn.Parameter(Unreadable.make((32, 64)), requires_grad=False)
    f = static_figures(model)
    assert f.provenance["sparsity"].startswith("absent:") and "UnreadableTensor" in f.provenance["sparsity"]
    assert f.metrics["params"] == 32 * 64 + 32 + 32 * 8 + 8
    assert f.metrics["weight_formats"]["UnreadableTensor"]["bits_per_weight"] == 4.0
    for key in ("size_bytes", "size_mb", "model_weight_mb"):
        assert key in f.metrics or f.provenance[key].startswith("absent:"), key
