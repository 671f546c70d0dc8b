"""A plugin that registers something that is not a Method subclass."""

from harness import hookimpl


@hookimpl
def harness_register_methods(register):
    register(object)
