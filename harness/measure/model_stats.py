"""Static facts about a model: serialized size, bytes in memory, parameter count, share of
zero weights.

Every function here works on any weight a compression library leaves behind: plain
tensors, torch.ao packed modules, and tensor subclasses (torchao's int4/int8/float8
tensors, semi-structured sparse tensors). Sizes come from the tensors a subclass really
stores (``__tensor_flatten__``: packed data, scales, zero points), not from its logical
dtype. Storage shared between modules (tied weights) is counted once. :func:`static_figures`
turns them into figures; a statistic that cannot be had for some tensor type is absent
with the reason, never an error.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from harness.measure.figures import Figures


def serialized_size_bytes(model: Any) -> int:
    """Bytes of ``torch.save(model.state_dict())``: what you would ship (torch.save
    writes a storage shared by several entries once)."""
    import torch

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def stored_tensors(tensor: Any) -> list[Any]:
    """The plain tensors ``tensor`` is made of: itself, or a wrapper subclass's inner
    tensors (recursively)."""
    from torch.utils._python_dispatch import is_traceable_wrapper_subclass

    if not is_traceable_wrapper_subclass(tensor):
        return [tensor]
    names, _ = tensor.__tensor_flatten__()
    return [leaf for name in names if getattr(tensor, name, None) is not None
            for leaf in stored_tensors(getattr(tensor, name))]


def _storage_key(tensor: Any) -> tuple[Any, ...]:
    try:
        ptr = tensor.untyped_storage().data_ptr()
    except Exception:
        ptr = 0
    if not ptr:  # no storage of its own (meta, empty): never shared
        return ("id", id(tensor))
    return (str(tensor.device), ptr, tensor.storage_offset(), tuple(tensor.shape))


def _is_embedding(module: Any) -> bool:
    """A lookup table (``nn.Embedding``/``EmbeddingBag`` and their quantized forms): its
    weight is 2-D, but it is not a Linear/Conv layer."""
    return any(cls.__name__ in ("Embedding", "EmbeddingBag") for cls in type(module).__mro__)


def _layer_weights(model: Any, embeddings: bool) -> Iterator[tuple[str, Any]]:
    for name, module in model.named_modules():
        if _is_embedding(module) != embeddings:
            continue
        weight = getattr(module, "weight", None)
        if callable(weight) and not hasattr(weight, "shape"):  # torch.ao quantized modules
            try:
                weight = weight()
            except Exception:
                continue
        if weight is None or not hasattr(weight, "dim") or weight.dim() < 2:
            continue
        yield name, weight


def weight_tensors(model: Any) -> Iterator[tuple[str, Any]]:
    """(name, weight) of every Linear/Conv-like layer, including quantized ones (every
    module with a weight of 2 or more dimensions except embedding tables)."""
    return _layer_weights(model, embeddings=False)


def embedding_tensors(model: Any) -> Iterator[tuple[str, Any]]:
    """(name, weight) of every embedding table (``nn.Embedding``, ``nn.EmbeddingBag``)."""
    return _layer_weights(model, embeddings=True)


def count_params(model: Any) -> int:
    """Parameters by logical shape (packed quantized weights included), each storage
    once: a weight tied to another (a head sharing the embedding matrix) is one tensor."""
    seen: set[tuple[Any, ...]] = set()
    alive: list[Any] = []  # unpacked weights are temporaries: keep them so no address is reused
    total = 0

    def add(tensor: Any) -> None:
        nonlocal total
        alive.append(tensor)
        key = _storage_key(stored_tensors(tensor)[0])
        if key not in seen:
            seen.add(key)
            total += tensor.numel()

    for param in model.parameters():
        add(param)
    for _, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if callable(weight) and not hasattr(weight, "shape"):  # packed: not in parameters()
            try:
                add(weight())
                bias = module.bias()
                if bias is not None:
                    add(bias)
            except Exception:
                continue
    return total


def zero_count(tensor: Any) -> tuple[int, int]:
    """(exact zeros, elements) of a weight, dequantizing a quantized one. Raises when the
    tensor type can neither be compared nor dequantized (e.g. tile-packed int4)."""
    import torch

    if getattr(tensor, "is_quantized", False):
        tensor = tensor.dequantize()
    elif type(tensor) not in (torch.Tensor, torch.nn.Parameter):  # a subclass: its own way to dense values
        try:
            tensor = tensor.dequantize()
        except Exception:
            tensor = tensor.to_dense()  # semi-structured sparse tensors
    dense = tensor.detach()
    return int((dense == 0).sum()), dense.numel()


def zero_fraction(tensors: list[Any]) -> float | None:
    """Share of exact zeros over ``tensors``; None when there are none, or when one of
    them is of a type whose zeros cannot be counted (see :func:`sparsity`)."""
    value, _ = _zeros(list(enumerate(tensors)))
    return value


def _weight_key(tensor: Any) -> tuple[Any, ...]:
    try:
        leaves = stored_tensors(tensor)
    except Exception:
        leaves = []
    return _storage_key(leaves[0]) if leaves else ("id", id(tensor))


def _zeros(weights: list[tuple[Any, Any]]) -> tuple[float | None, list[str]]:
    zeros = total = 0
    unreadable: dict[str, int] = {}
    seen: set[tuple[Any, ...]] = set()
    alive = [tensor for _, tensor in weights]  # unpacked weights are temporaries: no address reused
    for tensor in alive:
        key = _weight_key(tensor)
        if key in seen:  # a weight tied to another layer's counts once
            continue
        seen.add(key)
        try:
            z, n = zero_count(tensor)
        except Exception:
            unreadable[type(tensor).__name__] = unreadable.get(type(tensor).__name__, 0) + 1
            continue
        zeros, total = zeros + z, total + n
    if unreadable:
        return None, [f"{n} {kind}" for kind, n in sorted(unreadable.items())]
    return (zeros / total if total else None), []


def sparsity(model: Any) -> tuple[float | None, str]:
    """(share of exact zeros over all Linear/Conv weights, how) — or (None, why not).
    Embedding tables are not counted (see :func:`embedding_sparsity`)."""
    weights = list(weight_tensors(model))
    if not weights:
        return None, "the model has no Linear/Conv weights"
    value, unreadable = _zeros(weights)
    if value is None:
        return None, (f"the zeros of {', '.join(unreadable)} weight(s) cannot be counted: the tensor type "
                      "offers neither dequantize() nor to_dense()")
    return value, "share of exact zeros in Linear/Conv weights (quantized weights dequantized; embeddings apart)"


def embedding_sparsity(model: Any) -> float | None:
    """Share of exact zeros over the embedding tables (None: the model has none, or their
    zeros cannot be counted)."""
    weights = list(embedding_tensors(model))
    return _zeros(weights)[0] if weights else None


def weight_sparsity(model: Any) -> float | None:
    """Share of zeros over the weights of all Linear/Conv layers (None: see :func:`sparsity`)."""
    return sparsity(model)[0]


def weight_bytes(model: Any) -> int:
    """Bytes of the tensors in the model's state (weights and buffers; packed quantized
    weights and tensor subclasses by what they store), each storage counted once."""
    seen: set[tuple[Any, ...]] = set()
    total = 0

    def add(value: Any) -> None:
        nonlocal total
        if isinstance(value, (tuple, list)):
            for item in value:
                add(item)
            return
        if not hasattr(value, "element_size") or not hasattr(value, "numel"):
            return
        for leaf in stored_tensors(value):
            key = _storage_key(leaf)
            if key not in seen:
                seen.add(key)
                total += leaf.numel() * leaf.element_size()

    for value in model.state_dict().values():
        add(value)
    return total


def weight_formats(model: Any) -> dict[str, dict[str, Any]]:
    """By weight type (a tensor subclass's name, else the dtype): how many Linear/Conv
    weights, their stored bits per weight (data, scales and zero points over logical
    elements) and the block sizes the tensors declare (the last entry is the group size)."""
    import torch

    formats: dict[str, dict[str, Any]] = {}
    for _, weight in weight_tensors(model):
        plain = type(weight) in (torch.Tensor, torch.nn.Parameter)
        entry = formats.setdefault(str(weight.dtype).removeprefix("torch.") if plain else type(weight).__name__,
                                   {"layers": 0, "elements": 0, "stored_bytes": 0, "block_sizes": []})
        entry["layers"] += 1
        entry["elements"] += weight.numel()
        entry["stored_bytes"] += sum(t.numel() * t.element_size() for t in stored_tensors(weight))
        block = getattr(weight, "block_size", None)
        if block is not None and list(block) not in entry["block_sizes"]:
            entry["block_sizes"].append(list(block))
    for entry in formats.values():
        entry["bits_per_weight"] = round(8 * entry.pop("stored_bytes") / entry.pop("elements"), 3)
        if not entry["block_sizes"]:
            del entry["block_sizes"]
    return formats


def static_figures(model: Any) -> Figures:
    """Size, bytes in memory, parameters, weight formats and sparsity; each absent with
    the reason when it cannot be had for this model (in another runtime: the size of its
    stored weights, the rest of the torch model it was exported from)."""
    if hasattr(model, "source") and getattr(model, "runtime", None):
        return _runtime_figures(model, model.runtime)
    f = Figures()
    statistics = [
        ("size_bytes", lambda: serialized_size_bytes(model), "bytes of torch.save(state_dict)"),
        ("model_weight_mb", lambda: weight_bytes(model) / 1e6,
         "bytes of the state_dict tensors (weights and buffers; tensor subclasses by their stored "
         "tensors) in memory, each storage once"),
        ("params", lambda: count_params(model), "parameters, packed weights by logical shape, shared storage once"),
        ("weight_formats", lambda: weight_formats(model) or None,
         "Linear/Conv weights by tensor type: stored bits per weight (data, scales, zero points), block size"),
    ]
    for key, compute, how in statistics:
        try:
            value = compute()
        except Exception as exc:
            f.absent(key, f"could not be computed for this model ({type(exc).__name__}: {exc})"[:300])
            continue
        if value is None:
            f.absent(key, "the model has no Linear/Conv weights")
        else:
            f.measured(key, value, how)
    if "size_bytes" in f.metrics:
        f.measured("size_mb", f.metrics["size_bytes"] / 1e6, "bytes of torch.save(state_dict) / 1e6")
    else:
        f.absent("size_mb", f.provenance["size_bytes"].split(":", 1)[1].strip())
    try:
        value, how = sparsity(model)
    except Exception as exc:
        value, how = None, f"could not be computed ({type(exc).__name__}: {exc})"[:300]
    if value is None:
        f.absent("sparsity", how)
    else:
        f.measured("sparsity", value, how)
    try:
        embedded = embedding_sparsity(model)
    except Exception:
        embedded = None
    if embedded is not None:  # absent, without a reason, where there are no embeddings
        f.measured("embedding_sparsity", embedded, "share of exact zeros in the embedding tables")
    return f


def _runtime_figures(model: Any, runtime: str) -> Figures:
    f = static_figures(model.source)
    for key in ("size_bytes", "size_mb", "model_weight_mb", "weight_formats"):
        f.metrics.pop(key, None), f.provenance.pop(key, None)
    if model.weight_bytes is None:
        f.absent("size_mb", f"the {runtime} runtime does not say how large its stored weights are")
    else:
        f.measured("size_mb", model.weight_bytes / 1e6, f"bytes of the {runtime} graph's stored weights / 1e6")
    for key in ("params", "sparsity", "embedding_sparsity"):
        if key in f.metrics:
            f.provenance[key] += f" (of the torch model exported to {runtime})"
    return f
