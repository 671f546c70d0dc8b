"""The ``[[methods]]`` section: one method (``use``) or a chain (``steps``), with params
checked against each method's ``Params``; sweeps expand into one method per point."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from harness.spec import MethodSpec, StepSpec
from harness.suite.checker import Checker


@dataclass
class _MethodTable:
    name: str = ""
    use: str = ""
    params: dict = field(default_factory=dict)
    steps: list = field(default_factory=list)
    sweep: dict = field(default_factory=dict)


@dataclass
class _StepTable:
    use: str
    params: dict = field(default_factory=dict)


def check_methods(checker: Checker, raw: Any) -> list[MethodSpec]:
    out: list[MethodSpec] = []
    if raw == []:
        return out  # baseline alone is a valid suite
    for i, table in enumerate(checker.array(raw, "methods")):
        out += _check_method(checker, table, f"methods[{i}]")
    checker.unique([m.name for m in out], "methods")
    return out


def _steps(checker: Checker, m: _MethodTable, where: str) -> list[_StepTable] | None:
    """The entry's steps, or None when the entry cannot be read."""
    if bool(m.use) == bool(m.steps):
        checker.problems.append(f"{where}: give either 'use' (one method) or 'steps' (a chain), not both or neither")
        return None
    if m.use:
        return [_StepTable(m.use, m.params)]
    if m.params:
        checker.problems.append(f"{where}.params: a chain takes params per step: steps = [{{ use = ..., params = {{...}} }}]")
    steps = [checker.build(_StepTable, raw, f"{where}.steps[{j}]") for j, raw in enumerate(m.steps)]
    return [s for s in steps if s is not None]


def _check_method(checker: Checker, table: Any, where: str) -> list[MethodSpec]:
    m = checker.build(_MethodTable, table, where)
    if m is None:
        return []
    m.name = m.name or m.use
    if not m.name:
        checker.problems.append(f"{where}.name: a chain needs a name")
        return []
    steps = _steps(checker, m, where)
    if steps is None:
        return []
    step_key = (lambda j: f"{where}.use") if m.use else (lambda j: f"{where}.steps[{j}].use")
    if not all([checker.known("method", s.use, step_key(j), "method") for j, s in enumerate(steps)]):
        return []
    out = []
    for name, variant in _expand(checker, m, steps, where):
        resolved = []
        for j, step in enumerate(variant):
            key = f"{where}.params" if m.use else f"{where}.steps[{j}].params"
            params = _params(checker, step.use, step.params, key)
            if params is not None:
                resolved.append(StepSpec(step.use, params))
        if len(resolved) == len(variant):
            out.append(MethodSpec(name, resolved))
    return out


def _params(checker: Checker, use: str, params: Any, where: str) -> Any | None:
    """The step's Params instance; a plain dict for a method no loaded plugin has."""
    if checker.plugins.get("method", use) is None:  # already warned about: its runs fail
        return dict(params) if isinstance(params, dict) else None
    return checker.build(checker.plugins.lookup("method", use).Params, params, where)


def _sweep_targets(checker: Checker, m: _MethodTable, n_steps: int, where: str) -> dict[str, tuple[int, str]]:
    """sweep key -> (step index, param name); problems recorded for keys that are not."""
    targets: dict[str, tuple[int, str]] = {}
    for key, values in m.sweep.items():
        if not isinstance(values, list) or not values:
            checker.problems.append(f"{where}.sweep.{key}: expected a non-empty list of values")
            continue
        step_index, _, param = key.rpartition(".")
        if step_index:
            if not step_index.isdigit() or int(step_index) >= n_steps:
                checker.problems.append(f"{where}.sweep.{key}: '{step_index}' is not a step index (0..{n_steps - 1})")
                continue
            targets[key] = (int(step_index), param)
        elif n_steps == 1:
            targets[key] = (0, param)
        else:
            checker.problems.append(f"{where}.sweep.{key}: in a chain, name the step: '<index>.{key}'")
            continue
        placeholder = "{" + key + "}"
        if placeholder not in m.name:
            checker.problems.append(f"{where}.name: a sweep over '{key}' needs '{placeholder}' in the name, "
                                    f"e.g. \"{m.name}-{placeholder}\"")
    return targets


def _expand(checker: Checker, m: _MethodTable, steps: list[_StepTable],
            where: str) -> Iterator[tuple[str, list[_StepTable]]]:
    """(name, steps) for each point of the method's sweep."""
    if not m.sweep:
        yield m.name, steps
        return
    targets = _sweep_targets(checker, m, len(steps), where)
    if len(targets) != len(m.sweep):
        return
    keys = list(targets)
    for combo in itertools.product(*(m.sweep[k] for k in keys)):
        variant = [_StepTable(s.use, dict(s.params)) for s in steps]
        name = m.name
        for key, value in zip(keys, combo):
            index, param = targets[key]
            variant[index].params[param] = value
            name = name.replace("{" + key + "}", str(value))
        yield name, variant
