"""Terminal output (rich): renders what :mod:`harness.commands` returns — the
leaderboard, plans, plugin and method lists, comparisons, errors — and progress lines."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.errors import EXIT_RESULTS_LOST, EXIT_USAGE

STATUS_STYLE = {"ok": "green", "skipped": "yellow", "failed": "red", "timeout": "red"}


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    # Logs and CI are not terminals; give them room instead of folding every column.
    return Console(file=stream, width=None if stream.isatty() else 400, highlight=False)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt(value: Any, spec: str = ".3g") -> str:
    if _blank(value):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return format(value, spec)
    return str(value)


# (column, header, format) of the on-screen leaderboard; the CSV has every column.
SCREEN = [
    ("rank", "#", ".0f"), ("model", "model", ""), ("task", "task", ""), ("method", "method", ""),
    ("status", "status", ""), ("accuracy", "acc % ± se", "acc"),
    ("accuracy_ratio", "acc ratio", ".4f"), ("latency_ms_p50", "p50 ms", ".3g"),
    ("latency_ms_p99", "p99 ms", ".3g"), ("throughput_sps", "samples/s", ".4g"),
    ("speedup", "speedup", ".2f"), ("size_mb", "size MB", ".3g"), ("size_ratio", "size ×", ".2f"),
    ("params", "params", ",.0f"), ("sparsity", "sparsity", ".3f"), ("peak_mem_mb", "peak MB", ".4g"),
    ("energy_j_per_1k", "J/1k", ".3g"), ("dynamic_energy_j_per_1k", "J/1k >idle", ".3g"),
    ("co2_g_per_1k", "gCO2e/1k", ".3g"),
    ("cost_usd_per_1m", "$/1M", ".3g"), ("compress_s", "compress s", ".3g"),
    ("holds_accuracy", "holds", ""),
    ("ttft_ms", "TTFT ms", ".3g"), ("decode_tokens_per_s", "decode tok/s", ".4g"),
    ("perplexity", "ppl", ".4g"), ("bits_per_byte", "bpb", ".3g"),
    ("top1_agreement", "top-1 agr", ".3f"), ("kl_div_mean", "KL", ".3g"),
]
ESTIMABLE = {"energy_j_per_1k", "dynamic_energy_j_per_1k", "co2_g_per_1k", "cost_usd_per_1m"}
TIMED = {"latency_ms_p50", "latency_ms_p99", "throughput_sps", "speedup"}
# Shown only when some row has them (task-specific figures).
OPTIONAL = {"break_even_inferences", "ttft_ms", "decode_tokens_per_s", "perplexity", "bits_per_byte", "top1_agreement", "kl_div_mean"}


def leaderboard_table(frame: Any, title: str) -> Table:
    table = Table(title=escape(title), header_style="bold", show_lines=False)
    screen = [c for c in SCREEN if c[0] not in OPTIONAL or frame[c[0]].notna().any()]
    for _, header, _ in screen:
        table.add_column(header, justify="left" if header in ("model", "task", "method", "status") else "right",
                         no_wrap=True)
    for record in frame.to_dict("records"):
        cells = []
        for column, _, spec in screen:
            value = record[column]
            if spec == "acc":
                stderr = record["accuracy_stderr"]
                text = "" if _blank(value) else f"{value * 100:.2f}" + ("" if _blank(stderr) else f" ± {stderr * 100:.2f}")
            else:
                text = escape(fmt(value, spec) if spec else fmt(value))
            if column == "status":
                text = f"[{STATUS_STYLE.get(value, 'white')}]{text}[/]"
            if column in ESTIMABLE and text and column in str(record.get("estimated")).split(","):
                text += "*"
            if column in TIMED and text and record.get("timing_caveat"):
                text += "~" if record["timing_caveat"] == "noisy" else "!"
            cells.append(text)
        table.add_row(*cells)
    notes = ["empty = not measured"]
    if frame["estimated"].astype(bool).any():
        notes.append("* estimated, not measured (see each row's provenance)")
    if (frame["timing_caveat"] == "noisy").any():
        notes.append("~ noisy timing (the median's CI never narrowed to ci_target)")
    if (frame["timing_caveat"] == "busy").any():
        notes.append("! timed while the machine was busy (load above its cores): compare with care")
    table.caption = "; ".join(notes)
    return table


class ProgressLog:
    """One line per run start and end: run i of N, what runs, elapsed, time left."""

    def __init__(self, out: Console, total: int, jobs: int):
        self.out, self.total, self.jobs = out, total, max(1, jobs)
        self.started = self.done = 0
        self.t0 = time.monotonic()
        self.durations: list[float] = []

    @staticmethod
    def _clock(seconds: float) -> str:
        seconds = int(round(seconds))
        return f"{seconds // 60}:{seconds % 60:02d}"

    def start(self, label: str) -> None:
        self.started += 1
        self.out.print(f"[dim]\\[{self.started}/{self.total}][/] {escape(label)} …")

    def finish(self, label: str, status: str, duration: float, note: str = "") -> None:
        self.done += 1
        self.durations.append(duration)
        elapsed = time.monotonic() - self.t0
        left = ""
        if self.done < self.total:
            mean = sum(self.durations) / len(self.durations)
            left = f", ~{self._clock(mean * (self.total - self.done) / self.jobs)} left"
        style = STATUS_STYLE.get(status, "white")
        extra = f" — {escape(note)}" if note else ""
        self.out.print(f"[dim]\\[{self.done}/{self.total}][/] {escape(label)} [{style}]{escape(status)}[/] in {duration:.1f}s"
                       f"{extra} [dim](elapsed {self._clock(elapsed)}{left})[/]")


def usage_error(message: str) -> int:
    console(stderr=True).print(f"[red]error:[/] {escape(message)}")
    return EXIT_USAGE


def results_lost(message: str) -> int:
    console(stderr=True).print(f"[red]error:[/] {escape(message)}")
    return EXIT_RESULTS_LOST


def suite_problems(path: Any, problems: list[str]) -> int:
    err = console(stderr=True)
    err.print(f"[red]error:[/] {len(problems)} problem(s) in {escape(str(path))}; nothing was run:")
    for problem in problems:
        err.print(f"  {path}: {problem}", markup=False)
    return EXIT_USAGE


def suite_warnings(path: Any, warnings: list[str]) -> None:
    for warning in warnings:
        console(stderr=True).print(f"[yellow]warning:[/] {escape(str(path))}: {escape(warning)}")


def plan(p: Any) -> None:
    """``harness validate``: the expanded plan, one line per run."""
    suite, out = p.suite, console()
    out.print(f"{p.path}: valid. suite '{suite.config.name}': {len(suite.models)} model(s) × "
              f"{len(suite.methods) + 1} method(s) incl. baseline × {len(suite.tasks)} task(s) → {len(p.runs)} runs",
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
    out.print(f"dry run: {len(p.runs)} runs selected, {len(p.todo)} would run:")
    for run in p.todo:
        out.print(f"  {run.run_id}  {run.label}", markup=False)


def leaderboard(board: Any) -> None:
    console().print(leaderboard_table(board.frame, f"leaderboard: {board.directory}"))
    written(board.written)


def written(paths: list[Any]) -> None:
    for path in paths:
        console().print(f"wrote {path}", markup=False)


def plugins_table(plugins: Any) -> Table:
    table = Table(title="harness plugins", header_style="bold")
    for column in ("plugin", "distribution", "version", "status", "hooks", "provides"):
        table.add_column(column, overflow="fold")
    for p in plugins.plugins:
        style = {"ok": "green", "broken": "red", "disabled": "yellow"}[p.status]
        status = f"[{style}]{p.status}[/]" + "".join(f"\n[red]{escape(e)}[/]" for e in p.errors)
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


def comparison(c: Any) -> None:
    from harness.compare import COMPARED

    table = Table(title=escape(f"{c.dir_b} / {c.dir_a}"), header_style="bold")
    for column in ["model", "task", "method"] + [f"{name} b/a" for name in COMPARED]:
        table.add_column(column, justify="left" if column in ("model", "task", "method") else "right")
    for record in c.frame.to_dict("records"):
        table.add_row(escape(record["model"]), escape(record["task"]), escape(record["method"]),
                      *(fmt(record[f"{name}_b/a"], ".3f") for name in COMPARED))
    out = console()
    out.print(table)
    if c.unmatched:
        out.print(f"{len(c.unmatched)} run(s) only in one of the two: " + ", ".join("/".join(k) for k in c.unmatched[:10]),
                  markup=False)
    written(c.written)
