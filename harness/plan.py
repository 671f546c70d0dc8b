"""Expand a suite into runs, each with a stable ``run_id``."""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
from typing import Any

from harness import __version__
from harness.fingerprint import code_hash, files_read
from harness.machine import installed_version
from harness.spec import MethodSpec, ModelSpec, RunSpec, StepSpec, TaskSpec
from harness.suite import Suite
from harness.suite.methods import BASELINE as BASELINE_METHOD  # a reserved method name
from harness.suite.methods import compiled_name

# [measure] keys added after runs were first stored: at their defaults they are left out
# of a run's identity, so the run ids of suites that do not use them never change.
IDENTITY_DEFAULTS = {"compile": "none", "timing": "per-call"}
NOT_IDENTITY = {"idle_reuse_s"}  # how a figure is obtained, not what runs


def run_id_of(fields: dict[str, Any]) -> str:
    """A stable hash of what determines a run's outcome."""
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _plugins_of(plugins: Any, model: ModelSpec, task: TaskSpec, method: MethodSpec) -> set[str]:
    names = set()
    for kind, name in [("source", model.source), ("task", task.kind)] + [("method", s.use) for s in method.steps]:
        entry = plugins.get(kind, name)
        if entry is not None:
            names.add(entry.plugin.name)
    return names


def plugin_versions(plugins: Any, names: set[str]) -> dict[str, str]:
    """Each plugin's version and the hash of its code (``1.2.0+code.3f2a…``): a plugin
    edited without a version bump is a different plugin. The core's own plugin counts by
    the harness version alone."""
    out = {}
    for info in plugins.plugins:
        if info.name in names:
            code = "" if info.module.split(".")[0] == "harness" else code_hash(info.module)
            out[info.name] = f"{info.version}+code.{code}" if code else info.version
    return out


def _baseline(plugins: Any) -> MethodSpec:
    return MethodSpec(BASELINE_METHOD, [StepSpec(BASELINE_METHOD, plugins.lookup("method", BASELINE_METHOD).Params())])


def measure_identity(measure: Any) -> dict[str, Any]:
    """The ``[measure]`` table as it counts for a run's identity (one compile mode)."""
    fields = dataclasses.asdict(measure)
    return {k: v for k, v in fields.items() if IDENTITY_DEFAULTS.get(k, object()) != v and k not in NOT_IDENTITY}


def build_plan(suite: Suite, plugins: Any) -> list[RunSpec]:
    """models × (baseline + methods) × tasks × compile modes, in suite order, baseline
    first; with several compile modes, each method's compiled runs follow its eager one
    and are named by :func:`compiled_name`."""
    # load_suite refuses a method named baseline; a Suite made in code may still have one
    methods = [_baseline(plugins)] + [m for m in suite.methods if m.name != BASELINE_METHOD]
    torch_version = installed_version("torch")
    modes = suite.measure.compile_modes
    config = suite.config
    runs = []
    model_files = {m.name: files_read(m.to_dict(), suite.dir) for m in suite.models}
    for model in suite.models:
        for task in suite.tasks:
            if not any(fnmatch.fnmatch(model.name, pattern) for pattern in task.models):
                continue
            task_files = files_read(task.to_dict(), suite.dir)
            for method in methods:
                versions = {"harness": __version__, "torch": torch_version,
                            "plugins": plugin_versions(plugins, _plugins_of(plugins, model, task, method)),
                            "files": {"model": model_files[model.name], "task": task_files}}
                for mode in modes:
                    measure = dataclasses.replace(suite.measure, compile=mode)
                    identity = {"model": model.to_dict(), "task": task.to_dict(),
                                "steps": [s.to_dict() for s in method.steps], "measure": measure_identity(measure),
                                "seed": config.seed, "device": config.device, "versions": versions}
                    name = compiled_name(method.name, mode) if len(modes) > 1 else method.name
                    runs.append(RunSpec(
                        run_id=run_id_of(identity), suite=config.name, suite_dir=str(suite.dir.resolve()),
                        model=model, task=task, method=name, steps=method.steps, measure=measure,
                        seed=config.seed, device=config.device, timeout_s=config.timeout_s, versions=versions,
                        accuracy_gate=config.accuracy_gate, suite_models={m.name: m for m in suite.models},
                        gpus_per_run=config.gpus_per_run or 0.0))
    return runs


def select(runs: list[RunSpec], pattern: str | None) -> list[RunSpec]:
    """Runs whose 'model/method/task' (or any one of the three) matches the glob."""
    if not pattern:
        return runs
    out = []
    for run in runs:
        parts = (run.model.name, run.method, run.task.name)
        if fnmatch.fnmatch("/".join(parts), pattern) or any(fnmatch.fnmatch(p, pattern) for p in parts):
            out.append(run)
    return out
