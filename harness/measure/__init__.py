"""Measurements taken inside a worker. Each module imports torch only when called."""
