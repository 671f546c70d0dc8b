"""Read a suite file: parse the TOML, run every section's validator, and return the
typed :class:`Suite` or raise :class:`SuiteError` with every problem at once."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import MeasureConfig, SuiteConfig
from harness.params import nearest
from harness.spec import MethodSpec, ModelSpec, TaskSpec
from harness.suite.checker import Checker
from harness.suite.methods import check_methods
from harness.suite.models import check_models
from harness.suite.tasks import check_tasks

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TOP_KEYS = ("suite", "measure", "models", "tasks", "methods")


class SuiteError(Exception):
    """The suite cannot run; ``problems`` lists every reason, one sentence each."""

    def __init__(self, path: Path, problems: list[str]):
        self.path = path
        self.problems = problems
        super().__init__("\n".join(f"{path}: {p}" for p in problems))


@dataclass
class Suite:
    path: Path
    config: SuiteConfig
    measure: MeasureConfig
    models: list[ModelSpec]
    tasks: list[TaskSpec]
    methods: list[MethodSpec]
    warnings: list[str] = field(default_factory=list)

    @property
    def dir(self) -> Path:
        return self.path.parent


def load_suite(path: Path, plugins: Any) -> Suite:
    """Read and check ``path`` against the loaded ``plugins``; raise :class:`SuiteError`
    listing every problem."""
    path = Path(path)
    if not path.is_file():
        raise SuiteError(path, ["file not found; pass the path of a suite .toml file"])
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(path, [f"not valid TOML: {exc}"]) from None
    checker = Checker(path, plugins)
    for key in data:
        if key not in TOP_KEYS:
            checker.problems.append(f"{key}: unknown section{nearest(key, TOP_KEYS)}")
    if "suite" not in data:
        checker.problems.append("suite: required section is missing (it needs at least name = \"...\")")
    config = checker.build(SuiteConfig, data.get("suite", {}), "suite")
    measure = checker.build(MeasureConfig, data.get("measure", {}), "measure")
    models = check_models(checker, data.get("models", []))
    tasks = check_tasks(checker, data.get("tasks", []), [m.name for m in models])
    methods = check_methods(checker, data.get("methods", []))
    if checker.problems or config is None or measure is None:
        raise SuiteError(path, list(dict.fromkeys(checker.problems)))  # sweeps repeat some
    return Suite(path, config, measure, models, tasks, methods, checker.warnings)
