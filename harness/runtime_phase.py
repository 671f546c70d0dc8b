"""The worker's runtime phase: the compressed torch model made ready in the suite's
runtime (``[measure] runtime``), with its cold-start figures.

``torch``: the model itself (``[measure] compile`` is applied by the timer). Any other
runtime: a :class:`harness.toolkit.RuntimeModel` that exports each call signature, applies
the run's steps of methods made for that runtime (e.g. ONNX Runtime's static int8), and
loads it; the task then evaluates what the runtime computes and the timer times it.

Cold start, apart from the warmed-up timings (optimum-benchmark reports both):
``runtime_prepare_s`` (export + the runtime's steps + load of the first graph),
``load_s`` (the runtime's load of it: session creation or compilation) and
``first_call_ms`` (the first call right after, at the first timed batch size).
"""

from __future__ import annotations

import time
from typing import Any

from harness.api import RunContext, Skip
from harness.plugins import PluginSet
from harness.spec import RunSpec

TORCH = "torch"


def runtime_steps(spec: RunSpec, plugins: PluginSet) -> list[tuple[Any, Any]]:
    """(method, step) of the steps that compress the runtime's own form."""
    pairs = [(plugins.lookup("method", s.use), s) for s in spec.steps]
    return [(cls(), s) for cls, s in pairs if getattr(cls, "runtime", None)]


def through_runtime(model: Any, spec: RunSpec, plugins: PluginSet, ctx: RunContext,
                    session: Any) -> tuple[Any, list[dict[str, Any]]]:
    """(what the task evaluates and the timer times, the infos of the runtime's steps)."""
    name = spec.measure.runtime
    example = ctx.task.example_input(sorted(spec.measure.batch_sizes)[0]) if ctx.task else None
    if name == TORCH:
        if example is not None:
            _first_call(model, example, spec.device, session, "the torch model, eager")
        return model, []
    from harness.toolkit.runtimes import Built, RuntimeModel, flat_module

    runtime = plugins.lookup("runtime", name)()
    reason = runtime.check(model, ctx)
    if reason:
        raise Skip(f"runtime {name}: {reason}")
    steps = runtime_steps(spec, plugins)
    infos: list[dict[str, Any]] = []
    figures: dict[str, float] = {}
    notes: list[str] = []
    exported: list[str | None] = []

    def build(args: tuple, kwargs: dict) -> Built:
        t0 = time.perf_counter()
        try:
            module, inputs, names, outputs, rebuild = flat_module(model, args, kwargs)
            graph = runtime.export(module, inputs, names, outputs, ctx)
        except Skip:
            raise
        except Exception as exc:  # noqa: BLE001 - a model the runtime cannot take is a skip
            raise Skip(f"runtime {name} cannot take this model: {_line(exc)}") from None
        figures.setdefault("export_s", time.perf_counter() - t0)
        notes.extend(graph.notes)
        for method, step in steps:
            s0 = time.perf_counter()
            try:
                graph, info = method.apply(graph, step.params, ctx)
            except Skip as exc:
                raise Skip(f"{step.use}: {exc}") from None
            if len(infos) < len(steps):
                infos.append(step.to_dict() | {"apply_s": time.perf_counter() - s0, "info": info})
        exported.append(_keep(runtime, graph, spec))
        l0 = time.perf_counter()
        try:
            run = runtime.load(graph, ctx)
        except Skip:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. no kernel for an op in this dtype
            raise Skip(f"runtime {name} cannot run this model: {_line(exc)}") from None
        figures.setdefault("load_s", time.perf_counter() - l0)
        wrapped.weight_bytes = getattr(run, "weight_bytes", None)
        if callable(getattr(run, "kernels", None)):
            wrapped.kernels_of = run.kernels
        return Built(run, names, rebuild, time.perf_counter() - t0)

    wrapped = RuntimeModel(name, model, build)
    if example is not None:
        wrapped.prepare(example)
        session.figures.measured("runtime_prepare_s", wrapped.build_seconds,
                                 f"{name}: export, {len(steps)} own compression step(s) and load of the timed "
                                 f"call's graph; {'; '.join(dict.fromkeys(notes))}")
        session.figures.measured("export_s", figures["export_s"], f"{name}: the export of the timed call's graph")
        session.figures.measured("load_s", figures["load_s"], f"{name}: loading the graph (session/compilation)")
        _first_call(wrapped, example, spec.device, session, f"the {name} runtime, right after loading")
        if exported[0]:
            session.figures.measured("exported_graph", exported[0], f"the timed call's graph as {name} ran it "
                                     "(after its own compression steps), kept for you to deploy or check")
    if steps:
        session.figures.measured("compress_s", sum(i["apply_s"] for i in infos) + (
            session.figures.metrics.get("compress_s") or 0.0),
            f"wall time of the torch steps' and the {name} steps' apply()")
        session.figures.absent("compress_energy_j", f"the {name} runtime's own compression steps are not metered")
        session.figures.absent("compress_co2_g", f"the {name} runtime's own compression steps are not metered")
    return wrapped, infos


def _line(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300] if text else ''}"


def _keep(runtime: Any, graph: Any, spec: RunSpec) -> str | None:
    """Save the graph as the runtime's own files next to the suite's artifacts, in
    ``exports/<run id>/<n>/``; the main file's path, or None (no artifacts, or it cannot)."""
    from pathlib import Path

    if not spec.placement.artifacts_dir:
        return None
    folder = Path(spec.placement.artifacts_dir) / "exports" / spec.run_id
    try:
        saved = runtime.save(graph, folder / str(len(list(folder.glob("*"))) if folder.is_dir() else 0))
    except Exception:  # noqa: BLE001 - keeping a copy is a convenience, never the run's failure
        return None
    return str(saved) if saved else None


def _first_call(model: Any, example: Any, device: str, session: Any, what: str) -> None:
    """The latency of the first call, before any warm-up (lazy initialisation included)."""
    import torch

    with torch.inference_mode():
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        model(example)
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)
    session.figures.measured("first_call_ms", (time.perf_counter() - t0) * 1e3,
                             f"the first call of {what}, at the first timed batch size")
