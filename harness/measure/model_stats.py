"""Static facts about a model: serialized size, parameter count, share of zero weights."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any


def serialized_size_bytes(model: Any) -> int:
    """Bytes of ``torch.save(model.state_dict())``: what you would ship."""
    import torch

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def _plain(tensor: Any) -> Any:
    """A dense float view of a weight that may be quantized or a tensor subclass."""
    import torch

    if getattr(tensor, "is_quantized", False):
        return tensor.dequantize()
    if type(tensor) not in (torch.Tensor, torch.nn.Parameter) and hasattr(tensor, "dequantize"):
        return tensor.dequantize()
    return tensor.detach()


def weight_tensors(model: Any) -> Iterator[tuple[str, Any]]:
    """(name, weight) of every Linear/Conv-like layer, including quantized ones."""
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if callable(weight) and not hasattr(weight, "shape"):  # torch.ao quantized modules
            try:
                weight = weight()
            except Exception:
                continue
        if weight is None or not hasattr(weight, "dim") or weight.dim() < 2:
            continue
        yield name, weight


def count_params(model: Any) -> int:
    """Parameters, counting packed quantized weights by their logical shape."""
    total = sum(p.numel() for p in model.parameters())
    for _, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if callable(weight) and not hasattr(weight, "shape"):  # packed: not in parameters()
            try:
                total += weight().numel()
                bias = module.bias()
                total += bias.numel() if bias is not None else 0
            except Exception:
                continue
    return total


def zero_fraction(tensors: list[Any]) -> float | None:
    """Share of exact zeros over ``tensors`` (None when there are none)."""
    zeros = total = 0
    for tensor in tensors:
        dense = _plain(tensor)
        zeros += int((dense == 0).sum())
        total += dense.numel()
    return zeros / total if total else None


def weight_sparsity(model: Any) -> float | None:
    """Share of zeros over the weights of all Linear/Conv layers."""
    return zero_fraction([w for _, w in weight_tensors(model)])


def weight_bytes(model: Any) -> int:
    """Bytes of the tensors in the model's state (weights and buffers, packed quantized
    weights by their storage), each storage counted once."""
    seen: set[tuple[str, int]] = set()
    total = 0

    def add(value: Any) -> None:
        nonlocal total
        if isinstance(value, (tuple, list)):
            for item in value:
                add(item)
            return
        if not hasattr(value, "element_size") or not hasattr(value, "numel"):
            return
        try:
            key = (str(value.device), value.untyped_storage().data_ptr())
        except Exception:
            key = ("", id(value))
        if key[1] and key in seen:
            return
        seen.add(key)
        total += value.numel() * value.element_size()

    for value in model.state_dict().values():
        add(value)
    return total
