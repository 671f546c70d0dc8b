"""A method that deletes the suite's results file while the suite runs."""

import os

from harness import hookimpl
from harness.api import Method


class DeleteResults(Method):
    name = "test.delete-results"
    description = "deletes $VANDAL_TARGET (the results file) and returns the model unchanged"

    def apply(self, model, params, ctx):
        os.remove(os.environ["VANDAL_TARGET"])
        return model, {"changed": "nothing; deleted the results file"}


@hookimpl
def harness_register_methods(register):
    register(DeleteResults)
