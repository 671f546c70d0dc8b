"""What each CLI command does, as functions that return data (rendered by
:mod:`harness.display`). A user's mistake raises :class:`UsageError` or
:class:`~harness.suite.SuiteError`; nothing here prints except a bench's progress."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.plugins import PluginSet, load_plugins
from harness.result import RunResult
from harness.spec import RunSpec
from harness.suite import Suite, load_suite


@dataclass
class Plan:
    path: Path
    suite: Suite
    runs: list[RunSpec]
    todo: list[RunSpec]  # the runs still to run (all of them for ``validate``)


@dataclass
class MethodRow:
    name: str
    family: str
    needs: tuple[str, ...]
    params: str  # "name=default, ..."
    plugin: str
    description: str


@dataclass
class Leaderboard:
    directory: Path
    frame: Any  # pandas DataFrame
    written: list[Path]
    columns: list[Any] | None = None  # harness.report.columns.Column, as chosen with --columns


@dataclass
class Comparison:
    dir_a: Path
    dir_b: Path
    frame: Any
    unmatched: list[tuple[str, ...]]
    written: list[Path]
    env_diffs: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)  # (what, A, B)


def load(path: Path) -> tuple[PluginSet, Suite]:
    plugins = load_plugins()
    return plugins, load_suite(path, plugins)


def validate(path: Path) -> Plan:
    from harness.plan import build_plan

    plugins, suite = load(path)
    runs = build_plan(suite, plugins)
    return Plan(path, suite, runs, runs)


def bench_plan(plugins: PluginSet, suite: Suite, opts: Any) -> Plan:
    """What ``bench`` would run (``--dry-run``)."""
    from harness.bench import pending_runs

    runs, todo = pending_runs(suite, plugins, opts)
    return Plan(suite.path, suite, runs, todo)


def bench(plugins: PluginSet, suite: Suite, opts: Any, out: Any, progress: Any) -> list[RunResult]:
    """Run the suite's pending runs (progress goes to ``out``, through the log that
    ``progress`` makes: :func:`harness.bench.run_suite`); return their results."""
    from harness.bench import run_suite

    if opts.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    return run_suite(suite, plugins, opts, out, progress)


def methods() -> list[MethodRow]:
    plugins = load_plugins()
    rows = []
    for name in plugins.names("method"):
        cls = plugins.lookup("method", name)
        params = ", ".join(f"{f.name}={_default(f)}" for f in dataclasses.fields(cls.Params))
        rows.append(MethodRow(name, cls.family, cls.needs, params, plugins.get("method", name).plugin.name,
                              cls.description))
    return rows


def _default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        return repr(field.default)
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return repr(field.default_factory())  # type: ignore[misc]
    return "required"


def suite_dirs(directory: Path) -> list[Path]:
    """``directory`` itself when it is a suite's results directory (it has a
    results.jsonl), else its subdirectories that are (a results root)."""
    from harness.results import results_file

    if not directory.exists():
        raise UsageError(f"results directory {directory} does not exist")
    if not directory.is_dir():
        raise UsageError(f"{directory} is a file, not a results directory; pass results/ or results/<suite>")
    if results_file(directory).exists():
        return [directory]
    found = sorted(p for p in directory.iterdir() if p.is_dir() and results_file(p).is_file())
    if not found:
        raise UsageError(f"{directory} has no results.jsonl, nor any subdirectory with one: it is neither a "
                         "suite's results directory nor a results root; run 'harness bench SUITE.toml' first")
    return found


def read(directory: Path, suite: str | None = None) -> list[RunResult]:
    """The results of ``directory`` (a suite's results directory, or a results root: every
    suite in it), only those of ``suite`` when named; a UsageError when there are none."""
    from harness.results import read_results

    results = [r for d in suite_dirs(directory) for r in read_results(d)]
    if suite is not None:
        names = sorted({r.suite for r in results})
        results = [r for r in results if r.suite == suite]
        if not results and names:
            raise UsageError(f"no suite '{suite}' in {directory}; it has {', '.join(names)}")
    if not results:
        raise UsageError(f"no results in {directory}; run 'harness bench SUITE.toml' first")
    return results


def _output_file(flag: str, path: Path, example: str) -> None:
    """UsageError unless a table can be written to ``path`` (a new or existing file)."""
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a directory; pass a file path such as {path / example}")
    parent = path.parent
    if not parent.is_dir():
        why = "is not a directory" if parent.exists() else "does not exist"
        raise UsageError(f"{flag} {path}: {parent} {why}; create the directory or pass another path")
    if not os.access(parent, os.W_OK | os.X_OK) or path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path} is not writable; pass a path you can write to")


def _output_dir(flag: str, path: Path) -> None:
    """UsageError unless ``path`` is, or can be made, a writable directory."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = f"{path} is a file" if existing == path else f"{path}: {existing} is a file"
        raise UsageError(f"{flag} {what}, not a directory; pass a directory path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: {existing} is not writable; pass a directory you can write to")


