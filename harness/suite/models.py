"""The ``[[models]]`` section: each entry's source is known, its options fit the source's
``Options``, and the source finds its ``ref`` (without loading anything)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.config import name_problem
from harness.spec import ModelSpec
from harness.suite.checker import Checker


@dataclass
class _ModelTable:
    name: str
    source: str
    ref: str
    options: dict = field(default_factory=dict)


def check_models(checker: Checker, raw: Any) -> list[ModelSpec]:
    out = []
    for i, table in enumerate(checker.array(raw, "models")):
        where = f"models[{i}]"
        m = checker.build(_ModelTable, table, where)
        if m is None:
            continue
        problem = name_problem(m.name)
        if problem:
            checker.problems.append(f"{where}.name: {m.name!r} {problem}")
        if not (checker.known("source", m.source, f"{where}.source", "model source")
                and checker.installed("source", m.source, f"{where}.source")):
            continue
        source = checker.plugins.lookup("source", m.source)()
        options = checker.build(source.Options, m.options, f"{where}.options")
        if options is None:
            continue
        problem = source.check_ref(m.ref, options, checker.suite_dir)
        if problem:
            checker.problems.append(f"{where}.ref: {problem}")
        out.append(ModelSpec(m.name, m.source, m.ref, options))
    checker.unique([m.name for m in out], "models")
    return out
