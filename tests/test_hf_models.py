"""The ``hf`` source for every common head, and ``fidelity`` in each of its modes, on the
tiny real models of ``tests/zoo.py``; one bench of GPT-2, Llama and a BERT encoder."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("transformers")

TEXT = "\n".join([
    "the film was good and the plot was great",
    "the actors were awful and the music was dull",
    "a lovely story with a happy ending",
    "",
    "quite a grim and nasty film with a weak ending",
    "the story was fine and the music was bright",
] * 4)


def _load(zoo, name: str, **options):
    from harness_plugins.sources.hf import HFOptions, load_pretrained

    return load_pretrained(str(zoo.path(name)), HFOptions(**options), "cpu")


@pytest.mark.parametrize("name, cls, head", [
    ("gpt2", "GPT2LMHeadModel", "causal-lm"), ("llama", "LlamaForCausalLM", "causal-lm"),
    ("bert", "BertModel", "none"), ("bert-mlm", "BertForMaskedLM", "masked-lm"),
    ("bert-sst", "BertForSequenceClassification", "sequence-classification"),
    ("vit", "ViTForImageClassification", "image-classification"),
])
def test_auto_head_loads_the_checkpoints_own_class(zoo, name: str, cls: str, head: str) -> None:
    from harness_plugins.sources.hf import is_causal_lm

    model = _load(zoo, name)
    assert type(model).__name__ == cls and not model.training
    info = model.harness_load_info
    assert info["class"] == cls and info["head"] == head and info["head_from"].startswith(f"auto: architectures {cls}")
    assert "new_weights" not in info
    assert is_causal_lm(model) == (head == "causal-lm")
    if name == "vit":  # an image model: its processor, and no tokenizer was needed
        assert model.harness_image_processor.size == {"height": 16, "width": 16}
        assert not hasattr(model, "harness_tokenizer")
    else:
        assert model.harness_tokenizer.pad_token is not None


def test_a_head_transformers_would_make_up_is_an_error_unless_allowed(zoo) -> None:
    with pytest.raises(ValueError, match=r"BertForMaskedLM .* has no weights for cls\.predictions.*allow_new_head"):
        _load(zoo, "bert", head="masked-lm")
    with pytest.raises(ValueError, match=r"BertModel .* no weights for pooler\.dense\.bias"):
        _load(zoo, "bert-mlm", head="none")  # an MLM checkpoint has no pooler
    with pytest.raises(ValueError, match="a bert model, which has no 'image-classification' head"):
        _load(zoo, "bert", head="image-classification")
    model = _load(zoo, "bert", head="sequence-classification", allow_new_head=True)
    assert model.harness_load_info["new_weights"] == ["classifier.bias", "classifier.weight"]
    assert model.harness_load_info["head_from"] == "options.head"
    dropped = _load(zoo, "bert-sst", head="none")  # the classifier is left out, and said so
    assert dropped.harness_load_info["unused_weights"] == ["classifier.bias", "classifier.weight"]


def test_auto_head_without_architectures_reads_the_model_type() -> None:
    from transformers import BertConfig, GPT2Config, LlamaConfig

    from harness_plugins.sources.hf import choose_head

    assert choose_head("auto", GPT2Config())[0] == "causal-lm"
    assert choose_head("auto", LlamaConfig())[0] == "causal-lm"
    assert choose_head("auto", BertConfig())[0] == "none"  # bert is an encoder first
    assert choose_head("auto", SimpleNamespace(architectures=["BertForTokenClassification"]))[0] == "none"
    assert choose_head("masked-lm", GPT2Config()) == ("masked-lm", "options.head")


def _fidelity(tmp_path: Path, model, **keys):
    from harness_plugins.tasks.lm.fidelity import FidelityConfig, FidelityData

    (tmp_path / "text.txt").write_text(TEXT)
    task = FidelityData(FidelityConfig(text="text.txt", seq_len=16, **keys),
                        SimpleNamespace(device="cpu", seed=0, suite_dir=tmp_path))
    task.before_compression(model)
    return task


def _perturbed(model):
    import torch

    noisy = copy.deepcopy(model)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in noisy.parameters():
            p.add_(0.3 * p.std() * torch.randn_like(p))
    return noisy


def test_fidelity_of_an_encoder_compares_hidden_states(zoo, tmp_path: Path) -> None:
    model = _load(zoo, "bert")
    task = _fidelity(tmp_path, model)
    same = task.evaluate(model)
    assert same["fidelity_mode"] == "encoder" and same["fidelity_pooling"] == "mean"  # no sentence-transformers config
    assert same["fidelity_states"].startswith("mean of the last hidden states over the attention mask")
    assert same["cosine_mean"] == pytest.approx(1.0, abs=1e-9) and same["max_abs_diff"] == 0.0
    assert same["fidelity_positions"] == len([line for line in TEXT.splitlines() if line])
    moved = task.evaluate(_perturbed(model))
    assert moved["cosine_min"] <= moved["cosine_mean"] < 0.999 and moved["max_abs_diff"] > 0
    tokens = _fidelity(tmp_path, model, states="tokens", max_tokens=40)
    assert tokens.evaluate(model)["fidelity_positions"] == 40


@pytest.mark.parametrize("name, mode", [("bert-sst", "classifier"), ("bert-mlm", "masked-lm"), ("gpt2", "causal-lm")])
def test_fidelity_of_models_with_logits_compares_distributions(zoo, tmp_path: Path, name: str, mode: str) -> None:
    model = _load(zoo, name)
    task = _fidelity(tmp_path, model)
    same = task.evaluate(model)
    assert same["fidelity_mode"] == mode
    assert same["top1_agreement"] == 1.0 and same["kl_div_mean"] == pytest.approx(0.0, abs=1e-7)
    moved = task.evaluate(_perturbed(model))
    assert moved["kl_div_mean"] > 1e-4 and moved["kl_div_max"] >= moved["kl_div_mean"]
    if mode != "classifier":  # two well-separated classes may all keep their argmax
        assert moved["top1_agreement"] < 1.0


def test_fidelity_mode_that_does_not_fit_the_model_is_one_sentence(zoo, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode 'masked-lm' needs per-token logits, and BertModel has none"):
        _fidelity(tmp_path, _load(zoo, "bert"), mode="masked-lm")
    forced = _fidelity(tmp_path, _load(zoo, "bert-sst"), mode="encoder")  # a classifier's hidden states
    assert forced.evaluate(_load(zoo, "bert-sst"))["fidelity_states"].startswith("mean of the last hidden")


@pytest.mark.e2e
def test_bench_gpt2_llama_and_a_bert_encoder(zoo_bench) -> None:
    _, proc, rows = zoo_bench
    by = {key: row for key, row in rows.items() if key[0] in ("gpt2", "llama", "bert")}
    assert len(by) == 16, proc.stdout[-3000:] + proc.stderr[-3000:]
    for key, row in by.items():
        assert row["status"] == "ok", (key, row.get("error"))
        assert row["metrics"]["model_load"]["class"] in ("GPT2LMHeadModel", "LlamaForCausalLM", "BertModel")
        if row["task"] == "ppl":
            assert row["metrics"]["ttft_ms"] > 0 and row["metrics"]["perplexity"] > 1, key
    assert by[("bert", "fid", "baseline")]["metrics"]["cosine_mean"] == pytest.approx(1.0, abs=1e-9)
    assert by[("bert", "fid", "baseline")]["metrics"]["fidelity_mode"] == "encoder"
    assert by[("llama", "fid", "baseline")]["metrics"]["top1_agreement"] == 1.0
    assert by[("bert", "fid", "magnitude")]["metrics"]["cosine_mean"] < 1.0
    assert by[("gpt2", "fid", "structured")]["metrics"]["params"] < by[("gpt2", "fid", "baseline")]["metrics"]["params"]
