"""Language models: the ``hf`` source and the ``lm-eval``, ``perplexity`` and ``fidelity``
task kinds; the builtin LMs (served by the ``builtin`` source) live in :mod:`.builtin`.

No torch or transformers import here or at the top of the modules imported below.
"""

from __future__ import annotations

from harness import hookimpl
from harness_plugins.lm.fidelity import Fidelity
from harness_plugins.lm.lmeval_task import LMEval
from harness_plugins.lm.perplexity import Perplexity
from harness_plugins.lm.source import HFSource


@hookimpl
def harness_register_models(register):
    register(HFSource)


@hookimpl
def harness_register_tasks(register):
    register(LMEval)
    register(Perplexity)
    register(Fidelity)
