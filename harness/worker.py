"""Run one RunSpec in this process and write its result as JSON.

Started by the executor as ``python -m harness.worker SPEC.json RESULT.json`` so that
each run has its own memory, threads and fate: whatever happens here, the driver
writes the row.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.api import RunContext, Skip
from harness.params import build
from harness.plan import RunSpec
from harness.plugins import Registry, load_registry


def _lookup(registry: Registry, kind: str, name: str) -> Any:
    entry = registry.get(kind, name)
    if entry is not None:
        return entry.obj
    culprits = "; ".join(f"plugin '{p.name}': {p.errors[0]}" for p in registry.broken())
    hint = f" (broken plugins: {culprits})" if culprits else ""
    raise LookupError(f"{kind} '{name}' is not registered by any loaded plugin{hint}")


def _schema(cls: type, table: dict[str, Any], where: str) -> Any:
    problems: list[str] = []
    value = build(cls, table, where, problems)
    if problems:
        raise ValueError("; ".join(problems))
    return value


def _set_threads(spec: RunSpec) -> None:
    import torch

    threads = spec.measure.get("threads") or spec.threads
    if threads:
        torch.set_num_threads(int(threads))


def execute(spec: RunSpec, registry: Registry) -> dict[str, Any]:
    """Load, compress, evaluate and measure; return ``metrics``, ``steps`` and more."""
    import torch

    from harness.measure.energy import compression_figures, open_meter
    from harness.measure.hardware import record_start_state
    from harness.measure.perf import measure_model

    _set_threads(spec)
    torch.manual_seed(spec.seed)
    device = spec.device
    record_start_state(device)  # GPU clocks, temperature, other processes: before we load
    meter = open_meter(device, spec.measure["carbon_country"]) if spec.measure["energy"] else None
    suite_dir = Path(spec.suite_dir)
    work_dir = Path(tempfile.mkdtemp(prefix=f"harness-{spec.run_id}-"))
    ctx = RunContext(device=device, seed=spec.seed, work_dir=work_dir, suite_dir=suite_dir)

    source_cls = _lookup(registry, "source", spec.model["source"])
    task_cls = _lookup(registry, "task", spec.task["kind"])
    methods = [(_lookup(registry, "method", s["use"]), s) for s in spec.steps]

    task_kind = task_cls()
    task = task_kind.prepare(_schema(task_cls.Config, spec.task["config"], "task"), ctx)
    ctx.task = task

    def load_model(name: str) -> Any:
        if name not in spec.suite_models:
            raise LookupError(f"no model named '{name}' in the suite; models: {', '.join(spec.suite_models)}")
        other = spec.suite_models[name]
        cls = _lookup(registry, "source", other["source"])
        loaded = cls().load(other["ref"], _schema(cls.Options, other["options"], f"models.{name}.options"), ctx)
        return loaded.eval()

    ctx.load_model = load_model
    model = load_model(spec.model["name"]) if spec.model["name"] in spec.suite_models else \
        source_cls().load(spec.model["ref"], _schema(source_cls.Options, spec.model["options"], "model.options"), ctx)
    model.eval()
    if hasattr(task, "before_compression"):
        task.before_compression(model)  # e.g. fidelity: reference outputs of the original

    if any("teacher" in cls.needs for cls, _ in methods):
        import copy

        ctx._teacher = copy.deepcopy(model)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)

    steps_out = []
    if meter is not None and methods:
        meter.start()  # energy of all steps together (checks and params are negligible)
    for method_cls, step in methods:
        method = method_cls()
        reason = method.check(model, ctx)
        if reason:
            raise Skip(f"{step['use']}: {reason}")
        params = _schema(method_cls.Params, step["params"], f"{step['use']}.params")
        torch.manual_seed(spec.seed)
        sync()
        t0 = time.perf_counter()
        try:
            model, info = method.apply(model, params, ctx)
        except Skip as exc:
            raise Skip(f"{step['use']}: {exc}") from None
        sync()
        apply_s = time.perf_counter() - t0
        model.eval()
        steps_out.append({"use": step["use"], "params": step["params"], "apply_s": apply_s, "info": info})
    if meter is None:
        compression = compression_figures(None, "measure.energy = false")
    elif methods:
        compression = compression_figures(meter.stop())
    else:
        compression = compression_figures(None)
        compression.measured("compress_energy_j", 0.0, "no compression steps")
        compression.measured("compress_co2_g", 0.0, "no compression steps")

    metrics: dict[str, Any] = {}
    provenance: dict[str, str] = {}
    quality = task.evaluate(model)
    metrics.update(quality)
    provenance.update({k: f"measured: the {spec.task['kind']} task's evaluation" for k in quality})
    metrics["compress_s"] = sum(s["apply_s"] for s in steps_out)
    provenance["compress_s"] = "measured: wall time of the method steps' apply() (device synchronized)"
    metrics.update(compression.metrics)
    provenance.update(compression.provenance)

    perf, perf_provenance = measure_model(model, task, spec.measure, device, meter)
    metrics.update(perf)
    provenance.update(perf_provenance)
    extra = getattr(task, "extra_measurements", None)
    if extra is not None:
        more, more_provenance = extra(model, spec.measure)
        metrics.update(more)
        provenance.update(more_provenance)
    return {"metrics": metrics, "provenance": provenance, "steps": steps_out}


def run(spec: RunSpec) -> dict[str, Any]:
    """The result row for ``spec`` (never raises for a plugin's failure)."""
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    row: dict[str, Any] = {
        "run_id": spec.run_id,
        "suite": spec.suite,
        "model": spec.model["name"],
        "method": spec.method,
        "task": spec.task["name"],
        "steps": spec.steps,
        "device": spec.device,
        "started_at": started.isoformat(),
        "spec": spec.to_dict(),
    }
    registry = load_registry()
    try:
        row.update(execute(spec, registry))
        row["status"] = "ok"
    except Skip as exc:
        row["status"] = "skipped"
        row["error"] = str(exc)
    except Exception as exc:
        row["status"] = "failed"
        tb = traceback.format_exc().strip().splitlines()
        row["error"] = f"{type(exc).__name__}: {exc}\n" + "\n".join(tb[-15:])
    try:
        from harness.measure.environment import environment

        plugin_names = {p.name for p in registry.plugins if p.status == "ok"}
        row["env"] = environment(spec.device, registry.versions(plugin_names))
    except Exception as exc:
        row["env"] = {"error": f"{type(exc).__name__}: {exc}"}
    row["duration_s"] = time.perf_counter() - t0
    return row


def prepare(model: dict[str, Any], suite_dir: Path) -> None:
    """Run a model source's one-time preparation (``python -m harness.worker --prepare``)."""
    registry = load_registry()
    cls = _lookup(registry, "source", model["source"])
    cls().prepare(model["ref"], _schema(cls.Options, model["options"], "options"), suite_dir)


def _die_with_parent() -> None:
    """Ask Linux to kill this worker if the driver dies first (no orphaned runs)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _die_with_parent()
    if argv[0] == "--prepare":
        prepare(json.loads(argv[1]), Path(argv[2]))
        return 0
    spec_path, result_path = Path(argv[0]), Path(argv[1])
    spec = RunSpec.from_dict(json.loads(spec_path.read_text()))
    row = run(spec)
    tmp = result_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(row, default=str))
    os.replace(tmp, result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
