"""harness: benchmark and compare model-compression methods.

Plugin authors need only ``hookimpl`` (here), the base classes in :mod:`harness.api`,
the hooks in :mod:`harness.hookspecs` and the helpers in :mod:`harness.toolkit`; the
layers of the core are described in ``docs/architecture.md``.
"""

import pluggy

__version__ = "0.1.0"
# The distribution on the package index ("harness" there is an unrelated project);
# the import package and the command are `harness`.
DISTRIBUTION = "compression-harness"

hookimpl = pluggy.HookimplMarker("harness")

__all__ = ["DISTRIBUTION", "__version__", "hookimpl"]
