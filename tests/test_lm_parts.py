"""The LM pieces one by one: suites validate offline, the hf source's checks and errors,
perplexity windows and figures, fidelity on a classifier, the task data in step with the
corpus generator. Every head of the hf source and every fidelity mode: test_hf_models.py."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import ROOT, cli, write_suite

pytest.importorskip("transformers")


@pytest.mark.parametrize("suite", ["lm-quickstart.toml", "llm.toml", "bert-sst2.toml"])
def test_lm_suites_validate_offline(suite: str) -> None:
    proc = cli("validate", str(ROOT / "suites" / suite))
    assert proc.returncode == 0, proc.stderr


def test_task_data_matches_the_world_generator(tmp_path: Path) -> None:
    from harness_plugins.data import world

    world.write_task_files(str(tmp_path))
    for name in ("world_mc.jsonl", "world_qa.jsonl", "world.txt"):
        assert (tmp_path / name).read_text() == (ROOT / "suites" / "tasks" / name).read_text(), name
    rows = [json.loads(x) for x in (tmp_path / "world_mc.jsonl").read_text().splitlines()]
    assert all(r["choices"][r["label"]] in world.text() for r in rows)


def test_hf_source_checks_refs_without_network(tmp_path: Path) -> None:
    from harness_plugins.sources.hf import HFOptions, HFSource

    source = HFSource()
    assert source.check_ref("Qwen/Qwen2.5-0.5B", HFOptions(), tmp_path) is None
    assert "does not exist" in source.check_ref("./no-such-model", HFOptions(), tmp_path)
    (tmp_path / "empty").mkdir()
    assert "no config.json" in source.check_ref("./empty", HFOptions(), tmp_path)


def test_missing_local_model_is_a_validation_error(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, """
        [suite]
        name = "bad"
        [[models]]
        name = "m"
        source = "hf"
        ref = "./models/nowhere"
        [[tasks]]
        name = "t"
        kind = "perplexity"
        text = "missing.txt"
    """)
    proc = cli("validate", str(suite))
    assert proc.returncode != 0
    assert "models[0].ref" in proc.stderr and "does not exist" in proc.stderr
    assert "tasks[0]: text: file 'missing.txt' does not exist" in proc.stderr


def test_offline_hub_id_fails_fast_with_one_sentence() -> None:
    from harness_plugins.sources.hf import HFOptions, load_pretrained

    t0 = time.monotonic()
    with pytest.raises(RuntimeError) as err:
        load_pretrained("harness-test/not-cached-anywhere", HFOptions(), "cpu")
    assert time.monotonic() - t0 < 60  # not a hang (a generous bound, not a timing figure)
    message = str(err.value)
    assert "HF_HUB_OFFLINE=1" in message and "\n" not in message


def test_perplexity_windows_score_every_token_once() -> None:
    from harness_plugins.tasks.lm.perplexity import windows

    for n, length, stride in [(10, 4, 3), (10, 4, 2), (3, 8, 7), (100, 16, 100)]:
        scored = [p for begin, end, first in windows(n, length, stride) for p in range(first, end)]
        assert scored == list(range(1, n))
        assert all(end - begin <= length and begin < first for begin, end, first in windows(n, length, stride))


def _ctx(tmp_path: Path) -> SimpleNamespace:
    return SimpleNamespace(device="cpu", seed=0, suite_dir=ROOT / "suites", work_dir=tmp_path)


def test_perplexity_and_bits_per_byte_agree(tmp_path: Path, model_cache: Path) -> None:
    from harness_plugins.sources.builtin import world_lm
    from harness_plugins.tasks.lm.perplexity import PerplexityConfig, PerplexityData

    model = world_lm.load("world-lm-mini", "cpu")
    figures = []
    for stride in (None, 32):
        task = PerplexityData(PerplexityConfig(text="tasks/world.txt", max_length=64, stride=stride), _ctx(tmp_path))
        task.before_compression(model)
        figures.append(task.evaluate(model))
    disjoint, overlapping = figures
    nll = math.log(disjoint["perplexity"]) * disjoint["eval_tokens"]
    assert disjoint["bits_per_byte"] == pytest.approx(nll / math.log(2) / disjoint["eval_bytes"])
    assert 1 < overlapping["perplexity"] <= disjoint["perplexity"] < 1000  # more context helps


def test_fidelity_on_a_digits_classifier(tmp_path: Path, model_cache: Path) -> None:
    import copy

    import torch

    from harness_plugins.sources.builtin import digits
    from harness_plugins.tasks.lm.fidelity import FidelityConfig, FidelityData

    model = digits.load_trained("digits-mlp-w32")
    task = FidelityData(FidelityConfig(dataset="digits"), _ctx(tmp_path))
    task.before_compression(model)
    same = task.evaluate(model)
    assert same["top1_agreement"] == 1.0 and same["kl_div_mean"] < 1e-6
    noisy = copy.deepcopy(model)
    with torch.no_grad():
        for p in noisy.parameters():
            p.add_(0.3 * p.std() * torch.randn_like(p))
    moved = task.evaluate(noisy)
    assert moved["top1_agreement"] < 1.0 and moved["kl_div_mean"] > 1e-3
    assert task.example_input(4).shape[0] == 4


def test_a_text_task_on_a_model_without_a_tokenizer_skips_saying_how_to_pair_them(tmp_path: Path,
                                                                                  model_cache: Path) -> None:
    """A text fidelity task applies to every model of its suite unless it names some: on
    the digits MLP it skips with the fix (it raised AttributeError: no name_or_path)."""
    from harness.api import Skip
    from harness_plugins.sources.builtin import digits
    from harness_plugins.tasks.lm.fidelity import FidelityConfig, FidelityData

    (tmp_path / "text.txt").write_text("a few words of text\n" * 20)
    task = FidelityData(FidelityConfig(text="text.txt"), _ctx(tmp_path))
    with pytest.raises(Skip, match=r"this model \(DigitsMLP\) has none .*give the task models = \[...\]"):
        task.before_compression(digits.load_trained("digits-mlp"))


def test_magnitude_pruning_on_the_lm_leaves_head_and_embeddings(tmp_path: Path, model_cache: Path) -> None:
    from harness_plugins.methods.pruning.magnitude import Magnitude, MagnitudeParams
    from harness_plugins.sources.builtin import world_lm
    from harness_plugins.tasks.lm.fidelity import FidelityConfig, FidelityData

    model = world_lm.load("world-lm-mini", "cpu")
    task = FidelityData(FidelityConfig(text="tasks/world.txt", max_tokens=256), _ctx(tmp_path))
    task.before_compression(model)
    head, embeddings = model.lm_head.weight.clone(), model.model.embed_tokens.weight.clone()
    pruned, _ = Magnitude().apply(model, MagnitudeParams(amount=0.5), _ctx(tmp_path))
    mlp = pruned.model.layers[0].mlp.up_proj.weight
    assert float((mlp == 0).float().mean()) == pytest.approx(0.5, abs=0.01)
    assert pruned.lm_head.weight.equal(head) and pruned.model.embed_tokens.weight.equal(embeddings)
    moved = task.evaluate(pruned)
    assert moved["kl_div_mean"] > 1e-4 and moved["top1_agreement"] < 1.0


def test_hf_prepare_never_touches_the_network_offline_or_for_local_dirs(tmp_path, monkeypatch) -> None:
    import huggingface_hub

    from harness_plugins.sources.hf import HFOptions, HFSource

    def no_download(*args, **kwargs):
        raise AssertionError("prepare must not download here")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_download)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    HFSource().prepare("Qwen/Qwen2.5-0.5B", HFOptions(), tmp_path)
    (tmp_path / "local-model").mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    HFSource().prepare("./local-model", HFOptions(), tmp_path)


def test_gpt2_is_a_causal_lm_and_a_bert_encoder_is_not() -> None:
    from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel

    from harness_plugins.sources.hf import is_causal_lm

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50, n_positions=32))
    assert is_causal_lm(gpt2)
    bert = BertModel(BertConfig(num_hidden_layers=1, num_attention_heads=2, hidden_size=16,
                                intermediate_size=32, vocab_size=50)).eval()
    assert not is_causal_lm(bert)  # fidelity compares its hidden states: tests/test_hf_models.py
