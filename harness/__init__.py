"""harness: benchmark and compare model-compression methods.

Plugin authors need only ``hookimpl`` and the base classes in :mod:`harness.api`.
"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("harness")

__all__ = ["__version__", "hookimpl"]
