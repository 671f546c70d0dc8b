"""Language models (the ``lm`` plugin): registers the ``hf`` source
(:mod:`harness_plugins.sources.hf`) and the ``lm-eval``, ``perplexity`` and ``fidelity``
task kinds; the builtin LMs (served by the ``builtin`` source) live in
:mod:`harness_plugins.sources.builtin.world_lm`.

No torch or transformers import here or at the top of the modules imported below.
"""

from __future__ import annotations

from harness import hookimpl
from harness_plugins.sources.hf import HFSource
from harness_plugins.tasks.lm.fidelity import Fidelity
from harness_plugins.tasks.lm.lmeval_task import LMEval
from harness_plugins.tasks.lm.perplexity import Perplexity


@hookimpl
def harness_register_models(register):
    register(HFSource)


@hookimpl
def harness_register_tasks(register):
    register(LMEval)
    register(Perplexity)
    register(Fidelity)
