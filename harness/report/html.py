"""``report.html``: one self-contained page (inline CSS and SVG, no scripts, nothing
fetched). Every name and text that came from a suite or a run is escaped here."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from harness.report.columns import Column
from harness.report.schemes import CAPTION
from harness.report.ship import Advice
from harness.report.summary import Header, Machine, MethodRow, seconds
from harness.report.tables import NARROW_HIDDEN, Group, Table
from harness.result import RunResult

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d232b;margin:0;background:#f6f7f9}
main{max-width:1340px;margin:0 auto;padding:16px 24px 48px;background:#fff;box-sizing:border-box}
h1{font-size:22px;margin:4px 0 2px}h2{font-size:19px;margin:28px 0 8px;border-bottom:1px solid #dde1e6;padding-bottom:4px}
h3{font-size:16px;margin:24px 0 6px}p,li{max-width:980px}.meta{color:#4a5563;margin:2px 0;font-size:13px}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}nav{margin:6px 0}nav a{margin-right:14px}
.ship{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,560px),1fr));gap:10px 18px;margin:8px 0}
.card{border:1px solid #d5dbe2;border-radius:6px;padding:6px 12px 8px;min-width:0}
.card h3{margin:2px 0 4px;font-size:15px}.card ul{margin:2px 0;padding-left:18px}.card li{margin:2px 0}
.card .base{color:#4a5563;font-size:12.5px;margin:0}.ok{color:#17692e}.warn{color:#8a5a00}.no{color:#a32020}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:13px;margin:6px 0 10px;font-variant-numeric:tabular-nums}
th{background:#eef1f5;font-weight:600;text-align:right;vertical-align:bottom;padding:4px 5px;border-bottom:2px solid #c9d0d8}
td{padding:3px 5px;border-bottom:1px solid #e6e9ee;text-align:right;white-space:nowrap}
td.name{white-space:normal;overflow-wrap:anywhere;min-width:7em;max-width:13em}
th.t,td.t{text-align:left}tbody tr:hover{background:#f3f7fc}
td.wrap{white-space:normal;min-width:6em;max-width:360px;overflow-wrap:anywhere}td .sub{color:#5b6573;font-size:12px}
td.good{color:#17692e;font-weight:600}td.bad{color:#a32020;font-weight:600}td.maybe{color:#8a5a00;font-weight:600}
td.free{white-space:normal;overflow-wrap:anywhere}
abbr{text-decoration:none;cursor:help}abbr sup{color:#a35a00;font-weight:700}
figure{margin:6px 0 4px}figcaption{color:#4a5563;font-size:12.5px}
details{margin:4px 0;border:1px solid #e1e5ea;border-radius:4px;padding:3px 8px}summary{cursor:pointer}
td details{border:0;padding:0;margin:0}
pre{white-space:pre-wrap;word-break:break-word;font-size:12px;background:#f6f8fa;padding:8px;max-height:360px;overflow:auto}
.status-failed,.status-timeout{color:#a32020;font-weight:600}.status-skipped{color:#8a6100;font-weight:600}
@media (max-width:900px){.narrow-hidden{display:none}main{padding:12px}}
"""


def _td(text: str, cls: str = "", title: str = "") -> str:
    attrs = (f' class="{cls}"' if cls else "") + (f' title="{escape(title)}"' if title else "")
    return f"<td{attrs}>{text}</td>"


def _header(h: Header) -> list[str]:
    suites = ", ".join(h.suites)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(h.counts.items()))
    parts = [f"<h1>Compression benchmark: {escape(suites)}</h1>",
             f"<p class=meta>Runs from {escape(h.first)} to {escape(h.last)} UTC · harness "
             f"{escape(', '.join(h.harness) or '?')} · {escape(counts)} runs</p>"]
    parts += [f"<p class=meta>Machine: {escape(m.line())} ({m.runs} runs)</p>" for m in h.machines]
    parts.append('<nav><a href="#ship">What to ship</a><a href="#leaderboard">Leaderboard</a>'
                 '<a href="#methods">Methods</a><a href="#machines">Machines</a>'
                 '<a href="#unfinished">Runs that did not finish</a><a href="#notes">Notes</a></nav>')
    return parts


def _items(label: str, cls: str, items: list[tuple[str, str]]) -> list[str]:
    return [f'<li><span class="{cls}">{label}</span> <b>{escape(m)}</b>' + (f": {escape(why)}" if why else "") + "</li>"
            for m, why in items]


