"""An example harness plugin: k-bit uniform weight rounding ("fake quantization").

Each Linear/Conv weight is rounded to 2**bits evenly spaced levels between its own
minimum and maximum, then kept in float32. The model computes as a k-bit model would,
but nothing gets smaller or faster, and ``info`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness import hookimpl
from harness.api import Method
from harness.toolkit import count_params, library


@dataclass(frozen=True)
class FakeQuantParams:
    bits: int = 4

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= 16:
            raise ValueError(f"bits = {self.bits} must be between 1 and 16")


class FakeQuant(Method):
    name = "example.fake-quant"
    family = "quantization"
    description = "round weights to 2**bits uniform levels per tensor (simulated, stays float32)"
    Params = FakeQuantParams

    def apply(self, model, params, ctx):
        import torch  # heavy imports inside apply: `harness plugins` stays fast

        levels = 2 ** params.bits - 1
        before = count_params(model)
        touched = []
        with torch.no_grad():
            for name, module in model.named_modules():
                if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                    w = module.weight
                    lo, hi = w.min(), w.max()
                    scale = (hi - lo) / levels
                    w.copy_(torch.round((w - lo) / scale) * scale + lo)
                    touched.append(name)
        return model, {
            "layers": touched,
            "bits_per_weight": params.bits,
            "params_before": before,
            "params_after": count_params(model),
            "kernels": "simulated (fake-quant: float32 storage and compute)",
            "library": library("torch"),
        }


@hookimpl
def harness_register_methods(register):
    register(FakeQuant)
