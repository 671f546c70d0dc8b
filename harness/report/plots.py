"""Trade-off (Pareto) plots as SVG text: per (suite, model, task), quality against
latency, size, energy and throughput; the frontier drawn, the baseline marked, every
method labelled, runs that miss the accuracy gate hollow and grey. matplotlib (the
``report`` extra) is imported here only, and only when a report is written."""

from __future__ import annotations

import io
import math
import re
from html import escape
from typing import Any

from harness.report.columns import BY_KEY, QUALITY, blank, number
from harness.report.labels import declutter, right_half

# (frame column, axis label, lower is better, a timing: drawn apart when noisy or busy)
AXES = [
    ("latency_ms_p50", "latency p50 (ms) at the smallest batch", True, True),
    ("size_mb", "size (MB)", True, False),
    ("energy_j_per_1k", "energy (J / 1k inferences)", True, True),
    ("throughput_sps", "throughput (samples/s) at the largest batch", False, True),
]
# Okabe–Ito colours (safe for colour-blind readers); shapes and fills tell the same in grey.
HOLDS, MAYBE, MISSES, BASE, FRONTIER = "#0072B2", "#56B4E9", "#D55E00", "#111111", "#E69F00"
MARKERS = {"yes": "o", "inconclusive": "s", "no": "o"}


def quality_of(frame: Any) -> tuple[str, bool] | None:
    """(the quality figure these rows have — their primary metric where they name one —,
    higher is better), or None."""
    if "quality_metric" in frame.columns:
        from harness.metrics import REGISTRY

        names = frame["quality_metric"].dropna().unique()
        metric = REGISTRY.get(names[0]) if len(names) == 1 else None
        if metric is not None and metric.name in frame.columns and frame[metric.name].notna().any():
            return metric.name, metric.higher_is_better
    for key, higher in QUALITY:
        if key in frame.columns and frame[key].notna().any():
            return key, higher
    return None


def frontier(points: list[tuple[float, float]], x_lower: bool, y_higher: bool) -> list[tuple[float, float]]:
    """The points no other point beats on both axes, sorted by x (best x first)."""
    ordered = sorted(points, key=lambda p: (p[0] if x_lower else -p[0], -p[1] if y_higher else p[1]))
    best, out = None, []
    for x, y in ordered:
        if best is None or (y > best if y_higher else y < best):
            out.append((x, y))
            best = y
    return out


def _records(group: Any, quality: str) -> list[dict[str, Any]]:
    return [r for r in group.to_dict("records") if r["status"] == "ok" and not blank(r.get(quality))]


def _scale(y: float, quality: str) -> float:
    return y * 100 if BY_KEY[quality].kind in ("acc", "pct") else y


def focus(ys: list[float], base: float | None, higher: bool, percent: bool,
          spread: float = 0.0) -> tuple[float, float] | None:
    """Y limits that leave out far-off points (over 10 points, or 2×, worse than the
    baseline), so that the methods near the baseline stay apart; None if none is far.
    ``spread``: the largest error bar, kept inside."""
    if base is None or not ys:
        return None
    limit = (base - 10 if higher else base + 10) if percent else (base / 2 if higher else base * 2)
    near = [y for y in ys if (y >= limit if higher else y <= limit)]
    if len(near) == len(ys) or not near:
        return None
    lo, hi = min(near) - spread, max(near) + spread
    pad = (hi - lo) * 0.12 or abs(hi) * 0.02 or 0.5
    return lo - 2 * pad if higher else lo - pad, hi + pad if higher else hi + 2 * pad