def _ship(advice: list[Advice], gates: list[float]) -> list[str]:
    gate = " / ".join(f"{g:g}" for g in gates)
    parts = ['<h2 id="ship">What to ship</h2>',
             f"<p class=meta>Per model and task: the methods that <b>hold quality</b> — paired sample by sample "
             f"with the baseline, they keep at least {escape(gate)} × its primary metric with 95 % confidence (the "
             "suite's <code>accuracy_gate</code>; lower-is-better metrics inverted) — and that nothing else holding "
             'beats on both speed and size; then what the data cannot decide yet. How: '
             "<code>docs/verdicts.md</code>.</p>", '<div class="ship">']
    for a in advice:
        items = [f'<li><span class="ok">ship</span> <b>{escape(p.method)}</b>: {escape(p.headline)}</li>'
                 for p in a.picks]
        if not a.picks:
            items.append('<li><span class="warn">keep the baseline</span>: no method holds quality and is faster '
                         "or smaller</li>")
        if a.also:
            items.append(f'<li><span class="ok">also holds</span> {escape(", ".join(a.also))} '
                         "(no faster or smaller than the above)</li>")
        items += _items("inconclusive", "warn", a.inconclusive)
        items += _items("loses quality", "no", a.fails)
        items += _items("did not run", "no", a.not_run)
        parts.append(f'<section class="card"><h3>{escape(a.title)}</h3><p class="base">{escape(a.baseline)} · '
                     f'<a href="#{a.anchor}">details</a></p><ul>{"".join(items)}</ul></section>')
    return parts + ["</div>"]


