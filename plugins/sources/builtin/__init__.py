"""The ``builtin`` model source (:mod:`.source`) and the model families it serves:
:mod:`.digits` and :mod:`.world_lm`."""

from __future__ import annotations

from harness import hookimpl
from harness_plugins.sources.builtin.source import BuiltinSource


@hookimpl
def harness_register_models(register):
    register(BuiltinSource)
