"""The ``pruning`` plugin: unstructured magnitude pruning (:mod:`.magnitude`), structured
channel pruning (:mod:`.structured`) and Wanda (:mod:`.wanda`); shared helpers in
:mod:`.common`."""

from __future__ import annotations

from harness import hookimpl
from harness_plugins.methods.pruning.magnitude import Magnitude
from harness_plugins.methods.pruning.structured import Structured
from harness_plugins.methods.pruning.wanda import Wanda


@hookimpl
def harness_register_methods(register):
    for cls in (Magnitude, Structured, Wanda):
        register(cls)