def _table(table: Table, curated: bool) -> str:
    def hidden(column: Column) -> str:
        return " narrow-hidden" if curated and column.key in NARROW_HIDDEN else ""

    head = "".join(f'<th class="{"t" if c.kind == "text" else ""}{hidden(c)}" title="{escape(c.label)}">'
                   f"{escape(table.header(c) if curated else c.label)}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        cells = []
        for column, c in zip(table.columns, row):
            content = escape(c.text)
            if c.mark:
                content = f'<abbr title="{escape(c.title)}">{content}<sup>{escape(c.mark)}</sup></abbr>'
            cls = " ".join(filter(None, ["t name" if column.kind == "text" else "", c.flag, hidden(column).strip()]))
            cells.append(_td(content, cls))
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _group(group: Group, anchor: str, svg: str | None, with_suite: bool) -> list[str]:
    parts = [f'<h3 id="{anchor}">{escape(group.title(with_suite))}</h3>']
    if not group.rows:
        return parts + ['<p>No run of this model and task finished ok; see <a href="#unfinished">below</a>.</p>']
    parts.append(_table(group.table, curated=True))
    if group.schemes is not None:
        head = "".join(f'<th class="t">{escape(w)}</th>' for w in group.schemes.who)
        body = "".join("<tr>" + _td(escape(scheme), "t name") + "".join(_td("<br>".join(map(escape, c.split(" · "))), "t") for c in cells) + "</tr>"
                       for scheme, cells in group.schemes.rows)
        parts.append(f'<h4>By scheme</h4><p class="note">{escape(CAPTION)}</p><div class="scroll"><table><thead><tr>'
                     f'<th class="t">scheme</th>{head}</tr></thead><tbody>{body}</tbody></table></div>')
    if group.full is not None and len(group.full.columns) > len(group.columns):
        parts.append(f"<details><summary>All {len(group.full.columns)} columns (also in "
                     f"<code>leaderboard.csv</code>)</summary>{_table(group.full, curated=False)}</details>")
    if svg:
        parts.append(f"<figure>{svg}<figcaption>Quality against cost, a panel per cost figure that two or more "
                     "runs have. The orange line is the Pareto frontier (no other method is better on both axes); "
                     "★ the baseline; ● holds quality, ■ inconclusive, ○ does not hold (the dotted line is the "
                     "baseline × gate); a dashed ring: a timing that was noisy or taken on a busy machine; "
                     "▼ at the edge: far worse than the rest (its value on hover); bars: ± 1 standard error. "
                     "Only the frontier and the baseline are labelled: hover a point for its method."
                     "</figcaption></figure>")
    return parts


def _lines(items: list[str], cls: str = "") -> str:
    return "<br>".join(f'<span class="{cls}">{escape(i)}</span>' if cls else escape(i) for i in items)


def _kernels(items: list[str]) -> str:
    out = []
    for item in items:
        head, _, rest = item.partition(" ")
        out.append(f"<b>{escape(head)}</b>" + (f' <span class="sub">{escape(rest)}</span>' if rest else ""))
    return "<br>".join(out)


def _methods(rows: list[MethodRow], infos: dict[tuple, list[dict[str, Any]]], with_suite: bool) -> list[str]:
    head = ("<tr>" + ('<th class="t">Suite</th>' if with_suite else "") + '<th class="t">Model</th>'
            '<th class="t">Method</th><th class="t">Steps</th><th class="t">What changed</th>'
            '<th class="t">Kernels</th><th class="t">Library</th><th>Compression time (s)</th>'
            "<th>Break-even (inferences)</th></tr>")
    parts = ['<div class="scroll"><table><thead>', head, "</thead><tbody>"]
    for r in rows:
        info = json.dumps(infos.get((r.suite, r.model, r.method), []), indent=1, default=str)
        method = (f"{escape(r.method)}<details><summary class=sub>info</summary>"
                  f"<pre>{escape(info)}</pre></details>")
        cells = ([_td(escape(r.suite), "t")] if with_suite else []) + [
            _td(escape(r.model), "t"), _td(method, "t wrap"), _td(_lines(r.steps), "t wrap"),
            _td(_lines(r.changed), "t wrap"), _td(_kernels(r.kernels), "t wrap"),
            _td(_lines(r.libraries, "sub"), "t wrap"), _td(seconds(r.compress_s)),
            _td("" if r.break_even is None else f"{r.break_even:,.0f}")]
        parts.append("<tr>" + "".join(cells) + "</tr>")
    return parts + ["</tbody></table></div>"]


def _machines(machines: list[Machine]) -> list[str]:
    keys = [("cpu", "CPU"), ("cores", "Cores"), ("threads", "Torch threads"), ("gpu", "GPU"),
            ("driver", "Driver"), ("torch", "torch"), ("harness", "harness"), ("python", "Python"),
            ("os", "OS"), ("runs", "Runs")]
    parts = ['<div class="scroll"><table><thead><tr>' + "".join(f'<th class="t">{label}</th>' for _, label in keys)
             + "</tr></thead><tbody>"]
    for m in machines:
        cells = [_td(escape(str(getattr(m, k)) or ("none" if k == "gpu" else "")), "t free") for k, _ in keys]
        parts.append("<tr>" + "".join(cells) + "</tr>")
    return parts + ["</tbody></table></div>"]


def _unfinished(results: list[RunResult]) -> list[str]:
    if not results:
        return ["<p>Every run finished ok.</p>"]
    parts = []
    for r in results:
        summary = (f'{escape(r.model)} · {escape(r.method)} · {escape(r.task)} — '
                   f'<span class="status-{escape(r.status)}">{escape(r.status)}</span>: '
                   f"{escape(r.first_error_line or 'no error recorded')}")
        parts.append(f"<details><summary>{summary}</summary><pre>{escape(r.error or '')}</pre></details>")
    return parts


def page(header: Header, advice: list[Advice], groups: list[Group], svgs: dict[int, str], method_rows: list[MethodRow],
         infos: dict[tuple, list[dict[str, Any]]], unfinished: list[RunResult],
         notes: list[tuple[str, str, str]]) -> str:
    """The whole report as one HTML document."""
    with_suite = len(header.suites) > 1
    title = "Compression benchmark: " + ", ".join(header.suites)
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>"]
    parts += _header(header)
    parts += _ship(advice, header.gates)
    parts += ['<h2 id="leaderboard">Leaderboard</h2>',
              "<p>Per model and task, the runs that finished ok, ranked: methods that hold quality first, then "
              "inconclusive ones, then those that do not; within each by speed-up. Speed-up and “smaller” are "
              "against the baseline of the same model and task. An empty cell was not measured; a marked cell is "
              'explained on hover and under <a href="#notes">Notes</a>; a header\'s full name is on hover.</p>']
    for i, (group, a) in enumerate(zip(groups, advice)):
        parts += _group(group, a.anchor, svgs.get(i), with_suite)
    parts += ['<h2 id="methods">Methods: what each run did</h2>',
              "<p>From each run's <code>steps[].info</code>: layers touched, bits, realized sparsity, whether "
              "kernels are real or simulated, the library, and what compressing cost.</p>"]
    parts += _methods(method_rows, infos, with_suite)
    parts.append('<h2 id="machines">Machines</h2>')
    parts += _machines(header.machines)
    parts.append('<h2 id="unfinished">Runs that did not finish</h2>')
    parts += _unfinished(unfinished)
    parts.append('<h2 id="notes">Notes</h2><ul>')
    parts += [f"<li><b>{escape(mark)}</b> {escape(label)}: {escape(text)}</li>" for mark, label, text in notes]
    parts.append("<li>Every figure's provenance (measured or estimated, and how) is in "
                 "<code>results.jsonl</code> beside the results.</li></ul>")
    parts.append("</main></body></html>")
    return "\n".join(parts)
