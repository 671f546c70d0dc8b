"""The driver of ``harness bench``: plan, skip what is done, execute, store, show."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.display import ProgressLog
from harness.plan import RunSpec, build_plan, select
from harness.plugins import Registry
from harness.results import append_result, finished_ids, read_results, results_file
from harness.suite import Suite


class UsageError(Exception):
    """A user mistake: one sentence, exit code 2."""


@dataclass
class BenchOptions:
    jobs: int = 1
    executor: str = "local"
    force: bool = False
    only: str | None = None
    dry_run: bool = False
    results_root: Path = Path("results")


def results_dir(suite: Suite, root: Path) -> Path:
    return Path(root) / suite.config.name


def pending_runs(suite: Suite, registry: Registry, opts: BenchOptions) -> tuple[list[RunSpec], list[RunSpec]]:
    """(all selected runs, those still to run)."""
    runs = select(build_plan(suite, registry), opts.only)
    if opts.only and not runs:
        raise UsageError(f"--only '{opts.only}' matches no run of suite '{suite.config.name}'; "
                         "match 'model/method/task' or any one of them, e.g. --only 'digits-mlp/*'")
    if opts.force:
        return runs, runs
    done = finished_ids(read_results(results_file(results_dir(suite, opts.results_root))))
    return runs, [r for r in runs if r.run_id not in done]


def make_executor(registry: Registry, name: str, jobs: int) -> Any:
    entry = registry.get("executor", name)
    if entry is None:
        from harness.params import nearest

        raise UsageError(f"unknown executor '{name}'{nearest(name, registry.names('executor'))}")
    module, _, attr = entry.obj.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        raise UsageError(f"executor '{name}' cannot be used: {exc}; install its extra, e.g. pip install 'harness[{name}]'") from None
    return cls(jobs=jobs)


PROGRESS = "prepare: "  # a source's stderr lines with this prefix are shown to the user


def prepare_models(runs: list[RunSpec], out: Any) -> None:
    """Let each model's source do its one-time work (e.g. train a builtin model) once,
    in a child process, so that no run's timeout or timing includes it."""
    seen: dict[str, dict[str, Any]] = {}
    for run in runs:
        seen.setdefault(json.dumps(run.model, sort_keys=True), run.model | {"_dir": run.suite_dir})
    t0 = time.monotonic()
    for model in seen.values():
        suite_dir = model.pop("_dir")
        # Popen, not run: the source's progress lines ("prepare: ...") show as they come.
        proc = subprocess.Popen([sys.executable, "-m", "harness.worker", "--prepare", json.dumps(model), suite_dir],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        tail: list[str] = []
        for line in proc.stderr:
            if line.startswith(PROGRESS):
                out.print(line[len(PROGRESS):].rstrip(), markup=False, highlight=False)
            tail = (tail + [line.rstrip()])[-5:]
        if proc.wait() != 0:
            out.print(f"[yellow]preparing model {model['name']} failed[/] ({tail[-1] if tail else 'no output'}); "
                      "its runs will report the error")
    out.print(f"[dim]{len(seen)} model(s) ready in {time.monotonic() - t0:.1f}s[/]")


def run_suite(suite: Suite, registry: Registry, opts: BenchOptions, out: Any) -> list[dict[str, Any]]:
    """Run what is pending; return this invocation's result rows."""
    runs, todo = pending_runs(suite, registry, opts)
    path = results_file(results_dir(suite, opts.results_root))
    out.print(f"suite [bold]{suite.config.name}[/]: {len(runs)} runs planned, "
              f"{len(runs) - len(todo)} already done, {len(todo)} to run → {path}")
    if not todo:
        return []
    executor = make_executor(registry, opts.executor, opts.jobs)
    prepare_models(todo, out)
    progress = ProgressLog(out, len(todo), opts.jobs)
    produced: list[dict[str, Any]] = []

    def on_start(spec: RunSpec) -> None:
        progress.start(spec.label)

    def on_result(spec: RunSpec, row: dict[str, Any]) -> None:
        append_result(path, row)
        produced.append(row)
        note = (row.get("error") or "").splitlines()[0] if row["status"] != "ok" else ""
        progress.finish(spec.label, row["status"], row.get("duration_s", 0.0), note)
        for impl in registry.pm.hook.harness_result.get_hookimpls():
            try:
                impl.function(result=row)
            except Exception as exc:  # a logger's bug must not lose the suite
                out.print(f"[yellow]plugin '{impl.plugin_name}' failed in harness_result: {exc}[/]")

    executor.run(todo, path.parent / "logs", on_start, on_result)
    return produced