def _log_axis(axis: Any) -> None:
    """A log axis with a labelled tick at 1, 2 and 5 × each power of ten: never a lone label."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1000 else f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _axis(ax: Any, records: list[dict[str, Any]], key: str, label: str, lower: bool, timed: bool,
          quality: str, higher: bool, gate: float | None, tips: dict[str, str]) -> None:
    from matplotlib.ticker import FuncFormatter

    pts = [r for r in records if not blank(r.get(key))]
    xs = [float(r[key]) for r in pts]
    ys = [_scale(float(r[quality]), quality) for r in pts]
    percent = BY_KEY[quality].kind in ("acc", "pct")
    if min(xs) > 0 and max(xs) / min(xs) > 8:
        ax.set_xscale("log")
        _log_axis(ax.xaxis)
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: number(v)))
    base = next((y for r, y in zip(pts, ys) if r["method"] == "baseline"), None)
    errors = [float(r["accuracy_stderr"]) * 100 for r in pts
              if quality == "accuracy" and not blank(r.get("accuracy_stderr"))]
    limits = focus(ys, base, higher, percent, max(errors, default=0.0))
    edge = None if limits is None else (limits[0] if higher else limits[1])
    shown = [y if edge is None or (y >= edge if higher else y <= edge) else edge for y in ys]
    front = set(frontier(list(zip(xs, ys)), lower, higher))
    # the frontier through the points in view: a clamped outlier does not bend it
    line = sorted((x, y) for x, y, s in zip(xs, ys, shown) if (x, y) in front and s == y)
    if len(line) > 1:
        fx, fy = zip(*line)
        ax.plot(fx, fy, drawstyle="steps-post" if lower else "steps-pre", color=FRONTIER, lw=1.6, zorder=1)
    for r, x, y, s in zip(pts, xs, ys, shown):
        stderr = r.get("accuracy_stderr") if quality == "accuracy" else None
        holds = r.get("holds") or "yes"
        is_base = r["method"] == "baseline"
        color = BASE if is_base else {"no": MISSES, "inconclusive": MAYBE}.get(holds, HOLDS)
        clipped = s != y
        caveat = timed and bool(r.get("timing_caveat"))
        if not blank(stderr) and not clipped:
            ax.errorbar(x, y, yerr=stderr * 100, fmt="none", ecolor=color, elinewidth=0.8, alpha=0.6, zorder=2)
        marker = "*" if is_base else ("v" if higher else "^") if clipped else MARKERS.get(holds, "o")
        dot = ax.scatter([x], [s], marker=marker, s=110 if is_base else 30, zorder=3, clip_on=False,
                         facecolors="white" if holds == "no" and not is_base else color, edgecolors=color,
                         linewidths=1.2, alpha=0.55 if caveat else 1.0)
        if caveat:  # a dashed ring: this timing was noisy or taken on a busy machine
            ax.scatter([x], [s], marker="o", s=150, facecolors="none", edgecolors="#555555", linewidths=0.9,
                       linestyles=(0, (2, 1.5)), zorder=3, clip_on=False)
        gid = f"pt{len(tips)}"
        dot.set_gid(gid)
        value = f"{y:.4g}" + (" %" if percent else "")
        tips[gid] = (f"{r['method']}: {BY_KEY[quality].label} {value}, {label.split(' (')[0]} {number(x)}"
                     + (f"; holds: {r.get('holds')}" if r.get("holds") and not is_base else "")
                     + (f"; timing {r['timing_caveat']}" if caveat else "") + ("; far off, drawn at the edge" if clipped else ""))
        if not (is_base or ((x, y) in front and not clipped)):
            continue  # labelled: the frontier and the baseline; the rest on hover
        left = right_half(x, xs, ax.get_xscale() == "log")  # label to the left, inside the panel
        note = ax.annotate(r["method"], (x, s), xytext=(-7 if left else 7, 0), textcoords="offset points",
                           fontsize=7.5, ha="right" if left else "left", va="center", color="#222222",
                           zorder=5 if is_base else 4, annotation_clip=False,
                           arrowprops={"arrowstyle": "-", "color": "#b0b0b0", "lw": 0.5, "shrinkA": 0, "shrinkB": 3})
        note.arrow_patch.set_visible(False)
        note.set_in_layout(False)
    if limits is not None:
        ax.set_ylim(*limits)
    if percent and ax.get_ylim()[1] > 100:
        ax.set_ylim(top=100.2)
    if gate is not None:
        ax.axhline(gate, color=MISSES, lw=0.8, ls=":", zorder=0)
    ax.set_xlabel(label + (" — lower is better" if lower else " — higher is better"), fontsize=8)
    ax.set_ylabel(BY_KEY[quality].label + ("" if higher else " — lower is better"), fontsize=8)
    ax.tick_params(labelsize=7.5)
    ax.grid(True, lw=0.3, alpha=0.5)


def _legend(fig: Any, timed: bool) -> None:
    from matplotlib.lines import Line2D

    def dot(marker: str, color: str, face: str, label: str, size: float = 6, ls: str = "") -> Any:
        return Line2D([], [], marker=marker, color=color, markerfacecolor=face, markeredgecolor=color,
                      markersize=size, linestyle=ls, label=label)

    handles = [dot("*", BASE, BASE, "baseline", 9), dot("o", HOLDS, HOLDS, "holds quality"),
               dot("s", MAYBE, MAYBE, "inconclusive"), dot("o", MISSES, "white", "does not hold"),
               Line2D([], [], color=FRONTIER, lw=1.6, label="Pareto frontier")]
    if timed:
        handles.append(Line2D([], [], marker="o", color="#555555", markerfacecolor="none", markersize=8,
                              linestyle="", markeredgewidth=0.9, label="noisy / busy timing (dashed ring)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=7.5, frameon=False)


def describe(records: list[dict[str, Any]], quality: str, title: str, axes: list[tuple]) -> str:
    """The plots in words (the SVG's title, for readers who cannot see it)."""
    base = next((r for r in records if r["method"] == "baseline"), None)
    holding = [r["method"] for r in records if r.get("holds") == "yes" and r["method"] != "baseline"]
    text = (f"{title}: {BY_KEY[quality].label} against {', '.join(a[1].split(' (')[0] for a in axes)}, "
            f"{len(records)} runs")
    if base is not None:
        text += f"; baseline {_scale(float(base[quality]), quality):.4g}"
    return text + (f"; holding quality: {', '.join(map(str, holding))}" if holding else "; no method holds quality")


def pareto_svg(group: Any, title: str, salt: str, gate: float | None = None) -> str | None:
    """One SVG (2×2 panels, those with data) for one (suite, model, task); None when
    no run has both a quality figure and a cost figure. ``gate``: the suite's
    accuracy_gate (drawn as a line at baseline accuracy × gate)."""
    found = quality_of(group)
    if found is None:
        return None
    quality, higher = found
    records = _records(group, quality)
    # a panel only where two or more runs have the figure: one point compares nothing
    axes = [a for a in AXES if a[0] in group.columns and sum(not blank(r.get(a[0])) for r in records) > 1]
    if not axes:
        return None
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    base = [r for r in records if r["method"] == "baseline"]
    line = None
    if quality == "accuracy" and base and gate is not None:
        line = _scale(float(base[0]["accuracy"]) * gate, quality)
    cols = 2 if len(axes) > 1 else 1
    rows = math.ceil(len(axes) / cols)
    tips: dict[str, str] = {}
    timed = any(a[3] for a in axes) and any(r.get("timing_caveat") for r in records)
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt, "font.size": 8,
                                 "font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans", "Arial"]}):
        fig = Figure(figsize=(6.3 * cols, 4.0 * rows + 0.5), layout="constrained")
        FigureCanvasAgg(fig)  # text extents for declutter; the SVG is written by savefig
        panels = fig.subplots(rows, cols, squeeze=False).ravel()
        for ax, (key, label, lower, is_timing) in zip(panels, axes):
            _axis(ax, records, key, label, lower, is_timing, quality, higher, line, tips)
        for ax in panels[len(axes):]:
            ax.set_visible(False)
        fig.suptitle(title, fontsize=10)
        _legend(fig, timed)
        fig.canvas.draw()
        for ax in panels[: len(axes)]:
            declutter(fig, ax)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    for gid, tip in tips.items():  # hover text: the method of each point
        svg = svg.replace(f'<g id="{gid}">', f"<g><title>{escape(tip)}</title>", 1)
    svg = re.sub(r"(<svg[^>]*>)", lambda m: m.group(1) + f"<title>{escape(describe(records, quality, title, axes))}"
                 "</title>", svg, count=1)
    return compact(svg)


def compact(svg: str) -> str:
    """The same picture in fewer bytes: coordinates to 0.01 pt, no ids on groups (nothing
    refers to them; they would repeat across the plots of one page)."""
    svg = re.sub(r'<g id="[^"]*">', "<g>", svg)
    return re.sub(r'( (?:d|x|y|x1|x2|y1|y2|transform|points)=")([^"]*)"',
                  lambda m: m.group(1) + re.sub(r"(\d+\.\d{2})\d+", r"\1", m.group(2)) + '"', svg)


def inline(svg: str) -> str:
    """The SVG without its XML prologue, scaled to its container, labelled for readers by
    its own title."""
    svg = svg[svg.index("<svg"):]
    found = re.search(r"<title>([^<]*)</title>", svg)
    label = found.group(1) if found else "trade-off plots"
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"',
                  lambda m: f'<svg{m.group(1)} role="img" aria-label="{label}" '
                            'style="width:100%;max-width:1300px;height:auto"', svg, count=1)
