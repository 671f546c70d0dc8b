"""A publishable report directory: ``leaderboard.<suffix>`` from every registered
reporter, ``report.html`` (one self-contained page: tables and inline SVG plots) and
``report.md`` with its plots as SVG files beside it.

Modules: :mod:`.columns` (what each column is and how its cells read), :mod:`.summary`
(header, machines, methods, unfinished runs, footnotes), :mod:`.tables` (the curated
leaderboard), :mod:`.plots` (trade-off plots; matplotlib), :mod:`.html`, :mod:`.markdown`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from harness.result import RunResult


def write_leaderboards(frame: Any, out_dir: Path, plugins: Any) -> list[Path]:
    """``leaderboard.<suffix>`` in ``out_dir`` from each registered reporter."""
    written = []
    for name in plugins.names("reporter"):
        reporter = plugins.lookup("reporter", name)()
        path = out_dir / f"leaderboard.{reporter.suffix or name}"
        reporter.write(frame, path)
        written.append(path)
    return written


def _plots(groups: list[Any], with_suite: bool) -> dict[int, str]:
    """Each group's trade-off plot as SVG text, by the group's index; none (and a
    warning) without matplotlib."""
    from harness.report.plots import pareto_svg

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("harness report: matplotlib is not installed, so the report has no plots; "
              "pip install 'compression-harness[report]' for them", file=sys.stderr)
        return {}
    svgs = {}
    for i, group in enumerate(groups):
        svg = pareto_svg(group.frame, group.title(with_suite), salt=f"g{i}", gate=group.gate)
        if svg:
            svgs[i] = svg
    return svgs


def write_report(results: list[RunResult], out_dir: Path, plugins: Any) -> list[Path]:
    """Every registered reporter's leaderboard file, report.html, report.md and its
    plots (``plot-<model>-<task>.svg``), in ``out_dir``."""
    from harness.leaderboard import build_frame
    from harness.report import html, markdown, ship, summary
    from harness.report.plots import inline
    from harness.report.tables import groups as split

    out_dir.mkdir(parents=True, exist_ok=True)
    frame = build_frame(results)
    written = write_leaderboards(frame, out_dir, plugins)
    by_run = {r.run_id: r for r in results}
    header = summary.header(results)
    groups = split(frame, by_run)
    with_suite = len(header.suites) > 1
    svgs = _plots(groups, with_suite)
    svg_files = {}
    for i, svg in svgs.items():
        name = "plot-" + markdown.slug(groups[i].title(with_suite)) + ".svg"
        (out_dir / name).write_text(svg)
        svg_files[i] = name
        written.append(out_dir / name)
    errors = {r.run_id: r.first_error_line or "" for r in results}
    advice = [ship.advice(g.frame, g.title(with_suite), "g-" + markdown.slug(g.title(with_suite)), errors)
              for g in groups]
    method_rows = summary.method_rows(results, frame)
    infos = {(r.suite, r.model, r.method): [s.get("info") or {} for s in r.steps] for r in results}
    unfinished = summary.failures(results)
    notes = summary.footnotes(frame[frame["status"] == "ok"], by_run)
    inlined = {i: inline(svg) for i, svg in svgs.items()}
    page = html.page(header, advice, groups, inlined, method_rows, infos, unfinished, notes)
    (out_dir / "report.html").write_text(page)
    (out_dir / "report.md").write_text(markdown.document(header, advice, groups, svg_files, method_rows, unfinished,
                                                         notes))
    return written + [out_dir / "report.html", out_dir / "report.md"]
