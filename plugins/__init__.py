"""The built-in plugins of harness, grouped by kind (data, sources, tasks, methods,
executors) and registered through the ``harness`` entry points, like any third party's."""
