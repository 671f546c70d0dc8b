"""Load a suite TOML file and check all of it before anything runs.

Every problem is collected and raised together in one :class:`SuiteError`; each names
the file, the key path and, where there is one, the nearest valid choice.
"""

from __future__ import annotations

import fnmatch
import itertools
import sys
from pathlib import Path
from typing import Any

from harness.params import build, nearest, to_dict
from harness.plugins import Registry
from harness.suite_schema import (  # noqa: F401  (re-exported: the suite's public types)
    NAME_RE,
    MeasureConfig,
    MethodSpec,
    ModelSpec,
    StepSpec,
    Suite,
    SuiteConfig,
    TaskSpec,
    _MethodTable,
    _ModelTable,
    _StepTable,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib



class SuiteError(Exception):
    """The suite cannot run; ``problems`` lists every reason, one sentence each."""

    def __init__(self, path: Path, problems: list[str]):
        self.path = path
        self.problems = problems
        super().__init__("\n".join(f"{path}: {p}" for p in problems))


TOP_KEYS = ("suite", "measure", "models", "tasks", "methods")


def load_suite(path: Path, registry: Registry) -> Suite:
    """Read and check ``path``; raise :class:`SuiteError` listing every problem."""
    path = Path(path)
    if not path.is_file():
        raise SuiteError(path, ["file not found; pass the path of a suite .toml file"])
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(path, [f"not valid TOML: {exc}"]) from None
    checker = _Checker(path, registry)
    suite = checker.check(data)
    if checker.problems:
        raise SuiteError(path, list(dict.fromkeys(checker.problems)))  # sweeps repeat some
    assert suite is not None
    return suite


class _Checker:
    def __init__(self, path: Path, registry: Registry):
        self.path = path
        self.registry = registry
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def check(self, data: dict[str, Any]) -> Suite | None:
        for key in data:
            if key not in TOP_KEYS:
                self.problems.append(f"{key}: unknown section{nearest(key, TOP_KEYS)}")
        if "suite" not in data:
            self.problems.append("suite: required section is missing (it needs at least name = \"...\")")
        config = build(SuiteConfig, data.get("suite", {}), "suite", self.problems)
        measure = build(MeasureConfig, data.get("measure", {}), "measure", self.problems)
        models = self._models(data.get("models", []))
        tasks = self._tasks(data.get("tasks", []), [m.name for m in models])
        methods = self._methods(data.get("methods", []))
        if self.problems or config is None or measure is None:
            return None
        return Suite(self.path, config, measure, models, tasks, methods, self.warnings)

    def _array(self, value: Any, key: str) -> list[Any]:
        if not isinstance(value, list):
            self.problems.append(f"{key}: expected an array of tables ([[{key}]]), got {type(value).__name__}")
            return []
        if not value:
            self.problems.append(f"{key}: at least one [[{key}]] entry is needed")
        return value

    def _unique(self, names: list[str], key: str) -> None:
        for name in {n for n in names if names.count(n) > 1}:
            self.problems.append(f"{key}: name '{name}' is used more than once")

    def _unknown(self, kind: str, name: str, where: str, what: str) -> bool:
        """Report an unknown plugin-provided name; return True when it is known."""
        if self.registry.get(kind, name):
            return True
        broken = self.registry.broken()
        if kind == "method" and broken:
            # A broken plugin may be the one that provides it: let only these runs fail.
            culprits = "; ".join(f"'{p.name}': {p.errors[0]}" for p in broken)
            self.warnings.append(
                f"{where}: {what} '{name}' is not registered{nearest(name, self.registry.names(kind))} "
                f"(broken plugins: {culprits}); its runs will fail"
            )
            return True
        self.problems.append(f"{where}: unknown {what} '{name}'{nearest(name, self.registry.names(kind))}")
        return False

    def _models(self, raw: Any) -> list[ModelSpec]:
        out = []
        for i, table in enumerate(self._array(raw, "models")):
            where = f"models[{i}]"
            m = build(_ModelTable, table, where, self.problems)
            if m is None:
                continue
            if not NAME_RE.match(m.name):
                self.problems.append(f"{where}.name: {m.name!r} must be letters, digits, '.', '_' or '-'")
            if not self._unknown("source", m.source, f"{where}.source", "model source"):
                continue
            source = self.registry.get("source", m.source).obj()
            options = build(source.Options, m.options, f"{where}.options", self.problems)
            if options is None:
                continue
            problem = source.check_ref(m.ref, options, self.path.parent)
            if problem:
                self.problems.append(f"{where}.ref: {problem}")
            out.append(ModelSpec(m.name, m.source, m.ref, to_dict(options)))
        self._unique([m.name for m in out], "models")
        return out

    def _tasks(self, raw: Any, model_names: list[str]) -> list[TaskSpec]:
        out = []
        for i, table in enumerate(self._array(raw, "tasks")):
            where = f"tasks[{i}]"
            if not isinstance(table, dict):
                self.problems.append(f"{where}: expected a table")
                continue
            rest = dict(table)
            name, kind, models = rest.pop("name", None), rest.pop("kind", None), rest.pop("models", ["*"])
            if not isinstance(name, str) or not NAME_RE.match(name):
                self.problems.append(f"{where}.name: required, letters, digits, '.', '_' or '-'")
                continue
            if not isinstance(kind, str):
                self.problems.append(f"{where}.kind: required string{nearest('', self.registry.names('task'))}")
                continue
            if not (isinstance(models, list) and all(isinstance(m, str) for m in models)):
                self.problems.append(f"{where}.models: expected a list of model names or globs")
                continue
            for pattern in models:
                if model_names and not fnmatch.filter(model_names, pattern):
                    self.problems.append(
                        f"{where}.models: '{pattern}' matches no model{nearest(pattern, model_names)}"
                    )
            if not self._unknown("task", kind, f"{where}.kind", "task kind"):
                continue
            task_kind = self.registry.get("task", kind).obj()
            config = build(task_kind.Config, rest, where, self.problems)
            if config is None:
                continue
            for problem in task_kind.check_config(config, self.path.parent):
                self.problems.append(f"{where}: {problem}")
            out.append(TaskSpec(name, kind, models, to_dict(config)))
        self._unique([t.name for t in out], "tasks")
        return out

    def _params(self, use: str, params: Any, where: str) -> dict[str, Any] | None:
        entry = self.registry.get("method", use)
        if entry is None:  # unknown, already reported or warned about
            return dict(params) if isinstance(params, dict) else None
        built = build(entry.obj.Params, params, where, self.problems)
        return None if built is None else to_dict(built)

    def _methods(self, raw: Any) -> list[MethodSpec]:
        out: list[MethodSpec] = []
        if raw == []:
            return out  # baseline alone is a valid suite
        for i, table in enumerate(self._array(raw, "methods")):
            where = f"methods[{i}]"
            m = build(_MethodTable, table, where, self.problems)
            if m is None:
                continue
            if bool(m.use) == bool(m.steps):
                self.problems.append(f"{where}: give either 'use' (one method) or 'steps' (a chain), not both or neither")
                continue
            if m.use and not m.name:
                m.name = m.use
            if not m.name:
                self.problems.append(f"{where}.name: a chain needs a name")
                continue
            steps: list[_StepTable] = []
            if m.use:
                steps = [_StepTable(m.use, m.params)]
            else:
                if m.params:
                    self.problems.append(f"{where}.params: a chain takes params per step: steps = [{{ use = ..., params = {{...}} }}]")
                for j, raw_step in enumerate(m.steps):
                    step = build(_StepTable, raw_step, f"{where}.steps[{j}]", self.problems)
                    if step is not None:
                        steps.append(step)
            if not all(self._unknown("method", s.use, f"{where}.{'use' if m.use else f'steps[{j}].use'}", "method")
                       for j, s in enumerate(steps)):
                continue
            for name, variant in self._expand(m, steps, where):
                resolved = []
                for j, step in enumerate(variant):
                    key = f"{where}.params" if m.use else f"{where}.steps[{j}].params"
                    params = self._params(step.use, step.params, key)
                    if params is not None:
                        resolved.append(StepSpec(step.use, params))
                if len(resolved) == len(variant):
                    out.append(MethodSpec(name, resolved))
        self._unique([m.name for m in out], "methods")
        return out

    def _expand(self, m: _MethodTable, steps: list[_StepTable], where: str):
        """Yield (name, steps) for each point of the method's sweep."""
        if not m.sweep:
            yield m.name, steps
            return
        targets: dict[str, tuple[int, str]] = {}
        for key, values in m.sweep.items():
            if not isinstance(values, list) or not values:
                self.problems.append(f"{where}.sweep.{key}: expected a non-empty list of values")
                continue
            step_index, _, param = key.rpartition(".")
            if step_index:
                if not step_index.isdigit() or int(step_index) >= len(steps):
                    self.problems.append(f"{where}.sweep.{key}: '{step_index}' is not a step index (0..{len(steps) - 1})")
                    continue
                targets[key] = (int(step_index), param)
            elif len(steps) == 1:
                targets[key] = (0, param)
            else:
                self.problems.append(f"{where}.sweep.{key}: in a chain, name the step: '<index>.{key}'")
                continue
            placeholder = "{" + key + "}"
            if placeholder not in m.name:
                self.problems.append(f"{where}.name: a sweep over '{key}' needs '{placeholder}' in the name, e.g. \"{m.name}-{placeholder}\"")
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
