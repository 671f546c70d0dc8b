"""The ``[[methods]]`` section: one method (``use``) or a chain (``steps``), with params
checked against each method's ``Params``; sweeps expand into one method per point."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from harness.config import MAX_RUNS
from harness.spec import BASELINE, MethodSpec, StepSpec
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


def check_methods(checker: Checker, raw: Any, max_runs: int = MAX_RUNS) -> list[MethodSpec]:
    """The methods, sweeps expanded; a sweep is counted before it is expanded and refused
    when, with the methods before it, it has over ``max_runs`` points."""
    out: list[MethodSpec] = []
    if raw == []:
        return out  # baseline alone is a valid suite
    for i, table in enumerate(checker.array(raw, "methods")):
        where = f"methods[{i}]"
        methods = _check_method(checker, table, where, _Budget(max_runs, len(out)))
        listed = isinstance(table, dict) and (table.get("name") or table.get("use")) == BASELINE
        if listed or any(m.name == BASELINE for m in methods):
            checker.problems.append(f"{where}.name: '{BASELINE}' is reserved: the baseline runs for every "
                                    "(model, task) without being listed")
            methods = [m for m in methods if m.name != BASELINE]
        out += methods
    checker.unique([m.name for m in out], "methods")
    return out


@dataclass
class _Budget:
    limit: int
    used: int  # methods before this entry

    def refuse(self, points: int) -> str | None:
        if self.used + points <= self.limit:
            return None
        before = f" ({self.used} method(s) before it)" if self.used else ""
        return (f"{points} points is over the limit of {self.limit}{before}; "
                "narrow the sweep, or raise [suite] max_runs")


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


def _check_method(checker: Checker, table: Any, where: str, budget: _Budget) -> list[MethodSpec]:
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
    for name, variant in _expand(checker, m, steps, where, budget):
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


def _expand(checker: Checker, m: _MethodTable, steps: list[_StepTable], where: str,
            budget: _Budget) -> Iterator[tuple[str, list[_StepTable]]]:
    """(name, steps) for each point of the method's sweep (none when it has too many)."""
    if not m.sweep:
        yield m.name, steps
        return
    targets = _sweep_targets(checker, m, len(steps), where)
    if len(targets) != len(m.sweep):
        return
    keys = list(targets)
    refused = budget.refuse(math.prod(len(m.sweep[k]) for k in keys))
    if refused:
        checker.problems.append(f"{where}.sweep: {refused}")
        return
    for combo in itertools.product(*(m.sweep[k] for k in keys)):
        variant = [_StepTable(s.use, dict(s.params)) for s in steps]
        name = m.name
        for key, value in zip(keys, combo):
            index, param = targets[key]
            variant[index].params[param] = value
            name = name.replace("{" + key + "}", str(value))
        yield name, variant


def variants(measure: Any) -> list[tuple[str, str]]:
    """The (runtime, compile mode) pairs a suite runs each method in: ``torch`` with each
    compile mode, every other runtime once (it prepares the model its own way)."""
    out: list[tuple[str, str]] = []
    for runtime in measure.runtimes:
        out += [(runtime, mode) for mode in measure.compile_modes] if runtime == "torch" else [(runtime, "none")]
    return out


def method_runtime(checker: Checker, method: MethodSpec) -> str | None:
    """The runtime a method's steps are made for (None: torch steps only); a problem when
    a chain mixes runtimes or puts a torch step after a runtime's own."""
    kinds = []
    for step in method.steps:
        entry = checker.plugins.get("method", step.use)
        kinds.append(getattr(checker.plugins.lookup("method", step.use), "runtime", None) if entry else None)
    made_for = [k for k in kinds if k]
    if len(set(made_for)) > 1:
        checker.problems.append(f"methods: '{method.name}' chains steps of different runtimes ({', '.join(made_for)})")
    elif made_for and any(not k for k in kinds[kinds.index(made_for[0]):]):
        checker.problems.append(f"methods: '{method.name}' has a torch step after a {made_for[0]} step: "
                                "put the torch steps first (the runtime's own run on its exported model)")
    return made_for[0] if made_for else None


def check_runtimes(checker: Checker, runtimes: list[str], methods: list[MethodSpec]) -> None:
    """Every runtime named is installed, and every method made for a runtime has it."""
    for runtime in runtimes:
        if checker.known("runtime", runtime, "measure.runtime", "runtime"):
            checker.installed("runtime", runtime, "measure.runtime")
    for method in methods:
        needed = method_runtime(checker, method)
        if needed and needed not in runtimes:
            checker.problems.append(f"methods: '{method.name}' runs in the {needed} runtime: add \"{needed}\" to "
                                    f"[measure] runtime (now {runtimes})")
