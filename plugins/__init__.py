"""The built-in plugins of harness, registered through the ``harness`` entry points."""
