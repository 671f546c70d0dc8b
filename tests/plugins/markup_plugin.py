"""A plugin whose error messages look like rich markup."""

from harness import hookimpl
from harness.api import Method


class Brackets(Method):
    name = "test.brackets"
    description = "raises an error full of square brackets"

    def apply(self, model, params, ctx):
        raise RuntimeError("bad shape [/x] in layer [/] of [torch.FloatTensor]")


@hookimpl
def harness_register_methods(register):
    register(Brackets)
