"""Quantization-aware training: fake-quantize, train with the task's loss, convert.

torchao's ``QATConfig`` over int8 dynamic activations and int4/int8 grouped weights
(the "8da4w" recipe, the one torchao's QAT targets); the same config applied without
training is measured too, so the info shows what the training bought.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from harness.api import Method
from harness.toolkit import count_params, layer_filter, library, no_layers
from harness_plugins.methods.quantization.common import TORCHAO, linear_layers, quant_info


@dataclass(frozen=True)
class QATParams:
    weight_bits: int = 4
    group_size: int = 32
    epochs: int = 3
    lr: float = 1e-4
    batch_size: int = 64
    include_head: bool = False

    def __post_init__(self) -> None:
        if self.weight_bits not in (4, 8):
            raise ValueError(f"weight_bits = {self.weight_bits} must be 4 or 8")
        if self.group_size not in (32, 64, 128, 256):
            raise ValueError(f"group_size = {self.group_size} must be one of 32, 64, 128, 256")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if not 0 < self.lr < 1:
            raise ValueError(f"lr = {self.lr} must be in (0, 1)")


class QAT(Method):
    name = "quant.qat"
    preload = TORCHAO
    family = "quantization"
    needs = ("training",)
    description = "fake-quantized training with the task loss (int8 activations, int4/int8 weights), then convert"
    Params = QATParams

    def check(self, model, ctx):
        return None if linear_layers(model) else no_layers(model, "Linear layers to quantize")

    def apply(self, model, params, ctx):
        import torch
        from torchao.quantization import Int8DynamicActivationIntxWeightConfig, PerGroup, quantize_
        from torchao.quantization.qat import QATConfig

        from harness.toolkit import fit

        before = count_params(model)
        wanted = set(linear_layers(model, params.include_head))
        layers = [name for name, m in model.named_modules()
                  if name in wanted and m.in_features % params.group_size == 0]
        base = Int8DynamicActivationIntxWeightConfig(
            weight_dtype=getattr(torch, f"int{params.weight_bits}"), weight_granularity=PerGroup(params.group_size))

        ptq = copy.deepcopy(model)
        quantize_(ptq, base, filter_fn=layer_filter(layers))
        ptq_accuracy = ctx.evaluate(ptq).get("accuracy")
        del ptq

        quantize_(model, QATConfig(base, step="prepare"), filter_fn=layer_filter(layers))
        report = fit(model, ctx.task, epochs=params.epochs, lr=params.lr, seed=ctx.seed, batch_size=params.batch_size)
        quantize_(model, QATConfig(base, step="convert"), filter_fn=layer_filter(layers))
        kernels = "simulated (int values held unpacked in int8, dequantized for each matmul)"
        return model, quant_info(
            layers, params.weight_bits, kernels, library("torchao"), before, model,
            activations="int8, dynamic per token", group_size=params.group_size,
            accuracy_without_qat=ptq_accuracy, training_samples=report.samples, training=report.to_dict())
