"""What a plugin implements: one base class per kind of plugin (methods, model
sources, task kinds, executors, reporters), and what the harness hands to them.

Classes here are imported by ``harness plugins`` and by suite validation, so a plugin
module must not import torch at its top: do heavy imports inside ``load``/``apply``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from harness.metrics import Metric, aggregate

if TYPE_CHECKING:
    from harness.result import RunResult
    from harness.spec import RunSpec

__all__ = ["Metric", "Outcomes", "aggregate", "Skip", "Method", "ModelSource", "TaskKind", "PreparedTask",
           "Runtime", "Executor", "Reporter", "RunContext", "NoParams"]

UNRESOLVED = "unresolved until prepared"  # a ModelSource.fingerprint known only after prepare
FAMILIES = ("none", "quantization", "pruning", "sparsity", "distillation", "training")  # the built-ins'; or your own
NEEDS = ("calibration", "training", "teacher")


class Skip(Exception):
    """Raise from ``check`` or ``apply`` when a method cannot run here (no CUDA, an
    unsupported layer, params the hardware cannot honour): the run becomes ``skipped``
    with this message as the reason, not ``failed``."""


@dataclass(frozen=True)
class NoParams:
    """Params of a method (or options of a source) that takes none."""


class Method:
    """A compression method. Subclasses set the class attributes and ``apply``.

    ``Params`` is a dataclass: suites are checked against it before anything runs, and
    ``__post_init__`` may raise ``ValueError`` for out-of-range values.
    """

    name: ClassVar[str]
    family: ClassVar[str] = "none"
    needs: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams
    # Modules a warm worker imports once, before it forks each run (heavy libraries that
    # this plugin's load/prepare/apply import), so that no run pays for them; a suite
    # preloads those of the plugins its runs use.
    preload: ClassVar[tuple[str, ...]] = ()
    # Top-level modules this plugin cannot work without (e.g. ("datasets",)): `harness
    # validate` refuses a suite that uses it where one is missing, naming the extra to install.
    requires: ClassVar[tuple[str, ...]] = ()
    # The runtime whose own model form this method compresses (e.g. "onnxruntime": its
    # apply() gets and returns what that Runtime.export gave, after the torch steps);
    # None: a torch method, usable with every runtime.
    runtime: ClassVar[str | None] = None

    def check(self, model: Any, ctx: RunContext) -> str | None:
        """Return a one-line reason to skip this run (no CUDA, wrong dtype), or None."""
        return None

    def apply(self, model: Any, params: Any, ctx: RunContext) -> tuple[Any, dict[str, Any]]:
        """Compress ``model``; return the model and ``info`` on what was done.

        ``info`` should say what changed (layers, sparsity, bits), whether the speedup
        can be real (``kernels``: ``"real"`` or ``"simulated"``), and the library used.
        """
        raise NotImplementedError


class ModelSource:
    """Where models come from (``builtin``, ``file``, ``hf``, ...)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Options: ClassVar[type] = NoParams
    # Modules a warm worker imports once, before it forks each run (heavy libraries that
    # this plugin's load/prepare/apply import), so that no run pays for them; a suite
    # preloads those of the plugins its runs use.
    preload: ClassVar[tuple[str, ...]] = ()
    # Top-level modules this plugin cannot work without (e.g. ("datasets",)): `harness
    # validate` refuses a suite that uses it where one is missing, naming the extra to install.
    requires: ClassVar[tuple[str, ...]] = ()

    def check_ref(self, ref: str, options: Any, suite_dir: Path) -> str | None:
        """Return a problem with ``ref`` (unknown id, missing file) found without loading."""
        return None

    def load(self, ref: str, options: Any, ctx: RunContext) -> Any:
        """Return the model, in eval mode, on ``ctx.device``. What was loaded (class, head,
        weights initialised anew) may be attached as ``model.harness_load_info``, a dict of
        JSON values: it lands in the result row as ``metrics.model_load``."""
        raise NotImplementedError

    def fingerprint(self, ref: str, options: Any, suite_dir: Path) -> str | None:
        """What ``ref`` resolves to beyond the files the spec names (which are hashed
        anyway), for the run's identity: e.g. the hub commit of a cached snapshot. None:
        nothing more; :data:`UNRESOLVED`: known only after ``prepare`` (not downloaded
        yet), so the bench plans those runs again once it has prepared the model."""
        return None

    def prepare(self, ref: str, options: Any, suite_dir: Path) -> None:
        """One-time work before any run loads ``ref`` (train, convert, fill a cache).

        The driver calls it in a child process, outside every run's timeout and timings;
        lines it prints to stderr starting with ``"prepare: "`` are shown to the user.
        """


