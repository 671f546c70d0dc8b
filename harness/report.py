"""A publishable report directory: ``leaderboard.<suffix>`` from every registered
reporter, and a self-contained ``report.html``."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from harness.leaderboard import build_frame, latest
from harness.result import RunResult


def _environments(results: list[RunResult]) -> list[dict[str, Any]]:
    seen: dict[tuple, dict[str, Any]] = {}
    for result in results:
        env = result.env
        key = (env.get("hostname"), env.get("cpu"), env.get("gpu"), env.get("torch"), env.get("harness"))
        seen.setdefault(key, env)
    return list(seen.values())


def write_leaderboards(frame: Any, out_dir: Path, plugins: Any) -> list[Path]:
    """``leaderboard.<suffix>`` in ``out_dir`` from each registered reporter."""
    written = []
    for name in plugins.names("reporter"):
        reporter = plugins.lookup("reporter", name)()
        path = out_dir / f"leaderboard.{reporter.suffix or name}"
        reporter.write(frame, path)
        written.append(path)
    return written


def write_report(results: list[RunResult], out_dir: Path, plugins: Any) -> list[Path]:
    """Every registered reporter's leaderboard file and report.html, in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = build_frame(results)
    written = write_leaderboards(frame, out_dir, plugins)
    shown = frame.drop(columns=["run_id", "suite"]).fillna("")
    parts = [
        "<!doctype html><meta charset='utf-8'><title>harness report</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#eee}</style>",
        "<h1>Compression benchmark</h1>",
        "<p>Empty cells were not measured. Figures marked in <code>estimated</code> are estimates, "
        "not measurements; see each run's provenance in results.jsonl.</p>",
        shown.to_html(index=False, float_format=lambda v: f"{v:.4g}", escape=True),
        "<h2>Methods: what each run did</h2><ul>",
    ]
    for result in latest(results):
        for step in result.steps:
            info = step.get("info")
            if info:
                parts.append(f"<li><b>{html.escape(result.model)} / {html.escape(result.method)}</b> "
                             f"{html.escape(step['use'])}: <code>{html.escape(str(info))[:600]}</code></li>")
    parts.append("</ul><h2>Machines</h2><ul>")
    for env in _environments(results):
        parts.append(f"<li><code>{html.escape(str(env))}</code></li>")
    parts.append("</ul>")
    path = out_dir / "report.html"
    path.write_text("\n".join(parts))
    return written + [path]
