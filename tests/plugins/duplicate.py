"""A plugin that registers a name a built-in already has, and a non-method."""

from harness import hookimpl
from harness.api import Method


class FakeBaseline(Method):
    name = "baseline"

    def apply(self, model, params, ctx):
        return model, {}


@hookimpl
def harness_register_methods(register):
    register(FakeBaseline)
