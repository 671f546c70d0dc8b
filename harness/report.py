"""Publishable outputs: a report directory, and a side-by-side comparison of two."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from harness.leaderboard import build_frame, latest_rows
from harness.reporters import SUFFIX, reporter

KEY = ["model", "task", "method"]
COMPARED = ["accuracy", "latency_ms_p50", "throughput_sps", "size_mb", "sparsity", "energy_j_per_1k"]


def _environments(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        env = row.get("env") or {}
        key = (env.get("hostname"), env.get("cpu"), env.get("gpu"), env.get("torch"), env.get("harness"))
        seen.setdefault(key, env)
    return list(seen.values())


def write_report(rows: list[dict[str, Any]], out_dir: Path, registry: Any) -> list[Path]:
    """``leaderboard.<suffix>`` from every registered reporter (csv, md, and those of
    plugins) and a self-contained report.html, in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = build_frame(rows)
    written = []
    for name in registry.names("reporter"):
        path = out_dir / f"leaderboard.{SUFFIX.get(name, name)}"
        reporter(registry, name)(frame, path)
        written.append(path)
    written.append(out_dir / "report.html")
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
    for row in latest_rows(rows):
        for step in row.get("steps") or []:
            info = step.get("info")
            if info:
                parts.append(f"<li><b>{html.escape(row['model'])} / {html.escape(row['method'])}</b> "
                             f"{html.escape(step['use'])}: <code>{html.escape(str(info))[:600]}</code></li>")
    parts.append("</ul><h2>Machines</h2><ul>")
    for env in _environments(rows):
        parts.append(f"<li><code>{html.escape(str(env))}</code></li>")
    parts.append("</ul>")
    written[-1].write_text("\n".join(parts))
    return written


def compare_frames(rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]]):
    """One row per (model, task, method) present in both, with B / A ratios."""
    a = build_frame(rows_a).set_index(KEY)
    b = build_frame(rows_b).set_index(KEY)
    both = a.index.intersection(b.index)
    out = a.loc[both, []].copy()
    for column in COMPARED:
        out[f"{column}_a"] = a.loc[both, column]
        out[f"{column}_b"] = b.loc[both, column]
        out[f"{column}_b/a"] = b.loc[both, column] / a.loc[both, column]
    return out.reset_index(), sorted(set(a.index) ^ set(b.index))
