""""What to ship", per (suite, model, task), as plain data: the methods that hold
quality (the paired verdict, :mod:`harness.verdict`) and are on the speed/size frontier,
each with its trade-off against the baseline in one line; then what the data cannot
decide yet and why, what loses quality, and what did not run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.report.columns import BY_KEY, blank, number
from harness.spec import BASELINE

CAVEAT_WORDS = {"busy": "timed on a busy machine", "noisy": "noisy timing", "clocks": "GPU clock moved while timing"}


@dataclass
class Pick:
    method: str
    headline: str  # "3.75× smaller, 1.4× faster, quality holds: 97.59 % vs 97.59 %, p = 1.00"


@dataclass
class Advice:
    title: str
    anchor: str  # the id of the group's details in report.html
    baseline: str  # the baseline's quality, or why there is none
    picks: list[Pick] = field(default_factory=list)
    also: list[str] = field(default_factory=list)  # hold quality, but a pick is faster and smaller
    inconclusive: list[tuple[str, str]] = field(default_factory=list)  # (method, why)
    fails: list[tuple[str, str]] = field(default_factory=list)  # (method, its quality vs the baseline's)
    not_run: list[tuple[str, str]] = field(default_factory=list)  # (method, "skipped: first error line")


def quality_text(record: dict[str, Any]) -> str:
    """The primary metric as people read it: ``97.59 %`` for shares, three significant
    figures otherwise ('' when absent)."""
    value, metric = record.get("quality"), record.get("quality_metric")
    if blank(value):
        return ""
    column = BY_KEY.get(str(metric))
    if column is not None and column.kind in ("acc", "pct"):
        return f"{float(value) * 100:.2f} %"
    return number(float(value))


def p_text(p: Any) -> str:
    if blank(p):
        return ""
    return f"{p:.2f}" if p >= 0.1 else f"{p:.2g}" if p >= 0.001 else "< 0.001"


def _speed(record: dict[str, Any]) -> float | None:
    """Speed against the eager baseline (what one deploys without the method)."""
    for key in ("speedup_vs_eager", "speedup"):
        if not blank(record.get(key)):
            return float(record[key])
    return None


def _times(value: float | None, more: str, less: str, same: str, decimals: int) -> str:
    if value is None:
        return ""
    if 0.95 <= value <= 1.05:
        return same
    shown = value if value > 1 else 1 / value
    text = f"{shown:.{decimals}f}" if shown < 100 else f"{shown:,.0f}"
    return f"{text}× {more if value > 1 else less}"


def headline(record: dict[str, Any], base: dict[str, Any] | None) -> str:
    """'3.75× smaller, 1.4× faster, quality holds: 97.59 % vs 97.59 %, p = 1.00'."""
    speed = _speed(record)
    parts = [_times(None if blank(record.get("size_ratio")) else float(record["size_ratio"]),
                    "smaller", "larger", "same size", 2),
             _times(speed, "faster", "slower", "about as fast", 1) if speed is not None else "speed not compared"]
    caveat = CAVEAT_WORDS.get(record.get("timing_caveat") or "")
    if caveat and speed is not None:
        parts[1] += f" ({caveat})"
    quality = "quality holds"
    if base is not None and quality_text(base):
        quality += f": {quality_text(record)} vs {quality_text(base)}"
    if not blank(record.get("p_value")):
        quality += f", p = {p_text(record['p_value'])}"
    if "point estimate" in str(record.get("verdict") or ""):
        quality += " (point estimate only: no per-sample outcomes)"
    return ", ".join(p for p in parts if p) + ", " + quality


def _dominated(a: tuple[float, float], others: list[tuple[float, float]]) -> bool:
    return any(o[0] >= a[0] and o[1] >= a[1] and o != a for o in others)


def _inconclusive_why(record: dict[str, Any], base: dict[str, Any] | None) -> str:
    parts = []
    if base is not None and quality_text(record):
        parts.append(f"{quality_text(record)} vs {quality_text(base)}")
    lo, hi = record.get("retained_lo"), record.get("retained_hi")
    if not blank(lo) and not blank(hi):
        parts.append(f"kept {record['retained']:.3f} (90 % interval {lo:.3f}–{hi:.3f}) straddles the gate")
    elif record.get("verdict"):
        parts.append(str(record["verdict"]))
    if not blank(record.get("samples_needed")):
        parts.append(f"about {record['samples_needed']:,.0f} samples would decide")
    return "; ".join(parts)


def advice(frame: Any, title: str, anchor: str, errors: dict[str, str]) -> Advice:
    """What to ship for one (suite, model, task): ``frame`` is its rows of the
    leaderboard frame (every status); ``errors``: first error line by run id."""
    records = frame.to_dict("records")
    ok = [r for r in records if r["status"] == "ok"]
    base = next((r for r in ok if r["method"] == BASELINE), None)
    out = Advice(title, anchor, f"baseline {quality_text(base)}".strip() if base else
                 "no baseline finished: nothing to compare with")
    candidates = [r for r in ok if r["method"] != BASELINE]
    holding = [r for r in candidates if r.get("holds") == "yes"]
    # the frontier on (speed, size) among what holds, the baseline at (1, 1) included
    points = [(_speed(r) or 1.0, 1.0 if blank(r.get("size_ratio")) else float(r["size_ratio"])) for r in holding]
    for record, point in zip(holding, points):
        if not _dominated(point, points + [(1.0, 1.0)]) and point != (1.0, 1.0):
            out.picks.append(Pick(str(record["method"]), headline(record, base)))
        else:
            out.also.append(str(record["method"]))
    for record in candidates:
        if record.get("holds") == "inconclusive":
            out.inconclusive.append((str(record["method"]), _inconclusive_why(record, base)))
        elif record.get("holds") == "no":
            why = str(record.get("verdict") or "")
            vs = f"{quality_text(record)} vs {quality_text(base)}" if base is not None and quality_text(record) else ""
            out.fails.append((str(record["method"]), "; ".join(p for p in (vs, why) if p)))
    for record in records:
        if record["status"] != "ok":
            out.not_run.append((str(record["method"]),
                                f"{record['status']}: {errors.get(record['run_id'], '') or 'no error recorded'}"))
    return out
