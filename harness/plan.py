"""Expand a suite into runs, each with a stable ``run_id``."""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.metadata as md
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from harness import __version__
from harness.plugins import Registry
from harness.suite import MethodSpec, ModelSpec, StepSpec, Suite, TaskSpec

BASELINE = MethodSpec("baseline", [StepSpec("baseline", {})])


@dataclass
class RunSpec:
    """Everything a worker needs for one run; JSON-serializable."""

    run_id: str
    suite: str
    suite_dir: str
    model: dict[str, Any]
    task: dict[str, Any]
    method: str
    steps: list[dict[str, Any]]
    measure: dict[str, Any]
    seed: int
    device: str
    timeout_s: float
    versions: dict[str, Any]
    accuracy_gate: float = 0.99  # for leaderboards; not part of the run's identity
    suite_models: dict[str, Any] = field(default_factory=dict)  # name → model spec, for ctx.load_model
    threads: int = 0  # set by the executor when runs share the CPU

    @property
    def label(self) -> str:
        return f"{self.model['name']} · {self.method} · {self.task['name']}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        return cls(**data)


def _torch_version() -> str | None:
    try:
        return md.version("torch")
    except md.PackageNotFoundError:
        return None


def run_id_of(fields: dict[str, Any]) -> str:
    """A stable hash of what determines a run's outcome."""
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _plugins_of(registry: Registry, model: ModelSpec, task: TaskSpec, method: MethodSpec) -> set[str]:
    names = set()
    for kind, name in [("source", model.source), ("task", task.kind)] + [("method", s.use) for s in method.steps]:
        entry = registry.get(kind, name)
        if entry is not None:
            names.add(entry.plugin.name)
    return names


def build_plan(suite: Suite, registry: Registry) -> list[RunSpec]:
    """models × (baseline + methods) × tasks, in suite order, baseline first."""
    methods = [BASELINE] + [m for m in suite.methods if m.name != "baseline"]
    torch_version = _torch_version()
    measure = asdict(suite.measure)
    runs = []
    for model in suite.models:
        for task in suite.tasks:
            if not any(fnmatch.fnmatch(model.name, pattern) for pattern in task.models):
                continue
            for method in methods:
                versions = {
                    "harness": __version__,
                    "torch": torch_version,
                    "plugins": registry.versions(_plugins_of(registry, model, task, method)),
                }
                identity = {
                    "model": asdict(model),
                    "task": asdict(task),
                    "steps": [asdict(s) for s in method.steps],
                    "measure": measure,
                    "seed": suite.config.seed,
                    "device": suite.config.device,
                    "versions": versions,
                }
                runs.append(
                    RunSpec(
                        run_id=run_id_of(identity),
                        suite=suite.config.name,
                        suite_dir=str(suite.dir.resolve()),
                        model=asdict(model),
                        task=asdict(task),
                        method=method.name,
                        steps=[asdict(s) for s in method.steps],
                        measure=measure,
                        seed=suite.config.seed,
                        device=suite.config.device,
                        timeout_s=suite.config.timeout_s,
                        versions=versions,
                        accuracy_gate=suite.config.accuracy_gate,
                        suite_models={m.name: asdict(m) for m in suite.models},
                    )
                )
    return runs


def select(runs: list[RunSpec], pattern: str | None) -> list[RunSpec]:
    """Runs whose 'model/method/task' (or any one of the three) matches the glob."""
    if not pattern:
        return runs
    out = []
    for run in runs:
        key = f"{run.model['name']}/{run.method}/{run.task['name']}"
        parts = (run.model["name"], run.method, run.task["name"])
        if fnmatch.fnmatch(key, pattern) or any(fnmatch.fnmatch(p, pattern) for p in parts):
            out.append(run)
    return out
