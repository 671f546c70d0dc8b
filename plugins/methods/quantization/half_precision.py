"""A wrapper that runs a model in half precision behind a float32 interface.

The harness and tasks feed float32 inputs; a model cast to fp16/bf16 needs its inputs cast
and its outputs brought back, or evaluation and timing would fail on a dtype mismatch.
Imported only inside ``apply``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def _cast(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(dtype)
    return value


class HalfPrecision(nn.Module):
    """``model`` with weights in ``dtype``; floating inputs are cast in, tensor outputs
    are returned as float32. Integer inputs (token ids) pass through unchanged."""

    def __init__(self, model: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.model = model.to(dtype)
        self.dtype = dtype

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        args = tuple(_cast(a, self.dtype) for a in args)
        kwargs = {k: _cast(v, self.dtype) for k, v in kwargs.items()}
        out = self.model(*args, **kwargs)
        return out.float() if isinstance(out, torch.Tensor) and out.is_floating_point() else out
