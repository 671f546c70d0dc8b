"""What each CLI command does; errors for user mistakes are one sentence, exit 2."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from harness.display import console, leaderboard_table
from harness.plugins import load_registry
from harness.suite import SuiteError, load_suite

EXIT_USAGE = 2


def _err(message: str) -> int:
    console(stderr=True).print(f"[red]error:[/] {message}")
    return EXIT_USAGE


def _load(path: Path):
    registry = load_registry()
    try:
        suite = load_suite(path, registry)
    except SuiteError as exc:
        err = console(stderr=True)
        err.print(f"[red]error:[/] {len(exc.problems)} problem(s) in {exc.path}; nothing was run:")
        for problem in exc.problems:
            err.print(f"  {exc.path}: {problem}", markup=False)
        return registry, None
    err = console(stderr=True)
    for warning in suite.warnings:
        err.print(f"[yellow]warning:[/] {path}: {warning}", markup=False)
    return registry, suite


def cmd_validate(args: Any) -> int:
    from harness.plan import build_plan

    registry, suite = _load(args.suite)
    if suite is None:
        return EXIT_USAGE
    runs = build_plan(suite, registry)
    out = console()
    out.print(f"{args.suite}: valid. suite '{suite.config.name}': {len(suite.models)} model(s) × "
              f"{len(suite.methods) + 1} method(s) incl. baseline × {len(suite.tasks)} task(s) → {len(runs)} runs")
    for i, run in enumerate(runs, 1):
        chain = " → ".join(s["use"] + (f"({', '.join(f'{k}={v}' for k, v in s['params'].items())})" if s["params"] else "")
                           for s in run.steps)
        out.print(f"  {i:>3}. {run.run_id}  {run.model['name']} / {run.method} / {run.task['name']}  [dim]{chain}[/]",
                  markup=True, highlight=False)
    return 0


def cmd_bench(args: Any) -> int:
    from harness.bench import BenchOptions, UsageError, pending_runs, results_dir, run_suite

    registry, suite = _load(args.suite)
    if suite is None:
        return EXIT_USAGE
    if args.jobs < 1:
        return _err("--jobs must be at least 1")
    opts = BenchOptions(args.jobs, args.executor, args.force, args.only, args.dry_run, args.results)
    _terminate_like_interrupt()
    out = console()
    try:
        if args.dry_run:
            runs, todo = pending_runs(suite, registry, opts)
            out.print(f"dry run: {len(runs)} runs selected, {len(todo)} would run:")
            for run in todo:
                out.print(f"  {run.run_id}  {run.label}")
            return 0
        produced = run_suite(suite, registry, opts, out)
    except UsageError as exc:
        return _err(str(exc))
    directory = results_dir(suite, args.results)
    _show_leaderboard(directory, None, None, False)
    bad = [r for r in produced if r["status"] in ("failed", "timeout")]
    if bad:
        console(stderr=True).print(f"[red]{len(bad)} run(s) failed[/]; errors are in {directory}/results.jsonl "
                                   f"and worker output in {directory}/logs/")
        return 1
    return 0


def _terminate_like_interrupt() -> None:
    """SIGTERM (kill, a CI timeout) stops a suite like Ctrl-C: workers are killed, rows kept."""
    import signal

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _show_leaderboard(directory: Path, csv: Path | None, markdown: Path | None, hide_estimated: bool) -> int:
    from harness.leaderboard import build_frame
    from harness.results import read_results

    rows = read_results(directory)
    if not rows:
        return _err(f"no results in {directory}; run 'harness bench SUITE.toml' first")
    frame = build_frame(rows, hide_estimated=hide_estimated)
    console().print(leaderboard_table(frame, f"leaderboard: {directory}"))
    from harness.reporters import reporter

    registry = load_registry() if csv or markdown else None
    for name, path in (("csv", csv), ("markdown", markdown)):
        if path:
            reporter(registry, name)(frame, path)
            console().print(f"wrote {path}")
    return 0


def cmd_leaderboard(args: Any) -> int:
    if not args.results_dir.exists():
        return _err(f"results directory {args.results_dir} does not exist")
    return _show_leaderboard(args.results_dir, args.csv, args.markdown, args.hide_estimated)


def cmd_plugins(args: Any) -> int:
    from rich.table import Table

    registry = load_registry()
    table = Table(title="harness plugins", header_style="bold")
    for column in ("plugin", "distribution", "version", "status", "hooks", "provides"):
        table.add_column(column, overflow="fold")
    for p in registry.plugins:
        style = {"ok": "green", "broken": "red", "disabled": "yellow"}[p.status]
        status = f"[{style}]{p.status}[/]" + "".join(f"\n[red]{e}[/]" for e in p.errors)
        hooks = ", ".join(h.removeprefix("harness_") for h in p.hooks)
        table.add_row(p.name, p.dist, p.version, status, hooks, ", ".join(p.provides))
    console().print(table)
    return 1 if registry.broken() else 0


def cmd_methods(args: Any) -> int:
    from rich.table import Table

    registry = load_registry()
    table = Table(title="compression methods", header_style="bold")
    for column in ("method", "family", "needs", "params (default)", "plugin", "what it does"):
        table.add_column(column, overflow="fold")
    for name in registry.names("method"):
        entry = registry.get("method", name)
        cls = entry.obj
        params = ", ".join(f"{f.name}={_default(f)}" for f in dataclasses.fields(cls.Params))
        table.add_row(name, cls.family, ", ".join(cls.needs), params, entry.plugin.name, cls.description)
    console().print(table)
    return 0


def _default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        return repr(field.default)
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return repr(field.default_factory())  # type: ignore[misc]
    return "required"


def _rows(directory: Path) -> list[dict[str, Any]] | None:
    from harness.results import read_results

    rows = read_results(directory) if directory.exists() else []
    return rows or None


def cmd_report(args: Any) -> int:
    from harness.report import write_report

    rows = _rows(args.results_dir)
    if rows is None:
        return _err(f"no results in {args.results_dir}; run 'harness bench SUITE.toml' first")
    for path in write_report(rows, args.output, load_registry()):
        console().print(f"wrote {path}")
    return 0


def cmd_compare(args: Any) -> int:
    from rich.table import Table

    from harness.display import fmt
    from harness.report import COMPARED, compare_frames

    rows_a, rows_b = _rows(args.dir_a), _rows(args.dir_b)
    for directory, rows in ((args.dir_a, rows_a), (args.dir_b, rows_b)):
        if rows is None:
            return _err(f"no results in {directory}")
    frame, unmatched = compare_frames(rows_a, rows_b)
    table = Table(title=f"{args.dir_b} / {args.dir_a}", header_style="bold")
    for column in ["model", "task", "method"] + [f"{c} b/a" for c in COMPARED]:
        table.add_column(column, justify="left" if column in ("model", "task", "method") else "right")
    for record in frame.to_dict("records"):
        table.add_row(record["model"], record["task"], record["method"],
                      *(fmt(record[f"{c}_b/a"], ".3f") for c in COMPARED))
    console().print(table)
    if unmatched:
        console().print(f"{len(unmatched)} run(s) only in one of the two: "
                        + ", ".join("/".join(k) for k in unmatched[:10]))
    if args.csv:
        frame.to_csv(args.csv, index=False)
        console().print(f"wrote {args.csv}")
    return 0
