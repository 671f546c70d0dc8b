"""Bundled data sets, shared by the builtin model source and the task kinds: nothing is
downloaded. :mod:`.digits` (scikit-learn's handwritten digits), :mod:`.world` (the
invented world corpus the builtin LMs train on)."""
