"""Run one RunSpec in this process and write its result as JSON.

Started by the executor as ``python -m harness.worker SPEC.json RESULT.json`` so that
each run has its own memory, threads and fate: whatever happens here, the driver
stores a result. One run reads as its phases: load → compress → runtime → evaluate → measure.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from harness.api import PreparedTask, RunContext, Skip
from harness.defaults import Baseline
from harness.plugins import PluginSet, load_plugins
from harness.process import become_subreaper, end_descendants
from harness.result import RunResult
from harness.runtime_phase import through_runtime
from harness.spec import ModelSpec, RunSpec


def load(spec: RunSpec, plugins: PluginSet, work_dir: Path) -> tuple[Any, PreparedTask, RunContext]:
    """Phase 1: the task's data and the model to compress, in eval mode."""
    ctx = RunContext(device=spec.device, seed=spec.seed, work_dir=work_dir, suite_dir=Path(spec.suite_dir))
    task_kind = plugins.lookup("task", spec.task.kind)()
    ctx.task = task_kind.prepare(spec.task.config, ctx)

    def load_model(name: str) -> Any:
        if name not in spec.suite_models:
            raise LookupError(f"no model named '{name}' in the suite; models: {', '.join(spec.suite_models)}")
        return load_one(spec.suite_models[name], plugins, ctx)

    ctx.load_model = load_model
    model = load_one(spec.model, plugins, ctx)
    ctx.task.before_compression(model)  # e.g. fidelity: reference outputs of the original
    return model, ctx.task, ctx


def load_one(model: ModelSpec, plugins: PluginSet, ctx: RunContext) -> Any:
    return eval_mode(plugins.lookup("source", model.source)().load(model.ref, model.options, ctx))


def eval_mode(model: Any) -> Any:
    """``model.eval()`` where the model allows it: a torch.export graph module refuses it
    (it runs as it was exported) and is used as it is."""
    try:
        return model.eval()
    except NotImplementedError:
        return model


def compress(model: Any, spec: RunSpec, plugins: PluginSet, ctx: RunContext,
             session: Any) -> tuple[Any, list[dict[str, Any]]]:
    """Phase 2: the compressed model and what each step did — from the (model, method)'s
    artifact when another run already compressed it, else by applying the steps."""
    from harness.artifacts import ArtifactStore, artifact_key

    methods = [(plugins.lookup("method", step.use)(), step) for step in spec.steps]
    methods = [(m, step) for m, step in methods if not m.runtime]  # the runtime's own come later
    trivial = all(step.use == Baseline.name for _, step in methods)
    store = ArtifactStore(Path(spec.placement.artifacts_dir)) if spec.placement.artifacts_dir and not trivial else None
    key = artifact_key(spec, [m for m, _ in methods], plugins.get("task", spec.task.kind).plugin.name,
                       [s for _, s in methods]) if store else ""
    found = store.load(key, spec.device) if store else None
    if found is not None:
        for method, step in methods:  # what the method refuses, it refuses reused too
            reason = method.check(model, ctx)
            if reason:
                raise Skip(f"{step.use}: {reason}")
        model, meta = found
        note = f"reused: compressed once by run {meta['run_id']} (task {meta['task']}), artifact {key}"
        session.reuse_compression(meta["figures"], note)
        return model, [step | {"artifact": note} for step in meta["steps"]]
    model, steps = apply_steps(model, methods, spec, ctx, session, trivial)
    if store:
        meta = {"run_id": spec.run_id, "task": spec.task.name, "steps": steps, "figures": session.compression_record()}
        why_not = store.save(key, model, meta)
        note = f"stored as artifact {key}" if why_not is None else f"not stored for reuse: {why_not}"
        steps = [step | {"artifact": note} for step in steps]
    return model, steps


def apply_steps(model: Any, methods: list[tuple[Any, Any]], spec: RunSpec, ctx: RunContext, session: Any,
                trivial: bool) -> tuple[Any, list[dict[str, Any]]]:
    """Apply each method step in order, timed and metered together."""
    import torch

    if any("teacher" in method.needs for method, _ in methods):
        ctx._teacher = copy.deepcopy(model)
    steps = []
    with session.compression(len(methods), changes_nothing=trivial):
        for method, step in methods:
            reason = method.check(model, ctx)
            if reason:
                raise Skip(f"{step.use}: {reason}")
            torch.manual_seed(spec.seed)
            _sync(spec.device)
            t0 = time.perf_counter()
            try:
                model, info = method.apply(model, step.params, ctx)
            except Skip as exc:
                raise Skip(f"{step.use}: {exc}") from None
            _sync(spec.device)
            steps.append(step.to_dict() | {"apply_s": time.perf_counter() - t0, "info": info})
            model = eval_mode(model)
    session.add_compress_time(sum(s["apply_s"] for s in steps))
    return model, steps


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def execute(spec: RunSpec, plugins: PluginSet,
            work_dir: Path) -> tuple[Any, list[dict[str, Any]], dict[str, Any] | None]:
    """Load, compress, evaluate, measure; return (figures, steps, per-sample outcomes)."""
    import torch

    from harness.measure.energy import energy_context
    from harness.measure.kernels import claimed_kernels
    from harness.measure.session import MeasurementSession

    threads = spec.measure.threads or spec.placement.threads
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(spec.seed)
    energy = energy_context(spec.placement.concurrent, spec.placement.idle)
    with MeasurementSession(spec.device, spec.measure, energy) as session:
        model, task, ctx = load(spec, plugins, work_dir)
        loaded = getattr(model, "harness_load_info", None)  # what the source says it loaded
        if loaded:
            session.figures.measured("model_load", loaded, f"reported by the '{spec.model.source}' source")
        model, steps = compress(model, spec, plugins, ctx, session)
        model, runtime_steps = through_runtime(model, spec, plugins, ctx, session)  # phase 3: the runtime
        steps += runtime_steps
        untrained_weights(loaded, spec, plugins, session.figures)
        samples = evaluate(model, task, spec, plugins, session)  # phase 4
        session.measure(model, task, shared_timing(spec, plugins), claimed=claimed_kernels(steps))  # phase 5
    return session.figures, steps, samples


