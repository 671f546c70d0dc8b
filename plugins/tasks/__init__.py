"""Task kinds: ``classification`` and the language-model kinds of :mod:`.lm`."""
