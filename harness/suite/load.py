"""Read a suite file: parse the TOML, run every section's validator, and return the
typed :class:`Suite` or raise :class:`SuiteError` with every problem at once."""

from __future__ import annotations

import fnmatch
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import MAX_RUNS, MeasureConfig, SuiteConfig
from harness.params import nearest
from harness.spec import MethodSpec, ModelSpec, TaskSpec
from harness.suite.checker import Checker
from harness.suite.methods import check_methods, check_runtimes, variants
from harness.suite.models import check_models
from harness.suite.tasks import check_tasks

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TOP_KEYS = ("suite", "measure", "models", "tasks", "methods")
MAX_DEPTH = 32  # levels of tables and arrays; a suite needs about 7


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
    data = _parse(path)
    checker = Checker(path, plugins)
    for key in data:
        if key not in TOP_KEYS:
            checker.problems.append(f"{key}: unknown section{nearest(key, TOP_KEYS)}")
    if "suite" not in data:
        checker.problems.append("suite: required section is missing (it needs at least name = \"...\")")
    config = checker.build(SuiteConfig, data.get("suite", {}), "suite")
    max_runs = config.max_runs if config is not None else MAX_RUNS
    measure = checker.build(MeasureConfig, data.get("measure", {}), "measure")
    models = check_models(checker, data.get("models", []))
    tasks = check_tasks(checker, data.get("tasks", []), [m.name for m in models])
    methods = check_methods(checker, data.get("methods", []), max_runs)
    pairs = sum(any(fnmatch.fnmatch(m.name, p) for p in t.models) for m in models for t in tasks)
    if measure is not None:
        check_runtimes(checker, measure.runtimes, methods)
    modes = len(variants(measure)) if measure is not None else 1
    if pairs * (1 + len(methods)) * modes > max_runs:
        each = f" × {modes} runtimes and compile modes" if modes > 1 else ""
        checker.problems.append(f"the plan has {pairs * (1 + len(methods)) * modes} runs ((model, task) pairs × "
                                f"(baseline + {len(methods)} methods){each}), over the limit of {max_runs}; "
                                "narrow it, or raise [suite] max_runs")
    if checker.problems or config is None or measure is None:
        raise SuiteError(path, list(dict.fromkeys(checker.problems)))  # sweeps repeat some
    return Suite(path, config, measure, models, tasks, methods, checker.warnings)


def _parse(path: Path) -> dict[str, Any]:
    """The file's TOML as a dict, or SuiteError with the one reason it cannot be read."""
    if not path.is_file():
        raise SuiteError(path, ["file not found; pass the path of a suite .toml file"])
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SuiteError(path, [f"cannot read the file: {exc.strerror}; check its permissions"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise SuiteError(path, [f"not valid UTF-8 at byte {exc.start} (line {line}); save the file as UTF-8"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(path, [f"not valid TOML: {exc}"]) from None
    except RecursionError:
        raise SuiteError(path, [f"nested too deeply: arrays or tables inside each other over {MAX_DEPTH} "
                                "levels; flatten the file"]) from None
    deep = _too_deep(data)
    if deep is not None:
        raise SuiteError(path, [f"{deep}: nested too deeply (over {MAX_DEPTH} levels); flatten it"])
    return data


def _too_deep(data: dict[str, Any]) -> str | None:
    """The key path of a value nested over MAX_DEPTH levels, or None (no recursion)."""
    stack: list[tuple[Any, str, int, bool]] = [(data, "", 0, True)]
    while stack:
        value, where, depth, named = stack.pop()
        if depth > MAX_DEPTH:
            return where
        if isinstance(value, dict):
            items = [(v, f"{where}.{k}" if where else str(k), True) for k, v in value.items()]
        elif isinstance(value, list):  # an array of tables is indexed, nested arrays are not
            items = [(v, f"{where}[{i}]" if named and isinstance(v, dict) else where, False)
                     for i, v in enumerate(value)]
        else:
            continue
        stack.extend((v, w if depth < 8 else where, depth + 1, n) for v, w, n in items)
    return None
