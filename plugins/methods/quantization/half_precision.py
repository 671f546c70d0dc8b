"""A wrapper that runs a model in half precision behind a float32 interface.

The harness and tasks feed float32 inputs; a model cast to fp16/bf16 needs its inputs cast
and its outputs brought back, or evaluation and timing would fail on a dtype mismatch.
A model whose own ``forward`` casts its input back to float32 (``x.float()``) still fails
that way; :func:`half_model` finds out with one trial batch and runs such a model under
``torch.autocast`` instead, or skips it with the error. Imported only inside ``apply``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from harness.api import Skip


def _cast(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(dtype)
    return value


class HalfPrecision(nn.Module):
    """``model`` with weights in ``dtype``; floating inputs are cast in, tensor outputs
    are returned as float32. Integer inputs (token ids) pass through unchanged. With
    ``use_autocast`` the forward runs under ``torch.autocast`` for the weights' device,
    so a float32 tensor the model makes itself meets its half weights in ``dtype``."""

    def __init__(self, model: nn.Module, dtype: torch.dtype, use_autocast: bool = False):
        super().__init__()
        self.model = model.to(dtype)
        self.dtype = dtype
        self.use_autocast = use_autocast

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        args = tuple(_cast(a, self.dtype) for a in args)
        kwargs = {k: _cast(v, self.dtype) for k, v in kwargs.items()}
        if self.use_autocast:
            with torch.autocast(self.device_type(), dtype=self.dtype):
                out = self.model(*args, **kwargs)
        else:
            out = self.model(*args, **kwargs)
        return out.float() if isinstance(out, torch.Tensor) and out.is_floating_point() else out

    def device_type(self) -> str:
        first = next(self.model.parameters(), None)
        return first.device.type if first is not None else "cpu"


def trial_error(model: nn.Module, example: Any) -> str | None:
    """The error one forward pass of ``example`` raises, or None when it runs."""
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example)
    except (RuntimeError, TypeError, ValueError) as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        model.train(training)
    return None


def half_model(model: nn.Module, dtype: torch.dtype, ctx: Any) -> tuple[HalfPrecision, dict[str, str]]:
    """``model`` in ``dtype`` and how it runs (``{"half_precision": …}`` for ``info``),
    decided by one forward pass of the task's example input: inputs cast in; else, when
    that fails, under ``torch.autocast``; else :class:`Skip` with both errors."""
    wrapped = HalfPrecision(model, dtype)
    name = str(dtype).removeprefix("torch.")
    if ctx.task is None:
        return wrapped, {"half_precision": "weights and inputs cast (no example input to try)"}
    example = ctx.task.example_input(1)
    cast_error = trial_error(wrapped, example)
    if cast_error is None:
        return wrapped, {"half_precision": f"weights and inputs cast to {name}"}
    wrapped.use_autocast = True
    autocast_error = trial_error(wrapped, example)
    if autocast_error is None:
        return wrapped, {"half_precision": (
            f"weights in {name}, forward under torch.autocast({wrapped.device_type()!r}, {name}): with its "
            f"inputs cast the model's forward fails ({cast_error}), so autocast picks each op's precision")}
    raise Skip(f"the model does not run in {name}: with its inputs cast, {cast_error}; "
               f"under torch.autocast, {autocast_error}")
