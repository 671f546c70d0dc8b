"""Structured channel removal with torch-pruning, for plain networks and transformers.

Plain networks (MLPs, CNNs): every Linear/Conv layer may lose output channels, following
the dependencies between layers; the model's output layers keep their outputs.
transformers models: only the MLP's intermediate channels go (GPT-2 ``c_fc``, Llama
``gate_proj``/``up_proj``, BERT ``intermediate.dense``, and the layer reading them loses
the same inputs). Attention heads and the hidden size stay: HF attention reshapes by
``num_heads``/``head_dim`` read from its config, which torch-pruning cannot rewrite.
No torch at module top.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from harness.api import Skip
from harness.toolkit import output_layers, target_layers

MLP_ONLY = ("MLP intermediate channels only: attention heads and the hidden size are kept "
            "(HF attention reshapes by num_heads/head_dim from its config)")


def is_transformers(model: Any) -> bool:
    return type(model).__module__.startswith("transformers") and hasattr(model, "config")


def first_tensor(output: Any) -> Any:
    """The tensor torch-pruning traces back from: logits, last hidden state or the first output."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    for key in ("logits", "last_hidden_state"):
        if getattr(output, key, None) is not None:
            return getattr(output, key)
    return output[0]


def mlp_roots(model: Any, layers: list[tuple[str, Any]], outputs: list[Any]) -> list[Any]:
    """The Linear layers that widen the hidden size into an MLP's intermediate size,
    outside attention and the output layers."""
    hidden = getattr(model.config, "hidden_size", None)
    keep = {id(m) for m in outputs}

    def in_attention(name: str) -> bool:
        parts = name.split(".")
        return any("Attention" in type(model.get_submodule(".".join(parts[:i]))).__name__
                   for i in range(1, len(parts)))

    return [m for name, m in layers
            if getattr(m, "in_features", None) == hidden and m.out_features != hidden
            and id(m) not in keep and not in_attention(name)]


@contextlib.contextmanager
def no_cache(model: Any) -> Iterator[None]:
    """transformers' KV cache concatenates tensors torch-pruning cannot map: off while tracing."""
    config = getattr(model, "config", None)
    saved = getattr(config, "use_cache", None)
    if saved is not None:
        config.use_cache = False
    try:
        yield
    finally:
        if saved is not None:
            config.use_cache = saved


def shrink_channels(model: Any, example: Any, amount: float, importance: str = "l2") -> tuple[dict[str, str], str]:
    """Remove ``amount`` of the prunable channels in place (see the module docstring);
    return the changed shapes by layer and the scope pruned. Raises :class:`Skip` when
    there is nothing torch-pruning can remove or it cannot trace the model."""
    import torch_pruning as tp

    layers = target_layers(model, conv=True, include_head=True)
    shapes_before = {name: tuple(m.weight.shape) for name, m in layers}
    outputs = output_layers(model, example)  # their outputs (classes, vocabulary) keep their size
    ignored, scope = outputs, "every Linear/Conv layer's output channels, except the model's outputs"
    if is_transformers(model):
        roots = mlp_roots(model, layers, outputs)
        if not roots:
            raise Skip(f"no MLP up-projection found in {type(model).__name__}; only MLP intermediate "
                       "channels are pruned in transformers models (attention heads and the hidden size are kept)")
        ids = {id(m) for m in roots}
        ignored, scope = [m for _, m in layers if id(m) not in ids], MLP_ONLY
    scorer = tp.importance.GroupMagnitudeImportance(p=2 if importance == "l2" else 1)
    with no_cache(model):
        try:
            pruner = tp.pruner.BasePruner(model, example, importance=scorer, pruning_ratio=amount,
                                          ignored_layers=ignored, output_transform=first_tensor)
        except Exception as exc:  # tracing: the model is not changed yet
            raise Skip(f"torch-pruning could not trace {type(model).__name__}'s layer dependencies "
                       f"({type(exc).__name__}: {exc})") from None
        pruner.step()
    shapes = {name: f"{list(shapes_before[name])} -> {list(m.weight.shape)}"
              for name, m in target_layers(model, conv=True, include_head=True)
              if tuple(m.weight.shape) != shapes_before.get(name)}
    return shapes, scope
