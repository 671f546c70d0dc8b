"""The ``training`` plugin: training-time methods: fine-tuning (:mod:`.finetune`), bf16
mixed-precision training vs float32 (:mod:`.mixed_precision`) and curriculum order
(:mod:`.curriculum`); the last two measure time to a target with :mod:`.time_to_target`."""

from __future__ import annotations

from harness import hookimpl
from harness_plugins.methods.training.curriculum import Curriculum
from harness_plugins.methods.training.finetune import Finetune
from harness_plugins.methods.training.mixed_precision import MixedPrecision


@hookimpl
def harness_register_methods(register):
    for cls in (Finetune, MixedPrecision, Curriculum):
        register(cls)
