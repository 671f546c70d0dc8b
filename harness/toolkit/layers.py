"""Which layers a method touches, for every family of built-in methods.

One rule for every built-in method: Linear (and, where a method says so, Conv) layers are
compressed; the model's output head and embedding layers are left alone unless the
method's params ask for them (``include_head`` / ``include_embeddings``), since
compressing them costs the most quality for the least size. The head is found by
identity, not by name: any layer whose weight shares storage with an embedding (a tied
head: GPT-2's ``lm_head``, BERT's ``cls.predictions.decoder``), the module
``get_output_embeddings()`` returns on a transformers model, every layer of a transformers
model outside its base model (a classifier's ``classifier``/``score``), and a module named
``lm_head`` on any other model.

transformers' ``Conv1D`` (GPT-2 family) is a linear layer with its weight transposed;
:func:`target_layers` turns each into an equivalent ``nn.Linear`` in place, so every
method that acts on Linear layers acts on it. No torch at module top. (A method's
``library`` and ``params_*`` facts come from :func:`harness.toolkit.library` and
:func:`harness.toolkit.count_params`.)
"""

from __future__ import annotations

import copy
from typing import Any

HEAD_NAMES = ("lm_head",)


def is_head(name: str) -> bool:
    """The name rule, for models that do not say which module is their output head."""
    return name.rsplit(".", 1)[-1] in HEAD_NAMES


def is_conv1d(module: Any) -> bool:
    """A transformers ``Conv1D`` (checked by class, so transformers is never imported)."""
    cls = type(module)
    return cls.__name__ == "Conv1D" and cls.__module__.startswith("transformers")


def conv1d_to_linear(model: Any) -> list[str]:
    """Replace every transformers ``Conv1D`` in ``model`` by the equivalent ``nn.Linear``
    (weight transposed, bias kept, same outputs); return the names replaced."""
    import torch

    found = [(name, m) for name, m in model.named_modules() if name and is_conv1d(m)]
    for name, conv in found:
        n_in, n_out = conv.weight.shape
        linear = torch.nn.Linear(n_in, n_out, bias=conv.bias is not None,
                                 device=conv.weight.device, dtype=conv.weight.dtype)
        with torch.no_grad():
            linear.weight.copy_(conv.weight.t())
            if conv.bias is not None:
                linear.bias.copy_(conv.bias)
        linear.weight.requires_grad_(conv.weight.requires_grad)
        parent_name, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, attr, linear)
    return [name for name, _ in found]


def _storage(tensor: Any) -> tuple[str, int] | None:
    try:
        ptr = tensor.untyped_storage().data_ptr()
    except Exception:  # tensor subclasses, meta tensors: no storage of their own to share
        return None
    return (str(tensor.device), ptr) if ptr else None


def head_modules(model: Any) -> list[Any]:
    """The model's output head(s) and every layer tied to an embedding, by identity."""
    import torch

    embedded = {_storage(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)} - {None}
    heads: dict[int, Any] = {}
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        tied = isinstance(weight, torch.Tensor) and not isinstance(module, torch.nn.Embedding) \
            and _storage(weight) in embedded
        if tied or is_head(name):
            heads[id(module)] = module
        output = getattr(module, "get_output_embeddings", None)
        if callable(output) and type(module).__module__.startswith("transformers"):
            try:
                head = output()
            except Exception:  # a model without an output head may raise instead of returning None
                head = None
            if isinstance(head, torch.nn.Module):
                heads[id(head)] = head
    for module in _outside_base_model(model):
        heads[id(module)] = module
    return list(heads.values())


def _outside_base_model(model: Any) -> list[Any]:
    """A transformers model with a task head (``BertForSequenceClassification``: ``bert`` +
    ``classifier``; ``ViTForImageClassification``: ``vit`` + ``classifier``): the layers
    with weights outside its base model (``model.base_model_prefix``) are its head."""
    import torch

    heads: list[Any] = []
    for outer in model.modules():  # the transformers model itself, or inside a wrapper (e.g. HalfPrecision)
        prefix = getattr(outer, "base_model_prefix", "")
        base = getattr(outer, prefix, None) if prefix and type(outer).__module__.startswith("transformers") else None
        if isinstance(base, torch.nn.Module) and base is not outer:
            inside = {id(m) for m in base.modules()}
            heads += [m for m in outer.modules() if id(m) not in inside and not isinstance(m, torch.nn.Embedding)
                      and isinstance(getattr(m, "weight", None), torch.Tensor)]
            break
    return heads


def head_names(model: Any) -> list[str]:
    """Names of :func:`head_modules` (for APIs that select layers by name)."""
    heads = {id(m) for m in head_modules(model)}
    return [name for name, m in model.named_modules() if id(m) in heads]


def target_layers(model: Any, *, conv: bool = False, include_head: bool = False,
                  include_embeddings: bool = False) -> list[tuple[str, Any]]:
    """(name, module) of the layers a method should compress, in model order. Converts
    transformers ``Conv1D`` layers to ``nn.Linear`` first (in place, same outputs).

    :param conv: also Conv1d/2d/3d layers (pruning); quantizers touch Linear only.
    """
    import torch

    conv1d_to_linear(model)
    kinds: tuple[type, ...] = (torch.nn.Linear,)
    if conv:
        kinds += (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
    if include_embeddings:
        kinds += (torch.nn.Embedding,)
    heads = set() if include_head else {id(m) for m in head_modules(model)}
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, kinds) and id(m) not in heads]


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
    """The layers whose outputs are the model's outputs: the last Linear/Conv layer to
    run on ``example``, and the output head / tied layers of :func:`head_modules`. Their
    outputs must not shrink."""
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
    heads = head_modules(model)
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
