"""The driver of ``harness bench``: plan, skip what is done, prepare models, execute,
store each result as it comes."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape

from harness.errors import UsageError
from harness.params import nearest
from harness.plan import build_plan, select, unresolved
from harness.plugins import PluginSet
from harness.plural import plural
from harness.process import private_runs_root
from harness.result import RunResult
from harness.results import finished_ids, read_results, results_file
from harness.results_store import ResultsStore
from harness.spec import RunSpec
from harness.suite import Suite
from harness.workers import Workers, prepare_timeout_s


@dataclass
class BenchOptions:
    jobs: int = 1
    executor: str = "local"
    force: bool = False
    only: str | None = None
    results_root: Path = Path("results")


def results_dir(suite: Suite, root: Path) -> Path:
    return Path(root) / suite.config.name


def pending_runs(suite: Suite, plugins: PluginSet, opts: BenchOptions) -> tuple[list[RunSpec], list[RunSpec]]:
    """(all selected runs, those still to run)."""
    runs = select(build_plan(suite, plugins), opts.only)
    if opts.only and not runs:
        raise UsageError(f"--only '{opts.only}' matches no run of suite '{suite.config.name}'; "
                         "match 'model/method/task' or any one of them, e.g. --only 'digits-mlp/*'")
    if opts.force:
        return runs, runs
    done = finished_ids(read_results(results_file(results_dir(suite, opts.results_root))))
    return runs, [r for r in runs if r.run_id not in done]


def changed_inputs(todo: list[RunSpec], path: Path) -> int:
    """How many runs to do have a finished row under the same (model, method, task) but
    another run id: what they were computed from changed."""
    stored = {(r.model, r.method, r.task) for r in read_results(path, warn=False) if r.finished}
    return sum(1 for r in todo if (r.model.name, r.method, r.task.name) in stored)


def make_executor(plugins: PluginSet, name: str, jobs: int) -> Any:
    if plugins.get("executor", name) is None:
        raise UsageError(f"unknown executor '{name}'{nearest(name, plugins.names('executor'))}")
    try:
        cls = plugins.lookup("executor", name)
    except ImportError as exc:
        raise UsageError(f"executor '{name}' cannot be used: {exc}; "
                         f"install its extra, e.g. pip install 'compression-harness[{name}]'") from None
    return cls(jobs=jobs)


PROGRESS = "prepare: "
IDLE_FIELDS = ("cpu_w", "ram_w", "gpu_w", "seconds", "provenance")  # measure.energy.IdlePower's  # a source's stderr lines with this prefix are shown to the user


def helpers_of(executor: Any) -> Workers:
    """The executor's :class:`Workers` (its fork server) where it has one, else fresh ones
    (cold: no server is started for two helper children)."""
    workers = getattr(executor, "workers", None)
    return workers if isinstance(workers, Workers) else Workers()


def prepare_models(runs: list[RunSpec], out: Any, workers: Workers) -> None:
    """Let each model's source do its one-time work (e.g. train a builtin model) once,
    in a child process (forked from the fork server where there is one), so that no run's
    timeout or timing includes it."""
    seen: dict[str, tuple[dict[str, Any], str]] = {}
    for run in runs:
        model = run.model.to_dict()
        seen.setdefault(json.dumps(model, sort_keys=True), (model, run.suite_dir))

    def progress(line: str) -> None:  # the source's progress lines show as they come
        if line.startswith(PROGRESS):
            out.print(line[len(PROGRESS):].rstrip(), markup=False, highlight=False)

    timeout_s = prepare_timeout_s()  # a mistyped value stops the bench before anything runs
    waited = workers.wait_ready()  # the models are prepared in children forked from it
    if waited >= 1:
        out.print(f"[dim]workers ready in {waited:.1f}s (torch and the suite's plugins imported once)[/]")
    t0 = time.monotonic()
    for model, suite_dir in seen.values():
        try:
            code, tail = workers.prepare(model, suite_dir, progress, timeout_s)
        except TimeoutError as exc:
            out.print(f"[yellow]{escape(str(exc))}[/]; its runs will report the error")
            continue
        if code != 0:
            out.print(f"[yellow]preparing model {escape(model['name'])} failed[/] "
                      f"({escape(tail[-1] if tail else 'no output')}); its runs will report the error")
    out.print(f"[dim]{plural(len(seen), 'model')} ready in {time.monotonic() - t0:.1f}s[/]")


def _last_json(lines: list[str]) -> dict[str, Any]:
    for line in reversed(lines):  # stdout and stderr come together: warnings may follow
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line")


def measure_idle_power(runs: list[RunSpec], out: Any, workers: Workers) -> None:
    """Measure the machine's idle power once per (device, country) of the runs that meter
    energy, in a child process that loads nothing of its own (forked from the fork server
    where there is one: its meters are set up there), or reuse one an earlier bench on
    this host measured at most ``idle_reuse_s`` ago; each run subtracts it for its energy
    above idle. A failure leaves that figure absent with the reason, nothing more."""
    measured: dict[tuple[str, str], dict[str, Any] | None] = {}
    for run in (r for r in runs if r.measure.energy):
        key = (run.device, run.measure.carbon_country)
        if key not in measured:
            measured[key] = _reused_idle(key, run.measure.idle_reuse_s, out) or _measure_idle(key, out, workers)
        run.placement.idle = measured[key]


def _idle_file(key: tuple[str, str]) -> Path | None:
    """Where this host's idle figure for ``key`` is kept: per device as the runs see it
    (``CUDA_VISIBLE_DEVICES`` too) and carbon country, in this user's private runs folder
    (None where there is none)."""
    root = private_runs_root()
    if root is None:
        return None
    ident = [socket.gethostname(), *key, os.environ.get("CUDA_VISIBLE_DEVICES")]
    return root / "idle" / f"{hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:16]}.json"


def _reused_idle(key: tuple[str, str], reuse_s: float, out: Any) -> dict[str, Any] | None:
    path = _idle_file(key) if reuse_s > 0 else None
    if path is None:
        return None
    try:
        kept = json.loads(path.read_text())
        age = time.time() - float(kept["measured_at"])
        idle = {name: kept["idle"][name] for name in IDLE_FIELDS}
        provenance = f"{idle['provenance']}; reused: measured {age:.0f} s before this bench (idle_reuse_s = {reuse_s:g})"
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not 0 <= age <= reuse_s:
        return None
    out.print(f"[dim]idle power on {escape(key[0])}: reused, measured {age:.0f} s ago[/]")
    return dict(idle, provenance=provenance)


def _remember_idle(key: tuple[str, str], idle: dict[str, Any]) -> None:
    """Keep a complete figure (every part measured) for a later bench with idle_reuse_s."""
    path = _idle_file(key)
    parts = ["cpu_w", "ram_w"] + (["gpu_w"] if key[0].startswith("cuda") else [])
    if path is None or any(idle.get(part) is None for part in parts):
        return
    with suppress(OSError):
        path.parent.mkdir(mode=0o700, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"measured_at": time.time(), "idle": idle}))
        os.replace(tmp, path)  # whole, or not at all


def _measure_idle(key: tuple[str, str], out: Any, workers: Workers) -> dict[str, Any] | None:
    code, tail = workers.call("harness.measure.idle", list(key))
    try:
        idle = _last_json(tail)
        out.print(f"[dim]idle power on {escape(key[0])}: measured over {idle['seconds']:.1f} s[/]")
    except (ValueError, KeyError):
        why = (tail or [f"exit status {code}, no output"])[-1]
        out.print(f"[yellow]measuring idle power failed[/] ({escape(why)}); energy above idle will be absent")
        return None
    _remember_idle(key, idle)
    return idle


def _import_tables() -> None:
    with suppress(Exception):  # the leaderboard says what is wrong, if anything is
        import pandas  # noqa: F401


def run_suite(suite: Suite, plugins: PluginSet, opts: BenchOptions, out: Any,
              progress: Callable[[Any, int, int], Any]) -> list[RunResult]:
    """Run what is pending; return this invocation's results. ``progress(out, runs, jobs)``
    makes the log told of each run's ``start`` and ``finish`` (the caller's renderer:
    :class:`harness.display.ProgressLog`)."""
    executor = make_executor(plugins, opts.executor, opts.jobs)
    path = results_file(results_dir(suite, opts.results_root))
    with ResultsStore(path) as store:  # locked, space checked: before anything runs
        runs, todo = pending_runs(suite, plugins, opts)
        out.print(f"suite [bold]{escape(suite.config.name)}[/]: {plural(len(runs), 'run')} planned, "
                  f"{len(runs) - len(todo)} already done, {len(todo)} to run → {escape(str(path))}")
        changed = changed_inputs(todo, path) if not opts.force else 0
        if changed:
            have = "has" if changed == 1 else "have"
            out.print(f"[dim]{changed} of these {have} a stored row made from other inputs (the contents of model "
                      "or data files, plugin code, versions or settings changed since): kept, and run again[/]")
        if not todo:
            return []
        tables = threading.Thread(target=_import_tables, name="import-pandas", daemon=True)
        tables.start()  # the leaderboard's pandas loads while the server starts, not after the runs
        executor.warm_up(todo)  # e.g. the fork server's imports, while models are prepared
        helpers = helpers_of(executor)
        if not executor.prepares_models:  # else it does, on the nodes its runs go to
            prepare_models(todo, out, helpers)
            if unresolved(todo):  # e.g. a hub model's commit: known now that it is downloaded
                runs, todo = pending_runs(suite, plugins, opts)
                if not todo:
                    return []
        tables.join()  # before the idle window, and before any run's timing
        if not executor.measures_idle:  # else it does, on each node its runs go to
            measure_idle_power(todo, out, helpers)
        if os.environ.get("HARNESS_ARTIFACTS", "on") != "off":  # compress once per (model, method)
            if opts.force:  # redo means redo: no compressed model or timing from before this bench
                from harness.artifacts import ArtifactStore

                ArtifactStore(store.path.parent / "artifacts").clean()
            for run in todo:
                run.placement.artifacts_dir = str(store.path.parent / "artifacts")
        return _execute(todo, plugins, executor, store, opts, out, progress(out, len(todo), opts.jobs))


def _execute(todo: list[RunSpec], plugins: PluginSet, executor: Any, store: ResultsStore, opts: BenchOptions,
             out: Any, progress: Any) -> list[RunResult]:
    produced: list[RunResult] = []

    def on_start(spec: RunSpec) -> None:
        progress.start(spec.run_id, spec.label)

    def on_result(spec: RunSpec, result: RunResult) -> None:
        store.append(result)
        produced.append(result)
        note = result.first_error_line if result.status != "ok" else ""
        progress.finish(spec.run_id, spec.label, result.status, result.duration_s, note)
        for plugin, exc in plugins.call_each("harness_result", result=result.to_row(samples=False)):
            out.print(f"[yellow]plugin '{escape(plugin)}' failed in harness_result:[/] {escape(str(exc))}")

    executor.run(todo, store.path.parent / "logs", on_start, on_result)
    return produced
