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
from harness.spec import BASELINE as BASELINE_METHOD  # a reserved method name
from harness.spec import MethodSpec, ModelSpec, RunSpec, StepSpec, TaskSpec, variant_name
from harness.suite import Suite
from harness.suite.methods import variants

# [measure] keys added after runs were first stored: at their defaults they are left out
# of a run's identity, so the run ids of suites that do not use them never change.
IDENTITY_DEFAULTS = {"compile": "none", "timing": "per-call", "runtime": "torch"}
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
    """models × (baseline + methods) × tasks × (runtimes and compile modes), in suite
    order, baseline first; with several, each method's variants follow its eager torch
    one and are named by :func:`variant_name`. A method made for one runtime (e.g. ONNX
    Runtime's static int8) runs only in that one."""
    # load_suite refuses a method named baseline; a Suite made in code may still have one
    methods = [_baseline(plugins)] + [m for m in suite.methods if m.name != BASELINE_METHOD]
    torch_version = installed_version("torch")
    pairs = variants(suite.measure)
    config = suite.config
    runs = []
    model_files = {m.name: files_read(m.to_dict(), suite.dir) | _source_fingerprint(plugins, m, suite.dir)
                   for m in suite.models}
    for model in suite.models:
        for task in suite.tasks:
            if not any(fnmatch.fnmatch(model.name, pattern) for pattern in task.models):
                continue
            task_files = files_read(task.to_dict(), suite.dir)
            for method in methods:
                versions = {"harness": __version__, "torch": torch_version,
                            "plugins": plugin_versions(plugins, _plugins_of(plugins, model, task, method)),
                            "files": {"model": model_files[model.name], "task": task_files}
                            | _models_named(method, model_files)}
                own = _runtime_of(plugins, method)
                for runtime, mode in pairs:
                    if own and runtime != own:
                        continue
                    measure = dataclasses.replace(suite.measure, compile=mode, runtime=runtime)
                    runtime_versions = _runtime_versions(plugins, runtime)
                    identity = {"model": model.to_dict(), "task": task.to_dict(),
                                "steps": [s.to_dict() for s in method.steps], "measure": measure_identity(measure),
                                "seed": config.seed, "device": config.device,
                                "versions": versions | runtime_versions}
                    name = variant_name(method.name, runtime, mode, len(pairs) > 1)
                    runs.append(RunSpec(
                        run_id=run_id_of(identity), suite=config.name, suite_dir=str(suite.dir.resolve()),
                        model=model, task=task, method=name, steps=method.steps, measure=measure,
                        seed=config.seed, device=config.device, timeout_s=config.timeout_s,
                        versions=versions | runtime_versions,
                        accuracy_gate=config.accuracy_gate, suite_models={m.name: m for m in suite.models},
                        gpus_per_run=config.gpus_per_run or 0.0))
    return runs


def _source_fingerprint(plugins: Any, model: ModelSpec, suite_dir: Any) -> dict[str, str]:
    """What the model's source says its ref resolves to (a hub commit), if anything."""
    if plugins.get("source", model.source) is None:
        return {}
    try:
        found = plugins.lookup("source", model.source)().fingerprint(model.ref, model.options, suite_dir)
    except Exception as exc:  # noqa: BLE001 - a plugin's failure; its runs report what is wrong
        found = f"no fingerprint: {type(exc).__name__}"
    return {"source": found} if found else {}


def _models_named(method: MethodSpec, model_files: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The fingerprints of the suite's models a method's params name (e.g. a distillation
    student): a retrained student re-runs the method. Empty (ids unchanged) when none."""
    from harness.fingerprint import strings

    named = {text for step in method.steps for text in strings(dataclasses.asdict(step.params)
                                                                if dataclasses.is_dataclass(step.params) else {})
             if text in model_files}
    return {"models": {name: model_files[name] for name in sorted(named)}} if named else {}


def unresolved(runs: list[RunSpec]) -> bool:
    """Whether a run's identity waits on a model's preparation (e.g. a hub download)."""
    from harness.api import UNRESOLVED

    return any(runs_model.get("source") == UNRESOLVED for run in runs
               for runs_model in [run.versions.get("files", {}).get("model", {})])


def _runtime_of(plugins: Any, method: MethodSpec) -> str | None:
    """The runtime a method's steps are made for, or None (torch steps: every runtime)."""
    for step in method.steps:
        if plugins.get("method", step.use) is not None:
            runtime = getattr(plugins.lookup("method", step.use), "runtime", None)
            if runtime:
                return runtime
    return None


def _runtime_versions(plugins: Any, runtime: str) -> dict[str, Any]:
    """The versions of a runtime's libraries and plugin code, in the run's identity
    (none for torch, whose version is there already: existing run ids stay)."""
    if runtime == "torch" or plugins.get("runtime", runtime) is None:
        return {}
    cls = plugins.lookup("runtime", runtime)
    entry = plugins.get("runtime", runtime)
    return {"runtime": {dist: installed_version(dist) for dist in getattr(cls, "libraries", ())}
            | plugin_versions(plugins, {entry.plugin.name})}


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