@contextlib.contextmanager
def _writing(flag: str, path: Path) -> Iterator[None]:
    """Turn an OSError while writing ``path`` into a UsageError naming the flag."""
    try:
        yield
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot write there ({exc.strerror or exc}); "
                         "pass a path you can write to") from None


def leaderboard(directory: Path, csv: Path | None = None, markdown: Path | None = None,
                hide_estimated: bool = False, suite: str | None = None,
                columns: list[str] | None = None) -> Leaderboard:
    from harness.leaderboard import build_frame
    from harness.report.columns import resolve

    for flag, path, example in (("--csv", csv, "leaderboard.csv"), ("--markdown", markdown, "leaderboard.md")):
        if path:
            _output_file(flag, path, example)
    try:
        chosen = resolve(columns) if columns else None
    except ValueError as exc:
        raise UsageError(f"--columns: {exc}") from None
    frame = build_frame(read(directory, suite), hide_estimated=hide_estimated)
    written = []
    wanted = [(name, path) for name, path in (("csv", csv), ("markdown", markdown)) if path]
    plugins = load_plugins() if wanted else None
    for name, path in wanted:
        with _writing(f"--{name}", path):
            plugins.lookup("reporter", name)().write(frame, path)
        written.append(path)
    return Leaderboard(directory, frame, written, chosen)


def report(directory: Path, output: Path, suite: str | None = None) -> list[Path]:
    from harness.report import write_report

    _output_dir("-o", output)
    results = read(directory, suite)
    with _writing("-o", output):
        return write_report(results, output, load_plugins())


def compare(dir_a: Path, dir_b: Path, csv: Path | None = None, suite: str | None = None) -> Comparison:
    from harness.compare import compare_frames, env_differences

    if csv:
        _output_file("--csv", csv, "compare.csv")
    results_a, results_b = read(dir_a, suite), read(dir_b, suite)
    frame, unmatched = compare_frames(results_a, results_b)
    if csv:
        from harness.table_writers import CsvWriter

        with _writing("--csv", csv):
            CsvWriter().write(frame, csv)  # names neutralised for spreadsheets, as the leaderboard's
    return Comparison(dir_a, dir_b, frame, unmatched, [csv] if csv else [], env_differences(results_a, results_b))


def clean(directory: Path) -> list[tuple[Path, int]]:
    """Remove the artifacts (compressed models kept for reuse) of every suite in
    ``directory``; (suite directory, files removed) each. Results are kept."""
    from harness.artifacts import ArtifactStore
    from harness.results_store import ResultsStore

    out = []
    for suite_dir in suite_dirs(directory):
        with ResultsStore(suite_dir / "results.jsonl", min_free_bytes=0):  # not while a bench writes them
            out.append((suite_dir, ArtifactStore(suite_dir / "artifacts").clean()))
    return out
