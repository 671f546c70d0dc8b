"""A plugin that cannot even be imported."""

import harness_nonexistent_dependency  # noqa: F401