def shared_timing(spec: RunSpec, plugins: PluginSet) -> Any:
    """Where this run's speed is shared with the other tasks' runs of the same compressed
    model (None when artifacts are off: every run times itself)."""
    from harness.artifacts import artifact_key
    from harness.measure.shared_timing import SharedTiming

    if not spec.placement.artifacts_dir:
        return None
    methods = [plugins.lookup("method", step.use) for step in spec.steps]
    key = artifact_key(spec, methods, plugins.get("task", spec.task.kind).plugin.name)
    if spec.measure.runtime != "torch":
        key = f"{key}-{spec.measure.runtime}"
    return SharedTiming(Path(spec.placement.artifacts_dir) / "timings", key, spec.run_id, spec.task.name)


def evaluate(model: Any, task: PreparedTask, spec: RunSpec, plugins: PluginSet, session: Any) -> dict | None:
    """Phase 3: the task's quality figures, and the per-sample outcomes of its primary
    metric (whose definition goes into the row as ``quality_metric``)."""
    from harness.outcomes import resolve

    quality = dict(task.evaluate(model))
    outcomes = quality.pop("outcomes", None)
    session.add_quality(quality, spec.task.kind)
    if outcomes is None:
        return None
    declared = getattr(plugins.lookup("task", spec.task.kind), "metrics", ())
    metric, samples = resolve(outcomes, quality, tuple(declared), spec.task.kind)
    session.figures.measured("quality_metric", metric.to_dict(),
                             f"the {spec.task.kind} task's primary metric; per-sample outcomes in samples/")
    return samples


def untrained_weights(loaded: Any, spec: RunSpec, plugins: PluginSet, figures: Any) -> None:
    """Mark a model whose source initialised weights anew (e.g. a classification head)
    that no step trained: its quality is that of random weights and never holds."""
    new = (loaded or {}).get("new_weights") if isinstance(loaded, dict) else None
    if not new:
        return
    trains = [s.use for s in spec.steps
              if plugins.lookup("method", s.use).family in ("training", "distillation")
              or "training" in plugins.lookup("method", s.use).needs]
    if trains:
        return
    figures.measured("untrained_weights", len(new),
                     f"{len(new)} weight(s) initialised anew by the '{spec.model.source}' source and trained by "
                     f"no step ({', '.join(new[:3])}{', …' if len(new) > 3 else ''}): the quality is a random "
                     "head's, never a result")


def run(spec: RunSpec, plugins: PluginSet) -> RunResult:
    """The result of ``spec`` (never raises for a plugin's failure)."""
    t0 = time.perf_counter()
    result = RunResult.of(spec, "ok")
    try:
        with tempfile.TemporaryDirectory(prefix=f"harness-{spec.run_id}-") as work_dir:
            figures, result.steps, result.samples = execute(spec, plugins, Path(work_dir))
        result.metrics, result.provenance = figures.metrics, figures.provenance
    except Skip as exc:
        result.status, result.error = "skipped", str(exc)
    except (Exception, SystemExit) as exc:  # a plugin's sys.exit() fails its run, no more
        tb = traceback.format_exc().strip().splitlines()
        result.status, result.error = "failed", f"{type(exc).__name__}: {exc}\n" + "\n".join(tb[-15:])
    result.env = _environment(spec, plugins)
    result.duration_s = time.perf_counter() - t0
    return result


def _environment(spec: RunSpec, plugins: PluginSet) -> dict[str, Any]:
    try:
        from harness.measure.environment import environment

        return environment(spec.device, plugins.versions({p.name for p in plugins.plugins if p.status == "ok"}))
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def prepare(model: dict[str, Any], suite_dir: Path) -> None:
    """Run a model source's one-time preparation (``python -m harness.worker --prepare``)."""
    plugins = load_plugins()
    spec = ModelSpec.from_dict(model, plugins.schema_of)
    plugins.lookup("source", spec.source)().prepare(spec.ref, spec.options, suite_dir)


def _die_with_parent() -> None:
    """Ask Linux to kill this worker if the driver dies first (no orphaned runs), and to
    make this worker the parent of its children's orphans, so that none outlives the run."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    become_subreaper()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _die_with_parent()
    try:
        if argv[0] == "--prepare":
            prepare(json.loads(argv[1]), Path(argv[2]))
            return 0
        spec_path, result_path = Path(argv[0]), Path(argv[1])
        plugins = load_plugins()
        spec = RunSpec.from_dict(json.loads(spec_path.read_text()), plugins.schema_of)
        result = run(spec, plugins)
        tmp = result_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result.to_row(), default=str))
        os.replace(tmp, result_path)
        return 0
    finally:  # whatever a plugin started (children, daemons) ends with the run
        end_descendants()


if __name__ == "__main__":
    sys.exit(main())
