"""Terminal output (rich): renders what :mod:`harness.commands` returns — the
leaderboard, plans, plugin and method lists, comparisons, errors — and progress lines."""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.errors import EXIT_USAGE
from harness.plural import plural

STATUS_STYLE = {"ok": "green", "skipped": "yellow", "failed": "red", "timeout": "red"}


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    # Logs and CI are not terminals; give them room instead of folding every column.
    return Console(file=stream, width=None if stream.isatty() else 400, highlight=False)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _leaderboard_cells(frame: Any, columns: list[Any]) -> list[list[str]]:
    from harness.report.columns import cell, marker

    rows = []
    for record in frame.to_dict("records"):
        cells = []
        for column in columns:
            text = cell(column, record)
            cells.append(text + marker(column, record) if text else "")
        rows.append(cells)
    return rows


def fit_columns(columns: list[Any], rows: list[list[str]], width: int | None) -> list[Any]:
    """The columns that fit in ``width`` characters, by priority (all when None)."""
    if width is None:
        return columns
    need = {c.key: max([len(c.short)] + [len(r[i]) for r in rows]) + 3 for i, c in enumerate(columns)}
    kept, used = set(), 1
    for column in sorted(columns, key=lambda c: c.priority):
        if used + need[column.key] <= width:
            kept.add(column.key)
            used += need[column.key]
    return [c for c in columns if c.key in kept]


def leaderboard_table(frame: Any, title: str, width: int | None = None,
                      chosen: list[Any] | None = None) -> tuple[Table, list[str]]:
    """(the table, the notes under it). Columns with data, as many as fit in ``width``
    by priority, or exactly ``chosen``."""
    from harness.report.columns import COLUMNS, with_data

    available = [c for c in with_data(frame, COLUMNS) if c.key != "suite"]
    columns = chosen or available
    rows = _leaderboard_cells(frame, columns)
    shown = columns if chosen else fit_columns(columns, rows, width)
    table = Table(title=escape(title) or None, header_style="bold", show_lines=False)
    for column in shown:
        table.add_column(escape(column.short), justify="left" if column.kind == "text" else "right", no_wrap=True)
    index = [columns.index(c) for c in shown]
    previous = None
    for record, cells in zip(frame.to_dict("records"), rows):
        # each runtime and compile mode apart
        group = (record["suite"], record["model"], record["task"], record.get("runtime"), record.get("compile"))
        if previous is not None and group != previous:
            table.add_section()
        previous = group
        texts = [escape(cells[i]) for i in index]
        for j, column in enumerate(shown):
            if column.key == "status":
                texts[j] = f"[{STATUS_STYLE.get(record['status'], 'white')}]{texts[j]}[/]"
        table.add_row(*texts)
    notes = []
    dropped = [c.short for c in columns if c not in shown]
    if dropped:
        notes.append(f"(… {plural(len(dropped), 'more column')}: {', '.join(dropped)}; --wide shows all, --columns picks)")
    keys = "empty = not measured"
    if "holds" in frame.columns and frame["holds"].notna().any():
        keys += ("; holds = paired verdict on the task's primary metric at the gate (yes / no / inconclusive: "
                 "more samples needed; docs/verdicts.md)")
    if "untrained_weights" in frame.columns and (frame["untrained_weights"].fillna(0) > 0).any():
        from harness.report.columns import UNTRAINED

        keys += f"; {UNTRAINED[0]} {UNTRAINED[1]}"
    if frame["estimated"].astype(bool).any():
        keys += "; * estimated, not measured (see each row's provenance)"
    if (frame["timing_caveat"] == "noisy").any():
        keys += "; ~ noisy timing (the median's CI never narrowed to ci_target)"
    if (frame["timing_caveat"] == "busy").any():
        keys += "; ! timed while the machine was busy (load above its cores): compare with care"
    if (frame["timing_caveat"] == "clocks").any():
        keys += "; ^ the GPU's SM clock moved while timing: compare with care"
    return table, notes + [keys]


class ProgressLog:
    """One line per run start and end: run i of N (i in the order runs started, kept to its
    end), what runs, elapsed, time left."""

    def __init__(self, out: Console, total: int, jobs: int):
        self.out, self.total, self.jobs = out, total, max(1, jobs)
        self.started = self.done = 0
        self.numbers: dict[str, int] = {}  # run id -> its number
        self.t0 = time.monotonic()
        self.durations: list[float] = []

    @staticmethod
    def _clock(seconds: float) -> str:
        seconds = int(round(seconds))
        return f"{seconds // 60}:{seconds % 60:02d}"

    def start(self, run_id: str, label: str) -> None:
        self.started += 1
        self.numbers[run_id] = self.started
        self.out.print(f"[dim]\\[{self.started}/{self.total}][/] {escape(label)} …")

    def finish(self, run_id: str, label: str, status: str, duration: float, note: str = "") -> None:
        self.done += 1
        number = self.numbers.pop(run_id, self.done)
        self.durations.append(duration)
        elapsed = time.monotonic() - self.t0
        left = ""
        if self.done < self.total:
            mean = sum(self.durations) / len(self.durations)
            left = f", ~{self._clock(mean * (self.total - self.done) / self.jobs)} left"
        style = STATUS_STYLE.get(status, "white")
        extra = f" — {escape(note)}" if note else ""
        done = f"{self.done} done, " if self.jobs > 1 else ""  # runs end out of their numbers' order
        self.out.print(f"[dim]\\[{number}/{self.total}][/] {escape(label)} [{style}]{escape(status)}[/] in {duration:.1f}s"
                       f"{extra} [dim]({done}elapsed {self._clock(elapsed)}{left})[/]")


