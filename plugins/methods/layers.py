"""Which layers a method touches, for every family of built-in methods.

One rule for every built-in method: Linear (and, where a method says so, Conv) layers are
compressed; a causal LM's output head (a module named ``lm_head``) and embedding layers
are left alone unless the method's params ask for them (``include_head`` /
``include_embeddings``), since compressing them costs the most quality for the least
size. No torch at module top. (A method's ``library`` and ``params_*`` facts come from
:func:`harness.toolkit.library` and :func:`harness.toolkit.count_params`.)
"""

from __future__ import annotations

import copy
from typing import Any

HEAD_NAMES = ("lm_head",)


def is_head(name: str) -> bool:
    return name.rsplit(".", 1)[-1] in HEAD_NAMES


def target_layers(model: Any, *, conv: bool = False, include_head: bool = False,
                  include_embeddings: bool = False) -> list[tuple[str, Any]]:
    """(name, module) of the layers a method should compress, in model order.

    :param conv: also Conv1d/2d/3d layers (pruning); quantizers touch Linear only.
    """
    import torch

    kinds: tuple[type, ...] = (torch.nn.Linear,)
    if conv:
        kinds += (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
    if include_embeddings:
        kinds += (torch.nn.Embedding,)
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, kinds) and (include_head or not is_head(name))]


def layer_filter(names: list[str]) -> Any:
    """A torchao ``filter_fn(module, fqn)`` that accepts exactly ``names``."""
    wanted = set(names)
    return lambda module, fqn: fqn in wanted


def fresh_copy(model: Any, seed: int) -> Any:
    """A copy of ``model`` with every layer re-initialised from ``seed``: the same
    architecture trained from nothing (for from-scratch comparisons)."""
    import torch

    fresh = copy.deepcopy(model)
    torch.manual_seed(seed)
    for module in fresh.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return fresh


def output_layers(model: Any, example: Any) -> list[Any]:
    """The Linear/Conv layers whose outputs are the model's outputs (the last such
    layer to run), found by running ``example`` once: their outputs must not shrink."""
    import torch

    kinds = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
    order: list[Any] = []
    hooks = [m.register_forward_hook(lambda mod, i, o: order.append(mod))
             for m in model.modules() if isinstance(m, kinds)]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    heads = [m for name, m in model.named_modules() if is_head(name)]
    return ([order[-1]] if order else []) + [m for m in heads if not order or m is not order[-1]]


def no_layers(model: Any, what: str) -> str:
    """Why a method finds no ``what`` in ``model``: a TorchScript or torch.export graph
    holds its layers as code, not as modules a method can change — say so, and the fix."""
    import torch

    kind = ("a TorchScript archive" if isinstance(model, torch.jit.ScriptModule)
            else "a torch.export graph" if isinstance(model, torch.fx.GraphModule) else None)
    if kind is None:
        return f"the model has no {what}"
    return (f"the model is {kind}: it can be evaluated and measured, but methods change an eager "
            "nn.Module's layers; save the model with torch.save(model) (and options = { unsafe_pickle = true }) "
            "or load it from its code")
