"""Model sources: ``builtin`` (reference models trained on bundled data), ``file``
(a saved torch model) and the ``hf`` source (:mod:`.hf`, registered by the ``lm`` plugin)."""
