"""Wanda (Sun et al. 2023, arXiv 2306.11695): prune by |weight| x the L2 norm of the input
feature it multiplies, measured on calibration inputs, comparing weights within each
output row. No retraining. torchao's WandaSparsifier compares across the whole layer,
not per row as the paper does, so the metric is computed here and the masks are applied
and made permanent with torch.nn.utils.prune."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.api import Method
from harness.toolkit import count_params, no_layers, target_layers
from harness_plugins.methods.pruning.common import check_amount, sparsity_info


@dataclass(frozen=True)
class WandaParams:
    amount: float = 0.5
    calibration_samples: int = 256
    include_head: bool = False

    def __post_init__(self) -> None:
        check_amount(self.amount)
        if self.calibration_samples < 1:
            raise ValueError(f"calibration_samples = {self.calibration_samples} must be >= 1")


def input_norms(model: Any, layers: list[tuple[str, Any]], batches: list[Any]) -> tuple[dict[str, Any], int]:
    """L2 norm over all calibration tokens of each input feature of each layer."""
    import torch

    sums: dict[str, Any] = {}

    def hook(name: str):
        def record(module: Any, args: tuple) -> None:
            x = args[0].detach().reshape(-1, args[0].shape[-1]).float()
            sums[name] = sums.get(name, 0) + (x * x).sum(dim=0)
        return record

    handles = [m.register_forward_pre_hook(hook(name)) for name, m in layers]
    used = 0
    try:
        with torch.no_grad():
            for batch in batches:
                model(batch)
                used += len(batch)
    finally:
        for handle in handles:
            handle.remove()
    return {name: s.sqrt() for name, s in sums.items()}, used


def row_mask(weight: Any, norms: Any, amount: float) -> Any:
    """Keep the (1 - amount) highest |W| * ||X|| entries of every output row."""
    import torch

    score = weight.detach().abs() * norms.reshape(1, -1)
    drop = int(round(amount * weight.shape[1]))
    mask = torch.ones_like(weight, dtype=torch.bool)
    if drop:
        mask.scatter_(1, score.topk(drop, dim=1, largest=False).indices, False)
    return mask


class Wanda(Method):
    name = "prune.wanda"
    family = "pruning"
    needs = ("calibration",)
    description = "zero weights with the smallest |W| x input-activation norm, per output row (Linear layers)"
    Params = WandaParams

    def check(self, model, ctx):
        return None if target_layers(model) else no_layers(model, "Linear layers")

    def apply(self, model, params, ctx):
        import torch
        from torch.nn.utils import prune

        before = count_params(model)
        layers = target_layers(model, include_head=params.include_head)
        norms, used = input_norms(model, layers, ctx.task.calibration_batches(params.calibration_samples))
        for name, module in layers:
            prune.custom_from_mask(module, "weight", row_mask(module.weight, norms[name], params.amount))
            prune.remove(module, "weight")
        skipped = [name for name, _ in target_layers(model, conv=True, include_head=params.include_head)
                   if name not in norms]
        info = sparsity_info(layers, before, model, f"torch.nn.utils.prune {torch.__version__} (Wanda metric per output row)",
                             comparison_group="output row", layers_left_dense=skipped)
        info["calibration_samples"] = used
        return model, info