@dataclass
class Outcomes:
    """Per-sample outcomes of a task's primary quality metric, returned by
    :meth:`PreparedTask.evaluate` under the key ``"outcomes"``: the verdict pairs them
    with the baseline's, sample by sample (so keep the order fixed for every method).

    ``metric`` names a metric of :mod:`harness.metrics` (built-in or declared in
    ``TaskKind.metrics``) or is a :class:`~harness.metrics.Metric` itself (a metric only
    known at run time, e.g. lm-eval's own). The metric's ``aggregate`` of ``values``
    (weighted by ``weights``) must equal the figure ``evaluate`` returns for it: 0/1
    correctness per example for accuracy, mean negative log-likelihood per token of
    each window (weights: tokens) for perplexity.
    """

    metric: str | Metric
    values: list[float]
    weights: list[float] | None = None


class TaskKind:
    """A kind of evaluation (``classification``, ``lm-eval``, ...).

    ``Config`` is the dataclass of the task's own keys in the suite (everything except
    ``name``, ``kind`` and ``models``). ``metrics`` declares quality metrics this kind
    reports that :mod:`harness.metrics` does not define yet (name, label, unit,
    direction); its :class:`Outcomes` name the primary one.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Config: ClassVar[type] = NoParams
    metrics: ClassVar[tuple[Metric, ...]] = ()
    # Modules a warm worker imports once, before it forks each run (heavy libraries that
    # this plugin's load/prepare/apply import), so that no run pays for them; a suite
    # preloads those of the plugins its runs use.
    preload: ClassVar[tuple[str, ...]] = ()
    # Top-level modules this plugin cannot work without (e.g. ("datasets",)): `harness
    # validate` refuses a suite that uses it where one is missing, naming the extra to install.
    requires: ClassVar[tuple[str, ...]] = ()

    def check_config(self, config: Any, suite_dir: Path) -> list[str]:
        """Problems with ``config`` that need the file system (missing files)."""
        return []

    def prepare(self, config: Any, ctx: RunContext) -> PreparedTask:
        raise NotImplementedError


class PreparedTask:
    """A task with its data loaded, as the worker and methods use it."""

    def evaluate(self, model: Any) -> dict[str, Any]:
        """Quality metrics; ``accuracy`` and ``accuracy_stderr`` where they apply, and
        ``"outcomes"``: the per-sample :class:`Outcomes` of the primary metric (without
        them the run gets no paired verdict against the baseline)."""
        raise NotImplementedError

    def example_input(self, batch_size: int) -> Any:
        """The same deterministic input batch for every method of a (model, task)."""
        raise NotImplementedError

    def calibration_batches(self, n_samples: int, batch_size: int = 64) -> list[Any]:
        """Inputs from the training split, for calibrated methods."""
        raise NotImplementedError

    def train_batches(self, batch_size: int, seed: int) -> list[tuple[Any, Any]]:
        """One shuffled epoch of (input, target) pairs from the training split."""
        raise NotImplementedError

    def loss(self, output: Any, target: Any) -> Any:
        """The task's training loss."""
        raise NotImplementedError

    def before_compression(self, model: Any) -> None:
        """See the original model once, before any method runs (e.g. keep its reference
        outputs for fidelity, or its tokenizer). Default: nothing."""

    def extra_measurements(self, model: Any, measure: Any) -> tuple[dict[str, Any], dict[str, str]]:
        """Figures only this kind of task can take (e.g. generation speed of a causal LM),
        as ``(metrics, provenance)``; ``measure`` is the suite's ``[measure]`` config.
        Default: none."""
        return {}, {}


