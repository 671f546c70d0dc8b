"""The typed run spine: what one run is, and its one codec to JSON and back.

The suite checker builds these with every plugin schema bound (a source's ``Options``, a
task kind's ``Config``, each method step's ``Params``), validated once, in the driver. A
worker decodes the JSON back into the same types without checking again. On disk
(``spec`` in a result row) the format is the one harness has always written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.config import MeasureConfig
from harness.params import decode, to_dict

# (kind, name) -> the plugin's schema dataclass, or None when no plugin registers it.
SchemaOf = Callable[[str, str], "type | None"]


def _plain(value: Any) -> Any:
    return to_dict(value) if dataclasses.is_dataclass(value) else dict(value)


def _bind(schema: type | None, data: dict[str, Any]) -> Any:
    return decode(schema, data) if schema is not None else dict(data)


@dataclass
class ModelSpec:
    name: str
    source: str
    ref: str
    options: Any  # the source's Options instance

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "ref": self.ref, "options": _plain(self.options)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], schema_of: SchemaOf) -> ModelSpec:
        return cls(data["name"], data["source"], data["ref"],
                   _bind(schema_of("source", data["source"]), data["options"]))


@dataclass
class TaskSpec:
    name: str
    kind: str
    models: list[str]
    config: Any  # the task kind's Config instance

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "models": list(self.models), "config": _plain(self.config)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], schema_of: SchemaOf) -> TaskSpec:
        return cls(data["name"], data["kind"], list(data["models"]),
                   _bind(schema_of("task", data["kind"]), data["config"]))


@dataclass
class StepSpec:
    use: str
    params: Any  # the method's Params instance; a plain dict when no loaded plugin has it

    def to_dict(self) -> dict[str, Any]:
        return {"use": self.use, "params": _plain(self.params)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], schema_of: SchemaOf) -> StepSpec:
        return cls(data["use"], _bind(schema_of("method", data["use"]), data["params"]))


@dataclass
class MethodSpec:
    """A suite's method entry after chains and sweeps are expanded: named steps."""

    name: str
    steps: list[StepSpec]


BASELINE = "baseline"  # a reserved method name: the plan adds it for every (model, task)


def compiled_name(name: str, mode: str) -> str:
    """The name of method ``name``'s run under torch.compile ``mode`` when a suite runs
    several modes side by side (``[measure] compile = ["none", "default"]``): eager runs
    keep their names, compiled ones say how they were compiled."""
    if mode == "none":
        return name
    return f"{name}+compile" if mode == "default" else f"{name}+compile-{mode}"


def variant_name(name: str, runtime: str, mode: str, several: bool) -> str:
    """A method's run name in one variant: as it is when the suite runs one variant;
    else ``int8+compile`` for a torch.compile mode and ``int8@onnxruntime`` for a runtime."""
    if not several:
        return name
    return compiled_name(name, mode) if runtime == "torch" else f"{name}@{runtime}"


@dataclass
class Placement:
    """Where and how one run runs, decided by the executor where it runs — never part of
    the run's identity: intra-op ``threads`` when runs share the CPU, ``concurrent`` runs
    sharing the machine (the RAM's power is split among them), the machine's ``idle``
    power (``IdlePower`` as a dict; measured by the driver or each Ray node), and
    ``artifacts_dir``: where compressed models are kept for reuse on that machine (None:
    compress every run)."""

    threads: int = 0
    concurrent: int = 1
    idle: dict[str, Any] | None = None
    artifacts_dir: str | None = None


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs for one run: model × method × task, typed. Immutable:
    what the run *is* (its identity, hashed into ``run_id`` by the plan); where and how it
    runs is its :class:`Placement`, which the executor fills (copy a spec with
    ``dataclasses.replace(spec, ..., placement=Placement())``: a placement is one run's)."""

    run_id: str
    suite: str
    suite_dir: str
    model: ModelSpec
    task: TaskSpec
    method: str
    steps: list[StepSpec]
    measure: MeasureConfig
    seed: int
    device: str
    timeout_s: float
    versions: dict[str, Any]
    accuracy_gate: float = 0.99  # for leaderboards; not part of the run's identity
    suite_models: dict[str, ModelSpec] = field(default_factory=dict)  # for ctx.load_model
    gpus_per_run: float = 0.0  # GPUs a cluster executor reserves per run ([suite] gpus_per_run); not identity
    placement: Placement = field(default_factory=lambda: Placement())  # filled where the run runs

    @property
    def label(self) -> str:
        return f"{self.model.name} · {self.method} · {self.task.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "suite": self.suite, "suite_dir": self.suite_dir,
            "model": self.model.to_dict(), "task": self.task.to_dict(), "method": self.method,
            "steps": [s.to_dict() for s in self.steps], "measure": dataclasses.asdict(self.measure),
            "seed": self.seed, "device": self.device, "timeout_s": self.timeout_s,
            "versions": self.versions, "accuracy_gate": self.accuracy_gate,
            "suite_models": {name: m.to_dict() for name, m in self.suite_models.items()},
            "gpus_per_run": self.gpus_per_run, "placement": dataclasses.asdict(self.placement),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], schema_of: SchemaOf) -> RunSpec:
        """Decode :meth:`to_dict`'s output; ``schema_of`` gives each plugin's schema class."""
        return cls(
            run_id=data["run_id"], suite=data["suite"], suite_dir=data["suite_dir"],
            model=ModelSpec.from_dict(data["model"], schema_of),
            task=TaskSpec.from_dict(data["task"], schema_of), method=data["method"],
            steps=[StepSpec.from_dict(s, schema_of) for s in data["steps"]],
            measure=MeasureConfig(**data["measure"]), seed=data["seed"], device=data["device"],
            timeout_s=data["timeout_s"], versions=data["versions"],
            accuracy_gate=data.get("accuracy_gate", 0.99),
            suite_models={n: ModelSpec.from_dict(m, schema_of) for n, m in data.get("suite_models", {}).items()},
            gpus_per_run=data.get("gpus_per_run", 0.0), placement=Placement(**data.get("placement", {})),
        )
