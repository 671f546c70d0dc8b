"""Loaders for the world tasks' data, which lives next to this file (lm-eval resolves
``!function world_data.…`` relative to the YAML, so the suite runs from any directory).
Regenerate the data with ``python -m harness_plugins.data.world suites/tasks``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _load(name: str) -> Any:
    import json

    import datasets

    lines = (HERE / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return datasets.DatasetDict({"test": datasets.Dataset.from_list([json.loads(x) for x in lines])})


def load_mc(**_: Any) -> Any:
    return _load("world_mc")


def load_qa(**_: Any) -> Any:
    return _load("world_qa")
