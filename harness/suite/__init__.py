"""Read a suite TOML file and check all of it before anything runs.

One small validator per section (``[suite]``/``[measure]`` in :mod:`harness.config`,
``[[models]]``, ``[[tasks]]``, ``[[methods]]`` here); every problem is collected and
raised together in one :class:`SuiteError`, each naming the file, the key path and,
where there is one, the nearest valid choice.
"""

from harness.suite.load import Suite, SuiteError, load_suite

__all__ = ["Suite", "SuiteError", "load_suite"]
