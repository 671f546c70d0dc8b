"""The ``sparsity`` plugin: 2:4 semi-structured sparsity (:mod:`.semi_structured`)."""

from __future__ import annotations

from harness import hookimpl
from harness_plugins.methods.sparsity.semi_structured import Sparse24


@hookimpl
def harness_register_methods(register):
    register(Sparse24)
