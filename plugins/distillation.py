"""Placeholder: the distillation methods are being written (issue 3)."""

from harness import hookimpl


@hookimpl
def harness_register_methods(register):
    pass
