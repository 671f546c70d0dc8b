"""The ``distillation`` plugin: knowledge distillation (:mod:`.kd`)."""

from __future__ import annotations

from harness import hookimpl
from harness_plugins.methods.distillation.kd import KD


@hookimpl
def harness_register_methods(register):
    register(KD)
