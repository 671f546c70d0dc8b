"""``torch``: the compressed model as PyTorch runs it (eager, or with each of
``[measure] compile``'s torch.compile modes, which the timer applies)."""

from __future__ import annotations

from typing import Any, ClassVar

from harness.api import Runtime


class TorchRuntime(Runtime):
    name = "torch"
    description = "PyTorch itself: eager, and torch.compile with [measure] compile (the default runtime)"
    libraries: ClassVar[tuple[str, ...]] = ("torch",)

    def export(self, module: Any, inputs: tuple[Any, ...], names: list[str], outputs: list[str], ctx: Any) -> Any:
        raise NotImplementedError("the torch runtime runs the model itself; the worker never exports it")