class Runtime:
    """Where the compressed model runs to be evaluated and timed (``onnxruntime``, ...):
    ``export`` (once per call signature of the task and the timer) → the steps of methods
    whose ``runtime`` is this one → ``load``; the task evaluates what ``load`` returns (via
    :class:`harness.toolkit.RuntimeModel`). Raise :class:`Skip` for a model it cannot take."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    # Distributions whose versions belong to the run's identity (e.g. ("onnxruntime",)).
    libraries: ClassVar[tuple[str, ...]] = ()
    preload: ClassVar[tuple[str, ...]] = ()
    requires: ClassVar[tuple[str, ...]] = ()  # as for methods: checked by `harness validate`

    def check(self, model: Any, ctx: RunContext) -> str | None:
        """A one-line reason this runtime cannot run ``model`` here, or None."""
        return None

    def export(self, module: Any, inputs: tuple[Any, ...], names: list[str], outputs: list[str],
               ctx: RunContext) -> Any:
        """A :class:`harness.toolkit.Graph` of ``module(*inputs)`` (a torch module with flat
        tensor inputs ``names`` and a tuple of tensor outputs ``outputs``) in the runtime's
        own form, taking any batch size (and any length of integer inputs such as token
        ids). :func:`harness.toolkit.export_onnx` does the ONNX export."""
        raise NotImplementedError

    def save(self, graph: Any, folder: Path) -> Path | None:
        """Write ``graph`` into ``folder`` as the runtime's own files (what a user would
        deploy; :func:`harness.toolkit.save_files` copies an ``.onnx``); the main file."""
        return None

    def load(self, graph: Any, ctx: RunContext) -> Any:
        """A callable ``f(list of numpy arrays) -> list of numpy arrays`` (the graph's
        inputs and outputs, in order) that runs ``graph`` on ``ctx.device``. It may carry
        ``weight_bytes`` (the stored weights' size) and ``kernels()`` (the kernel or op
        names that ran in its last calls, e.g. from the runtime's profiler)."""
        raise NotImplementedError


class Executor:
    """Runs a plan's runs somewhere (this machine, a Ray cluster, ...).

    ``run`` calls ``on_start(spec)`` as each run starts and ``on_result(spec, result)``
    once per finished run, from one thread at a time; the driver alone stores results.
    A run interrupted by the user gets no ``on_result`` (it runs again next time).
    :func:`harness.toolkit.run_isolated` runs one spec in its own worker process.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    # True: the executor prepares models where its runs go (e.g. each node of a cluster),
    # so the driver does not prepare them first.
    prepares_models: ClassVar[bool] = False
    # True: the executor measures idle power where its runs go (once per node and (device,
    # carbon country), before that node's runs) and sets each spec's ``placement.idle`` and
    # ``concurrent`` itself, so the driver does not measure its own host's idle power.
    measures_idle: ClassVar[bool] = False

    def __init__(self, jobs: int = 1):
        self.jobs = max(1, jobs)

    def warm_up(self, runs: list[RunSpec]) -> None:
        """Called before the driver prepares models: start what takes long (e.g. a fork
        server) so that it overlaps. Default: nothing."""

    def run(self, runs: list[RunSpec], log_dir: Path, on_start: Callable[[RunSpec], None],
            on_result: Callable[[RunSpec, RunResult], None]) -> None:
        raise NotImplementedError


class Reporter:
    """Writes the leaderboard (a pandas DataFrame) to a file: ``leaderboard.<suffix>``."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    suffix: ClassVar[str] = ""

    def write(self, frame: Any, path: Path) -> None:
        raise NotImplementedError


@dataclass
class RunContext:
    """What the worker hands to sources, tasks and methods during one run."""

    device: str
    seed: int
    work_dir: Path  # private to this run; removed when the run ends, however it ends
    suite_dir: Path
    task: PreparedTask | None = None
    load_model: Callable[[str], Any] | None = None  # another model of the suite, by name
    _teacher: Any = None

    @property
    def teacher(self) -> Any:
        """The uncompressed model of this run (a separate copy)."""
        return self._teacher

    def evaluate(self, model: Any) -> dict[str, float]:
        assert self.task is not None
        return self.task.evaluate(model)
