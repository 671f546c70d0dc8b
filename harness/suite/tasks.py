"""The ``[[tasks]]`` section: a known task kind, its own keys checked against the kind's
``Config``, and model globs that match models of the suite."""

from __future__ import annotations

import fnmatch
from typing import Any

from harness.config import name_problem
from harness.params import nearest
from harness.spec import TaskSpec
from harness.suite.checker import Checker


def check_tasks(checker: Checker, raw: Any, model_names: list[str]) -> list[TaskSpec]:
    out = []
    for i, table in enumerate(checker.array(raw, "tasks")):
        task = _check_task(checker, table, f"tasks[{i}]", model_names)
        if task is not None:
            out.append(task)
    checker.unique([t.name for t in out], "tasks")
    return out


def _check_task(checker: Checker, table: Any, where: str, model_names: list[str]) -> TaskSpec | None:
    problems = checker.problems
    if not isinstance(table, dict):
        problems.append(f"{where}: expected a table")
        return None
    rest = dict(table)
    name, kind, models = rest.pop("name", None), rest.pop("kind", None), rest.pop("models", ["*"])
    if not isinstance(name, str) or not name:
        problems.append(f"{where}.name: required, letters, digits, '.', '_' or '-'")
        return None
    if name_problem(name):
        problems.append(f"{where}.name: {name!r} {name_problem(name)}")
        return None
    if not isinstance(kind, str):
        problems.append(f"{where}.kind: required string{nearest('', checker.plugins.names('task'))}")
        return None
    if not (isinstance(models, list) and all(isinstance(m, str) for m in models)):
        problems.append(f"{where}.models: expected a list of model names or globs")
        return None
    for pattern in models:
        if model_names and not fnmatch.filter(model_names, pattern):
            problems.append(f"{where}.models: '{pattern}' matches no model{nearest(pattern, model_names)}")
    if not (checker.known("task", kind, f"{where}.kind", "task kind")
            and checker.installed("task", kind, f"{where}.kind")):
        return None
    task_kind = checker.plugins.lookup("task", kind)()
    config = checker.build(task_kind.Config, rest, where)
    if config is None:
        return None
    for problem in task_kind.check_config(config, checker.suite_dir):
        problems.append(f"{where}: {problem}")
    return TaskSpec(name, kind, models, config)
