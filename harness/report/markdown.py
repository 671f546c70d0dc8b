"""``report.md``: the same curated tables as the HTML report in GitHub-flavoured
Markdown, with the trade-off plots as SVG files beside it. Cells are escaped so that a
name cannot break a table or carry HTML."""

from __future__ import annotations

import re
from html import escape

from harness.report.schemes import CAPTION
from harness.report.ship import Advice
from harness.report.summary import Header, Machine, MethodRow, seconds
from harness.report.tables import Group
from harness.result import RunResult


def md(text: str) -> str:
    """``text`` safe in a Markdown table cell: HTML escaped, Markdown punctuation and
    pipes backslashed, on one line."""
    text = escape(str(text), quote=False).replace("\r", " ").replace("\n", " ")
    return re.sub(r"([\\`*_\[\]|])", r"\\\1", text)


def _table(head: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> list[str]:
    align = ["---:" if i in right else "---" for i in range(len(head))]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "plot"


def _group(group: Group, svg_file: str | None, with_suite: bool) -> list[str]:
    lines = [f"### {md(group.title(with_suite))}", ""]
    if not group.rows:
        return lines + ["No run of this model and task finished ok; see below.", ""]
    head = [md(group.table.header(c)) for c in group.columns]
    rows = [[md(c.text) + (md(c.mark) if c.mark else "") for c in row] for row in group.rows]
    right = {i for i, c in enumerate(group.columns) if c.kind != "text"}
    lines += _table(head, rows, right)
    if group.schemes is not None:
        lines += ["By scheme. " + md(CAPTION), ""]
        lines += _table(["scheme", *map(md, group.schemes.who)], [[md(s), *map(md, cells)] for s, cells in group.schemes.rows])
    if group.full is not None and len(group.full.columns) > len(group.columns):
        lines += [f"Every column ({len(group.full.columns)}): `leaderboard.csv`, `leaderboard.md`.", ""]
    if svg_file:
        lines += [f"![trade-off plots of {md(group.title(with_suite))}: quality against cost]({svg_file})", "",
                  "Orange: the Pareto frontier; ★ the baseline; ● holds quality, ■ inconclusive, ○ does not hold "
                  "(dotted line: baseline × gate); dashed ring: noisy or busy timing; ▼ at the edge: far worse "
                  "than the rest (its value in the SVG's hover text); bars: ± 1 standard error.", ""]
    return lines


def _ship(advice: list[Advice]) -> list[str]:
    lines = ["## What to ship", ""]
    for a in advice:
        lines += [f"**{md(a.title)}** ({md(a.baseline)}):", ""]
        lines += [f"- ship **{md(p.method)}**: {md(p.headline)}" for p in a.picks] or \
            ["- keep the baseline: no method holds quality and is faster or smaller"]
        if a.also:
            lines.append(f"- also holds: {md(', '.join(a.also))} (no faster or smaller than the above)")
        for label, items in (("inconclusive", a.inconclusive), ("loses quality", a.fails), ("did not run", a.not_run)):
            lines += [f"- {label}: **{md(m)}**" + (f": {md(why)}" if why else "") for m, why in items]
        lines.append("")
    return lines


def _methods(rows: list[MethodRow], with_suite: bool) -> list[str]:
    head = (["Suite"] if with_suite else []) + ["Model", "Method", "Steps", "What changed", "Kernels",
                                                "Library", "Compression time (s)", "Break-even (inferences)"]
    body = []
    for r in rows:
        body.append(([md(r.suite)] if with_suite else []) + [
            md(r.model), md(r.method), "<br>".join(md(s) for s in r.steps),
            "<br>".join(md(s) for s in r.changed), "<br>".join(md(s) for s in r.kernels),
            "<br>".join(md(s) for s in r.libraries), seconds(r.compress_s),
            "" if r.break_even is None else f"{r.break_even:,.0f}"])
    n = len(head)
    return _table(head, body, {n - 2, n - 1})


def _machines(machines: list[Machine]) -> list[str]:
    keys = [("cpu", "CPU"), ("cores", "Cores"), ("threads", "Torch threads"), ("gpu", "GPU"),
            ("driver", "Driver"), ("torch", "torch"), ("harness", "harness"), ("python", "Python"), ("runs", "Runs")]
    rows = [[md(str(getattr(m, k)) or ("none" if k == "gpu" else "")) for k, _ in keys] for m in machines]
    return _table([label for _, label in keys], rows)


def _unfinished(results: list[RunResult]) -> list[str]:
    if not results:
        return ["Every run finished ok.", ""]
    lines = []
    for r in results:
        summary = f"{escape(r.model)} · {escape(r.method)} · {escape(r.task)} — {escape(r.status)}: " \
                  f"{escape(r.first_error_line or 'no error recorded')}"
        lines += [f"<details><summary>{summary}</summary>", "", "<pre>" + escape(r.error or "") + "</pre>",
                  "</details>", ""]
    return lines


def document(header: Header, advice: list[Advice], groups: list[Group], svg_files: dict[int, str], method_rows: list[MethodRow],
             unfinished: list[RunResult], notes: list[tuple[str, str, str]]) -> str:
    """The whole report as Markdown; ``svg_files`` maps a group's index to its plot's file name."""
    with_suite = len(header.suites) > 1
    gate = " / ".join(f"{g:g}" for g in header.gates)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(header.counts.items()))
    lines = [f"# Compression benchmark: {md(', '.join(header.suites))}", "",
             f"Runs from {md(header.first)} to {md(header.last)} UTC · harness {md(', '.join(header.harness))}"
             f" · {md(counts)} runs. A method *holds quality* when, paired sample by sample with the "
             f"baseline, it keeps at least {md(gate)} × the baseline's primary metric of the task (the suite's "
             "`accuracy_gate`; lower-is-better metrics inverted) with 95 % confidence; *inconclusive* when "
             "the data cannot tell.", ""]
    lines += [f"- Machine: {md(m.line())} ({m.runs} runs)" for m in header.machines] + [""]
    lines += _ship(advice)
    lines += ["## Leaderboard", "",
              "Per model and task, the runs that finished ok, ranked: methods that hold quality first (then "
              "inconclusive, then those that do not), then by speedup. An empty cell was not measured; `*` estimated, `~` noisy timing, `!` timed on a busy "
              "machine (see Notes).", ""]
    for i, group in enumerate(groups):
        lines += _group(group, svg_files.get(i), with_suite)
    lines += ["## Methods: what each run did", ""] + _methods(method_rows, with_suite)
    lines += ["## Machines", ""] + _machines(header.machines)
    lines += ["## Runs that did not finish", ""] + _unfinished(unfinished)
    lines += ["## Notes", ""]
    lines += [f"- **{md(mark)}** {md(label)}: {md(text)}" for mark, label, text in notes]
    lines.append("- Every figure's provenance (measured or estimated, and how) is in `results.jsonl`.")
    return "\n".join(lines) + "\n"
