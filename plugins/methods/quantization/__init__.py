"""The ``quantization`` plugin: post-training quantization without calibration
(:mod:`.uncalibrated`), calibrated (:mod:`.calibrated`), quantization-aware training
(:mod:`.qat`), and the low-bit float formats float8 (:mod:`.float8`) and FP4
(:mod:`.float4`). Helpers they share live in :mod:`.common`."""

from __future__ import annotations

from harness import hookimpl
from harness_plugins.methods.quantization.calibrated import AWQ, GPTQ, Int8Static, SmoothQuant
from harness_plugins.methods.quantization.float4 import FP4
from harness_plugins.methods.quantization.float8 import FP8
from harness_plugins.methods.quantization.qat import QAT
from harness_plugins.methods.quantization.uncalibrated import (
    BF16,
    FP16,
    Int4Weight,
    Int8Dynamic,
    Int8Weight,
)


@hookimpl
def harness_register_methods(register):
    for cls in (Int8Dynamic, Int8Weight, Int4Weight, FP16, BF16, Int8Static, GPTQ, AWQ, SmoothQuant, QAT, FP8, FP4):
        register(cls)
