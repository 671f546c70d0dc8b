"""Terminal output of ``harness compare``: B / A per figure with its interval, what is
significant or inconclusive, the between-run variation it was judged against, and how
the two environments differ."""

from __future__ import annotations

import math
from typing import Any

from rich.markup import escape
from rich.table import Table

from harness.display import _blank, _width, console, written
from harness.plural import plural

# (compared figure, terminal header), in the order they give way on a narrow terminal
COMPARED_SHORT = [("accuracy", "acc"), ("latency_ms_p50", "p50 ms"), ("throughput_sps", "samples/s"),
                  ("size_mb", "size MB"), ("energy_j_per_1k", "J/1k"), ("sparsity", "sparsity")]


def _ratio(record: dict[str, Any], name: str) -> str:
    ratio = record.get(f"{name}_b/a")
    if _blank(ratio):
        return ""
    text = f"{ratio:.3f}"
    lo, hi = record.get(f"{name}_b/a_lo"), record.get(f"{name}_b/a_hi")
    if not _blank(lo) and not _blank(hi) and (lo != hi or lo != ratio):
        text += f" ({lo:.3f}–{hi:.3f})"
    if str(record.get(f"{name}_why") or "").startswith("inconclusive"):
        return text + " ?"
    return text + (" †" if record.get(f"{name}_significant") is True else "")


def comparison(c: Any) -> None:
    from harness.compare import ENERGY_MARGIN, MIN_ROWS_FOR_SPREAD, TIMING_MARGIN

    out = console()
    records = c.frame.to_dict("records")
    keys = [k for k in ("suite", "model", "task", "method") if k in c.frame.columns]
    cells = [[str(r[k]) for k in keys] + [_ratio(r, name) for name, _ in COMPARED_SHORT] for r in records]
    headers = keys + [f"{short} B/A" for _, short in COMPARED_SHORT]
    need = [max([len(h)] + [len(row[i]) for row in cells]) + 3 for i, h in enumerate(headers)]
    width, used, shown = _width(out), 1 + sum(need[: len(keys)]), list(range(len(keys)))
    for i in range(len(keys), len(headers)):
        if any(row[i] for row in cells) and (width is None or used + need[i] <= width):
            shown.append(i)
            used += need[i]
    table = Table(title=escape(f"B / A: {c.dir_b} / {c.dir_a}"), header_style="bold")
    for i in shown:
        table.add_column(escape(headers[i]), justify="left" if i < len(keys) else "right", no_wrap=True)
    for row in cells:
        table.add_row(*(escape(row[i]) for i in shown))
    out.print(table)
    dropped = [headers[i] for i in range(len(keys), len(headers)) if i not in shown and any(r[i] for r in cells)]
    if dropped:
        out.print(f"  (… {plural(len(dropped), 'more column')}: {', '.join(dropped)}; the CSV has them all)", markup=False)
    out.print(f"  (lo–hi): the ratio's 95% interval; † significant: the intervals do not overlap, the change "
              f"exceeds the floor (timings {TIMING_MARGIN:.0%}, energy {ENERGY_MARGIN:.0%}, accuracy and size any "
              "change) and, for timings and energy, what between-run variation explains; ? inconclusive: "
              "a side was timed on a busy machine, noisy or with a moving GPU clock", markup=False, soft_wrap=True)
    for figure, spread in (c.frame.attrs.get("between_run") or {}).items():
        how = (f"measured from the {spread['rows']} rows' ratios" if spread["measured"]
               else f"assumed: fewer than {MIN_ROWS_FOR_SPREAD} rows to measure it")
        out.print(f"  between-run variation of {figure}: ±{math.expm1(spread['sd_log']):.1%} (1 SD, {how}); "
                  f"significant beyond ±{math.expm1(spread['z'] * spread['sd_log']):.1%}", markup=False, soft_wrap=True)
    busy = sum(1 for r in records for f in ("latency_ms_p50", "throughput_sps")
               if str(r.get(f"{f}_why") or "").startswith("inconclusive"))
    if busy:
        out.print(f"  {plural(busy, 'timing comparison')} inconclusive: see the CSV's *_why columns; rerun on a quiet machine",
                  markup=False)
    if c.env_diffs:
        out.print("environment differences (A → B):", markup=False)
        for what, a, b in c.env_diffs:
            out.print(f"  {what}: {a} → {b}", markup=False, soft_wrap=True)
    else:
        out.print("environment: the same torch, harness, GPU, driver, CPU and threads on both sides", markup=False)
    if c.unmatched:
        out.print(f"{plural(len(c.unmatched), 'run')} only in one of the two: " + ", ".join("/".join(k) for k in c.unmatched[:10]),
                  markup=False)
    written(c.written)
