"""Two methods of families the built-ins do not use: a word of its own registers; a label
that is not a lowercase word is refused with what would do."""

from harness import hookimpl
from harness.api import Method


class LowRank(Method):
    name = "test.low-rank"
    family = "low-rank"


class Spaced(Method):
    name = "test.spaced"
    family = "Low Rank"


@hookimpl
def harness_register_methods(register):
    register(LowRank)
    register(Spaced)