def error(message: str, code: int = EXIT_USAGE) -> int:
    """Print one ``error:`` line; return the exit code."""
    console(stderr=True).print(f"[red]error:[/] {escape(message)}")
    return code


def suite_problems(path: Any, problems: list[str]) -> int:
    err = console(stderr=True)
    err.print(f"[red]error:[/] {plural(len(problems), 'problem')} in {escape(str(path))}; nothing was run:")
    for problem in problems:
        err.print(f"  {path}: {problem}", markup=False)
    return EXIT_USAGE


def suite_warnings(path: Any, warnings: list[str]) -> None:
    for warning in warnings:
        console(stderr=True).print(f"[yellow]warning:[/] {escape(str(path))}: {escape(warning)}")


def plan(p: Any) -> None:
    """``harness validate``: the expanded plan, one line per run."""
    suite, out = p.suite, console()
    out.print(f"{p.path}: valid. suite '{suite.config.name}': {plural(len(suite.models), 'model')} × "
              f"{plural(len(suite.methods) + 1, 'method')} incl. baseline × {plural(len(suite.tasks), 'task')} → "
              f"{plural(len(p.runs), 'run')}",
              markup=False)
    for i, run in enumerate(p.runs, 1):
        chain = " → ".join(_step(step.to_dict()) for step in run.steps)
        out.print(f"  {i:>3}. {run.run_id}  {escape(run.model.name)} / {escape(run.method)} / "
                  f"{escape(run.task.name)}  [dim]{escape(chain)}[/]")


def _step(step: dict[str, Any]) -> str:
    params = step["params"]
    return step["use"] + (f"({', '.join(f'{k}={v}' for k, v in params.items())})" if params else "")


def dry_run(p: Any) -> None:
    out = console()
    out.print(f"dry run: {plural(len(p.runs), 'run')} selected, {len(p.todo)} would run:")
    for run in p.todo:
        out.print(f"  {run.run_id}  {run.label}", markup=False)


def _width(out: Console) -> int | None:
    """The width to fit a table in: the terminal's, or $COLUMNS when output is piped
    (None: no limit)."""
    if out.is_terminal:
        return out.width
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else None


def leaderboard(board: Any, wide: bool = False) -> None:
    """One table per suite, fitted to the terminal unless ``wide`` or columns were chosen."""
    out = console()
    width = None if wide else _width(out)
    suites = list(dict.fromkeys(board.frame["suite"]))
    for suite in suites:
        part = board.frame[board.frame["suite"] == suite]
        table, notes = leaderboard_table(part, "", width, getattr(board, "columns", None))
        if wide and out.width < (table_width := _measure(table)):
            out = Console(file=out.file, width=table_width, highlight=False)
        out.print(f"leaderboard of suite {suite} ({board.directory})", markup=False, soft_wrap=True)
        out.print(table)
        for note in notes:
            out.print("  " + note, markup=False, soft_wrap=True)
    written(board.written)


def _measure(table: Table) -> int:
    import io

    return Console(width=10_000, file=io.StringIO()).measure(table).maximum


def written(paths: list[Any], stderr: bool = False) -> None:
    for path in paths:
        console(stderr).print(f"wrote {path}", markup=False)


def plugins_table(plugins: Any, missing: dict[str, list[str]] | None = None) -> Table:
    """Every plugin; under its status its errors, and what it lacks (``missing``: per
    plugin, :func:`harness.requirements.plugin_problems`)."""
    table = Table(title="harness plugins", header_style="bold")
    for column in ("plugin", "distribution", "version", "status", "hooks", "provides"):
        table.add_column(column, overflow="fold")
    for p in plugins.plugins:
        style = {"ok": "green", "broken": "red", "disabled": "yellow"}[p.status]
        status = f"[{style}]{p.status}[/]" + "".join(f"\n[red]{escape(e)}[/]" for e in p.errors) \
            + "".join(f"\n[yellow]{escape(m)}[/]" for m in (missing or {}).get(p.name, []))
        hooks = ", ".join(h.removeprefix("harness_") for h in p.hooks)
        table.add_row(escape(p.name), escape(p.dist), escape(p.version), status, hooks, escape(", ".join(p.provides)))
    return table


def methods_table(rows: list[Any]) -> Table:
    table = Table(title="compression methods", header_style="bold")
    for column in ("method", "family", "needs", "params (default)", "plugin", "what it does"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(*(escape(str(c)) for c in (r.name, r.family, ", ".join(r.needs), r.params, r.plugin,
                                                  r.description)))
    return table
