"""What each quality figure is: its name, label, unit, which way is better and how its
per-sample outcomes add up. One registry that the verdict, the leaderboard, the report
and compare read; a task kind adds its own metrics through ``TaskKind.metrics``.

A run's row carries the definition of its task's primary metric
(``metrics.quality_metric``), so results stay readable where the plugin that made them
is not installed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

AGGREGATES = ("mean", "exp_mean")


@dataclass(frozen=True)
class Metric:
    """A quality metric.

    ``aggregate`` says how per-sample outcomes make the figure: ``"mean"`` (the weighted
    mean of the values: accuracy from 0/1 correctness, agreement, cosine, bits per byte
    from per-window values weighted by bytes) or ``"exp_mean"`` (exp of the weighted
    mean: perplexity from per-window mean negative log-likelihood weighted by tokens).
    ``scale`` multiplies the value for display (0.97 shown as 97 with ``unit="%"``).
    """

    name: str
    label: str
    higher_is_better: bool = True
    unit: str = ""
    scale: float = 1.0
    aggregate: str = "mean"
    description: str = ""

    def __post_init__(self) -> None:
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"metric '{self.name}': aggregate must be one of {', '.join(AGGREGATES)}, "
                             f"got '{self.aggregate}'")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metric:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def retained(self, value: float, baseline: float) -> float | None:
        """How much of the baseline's quality ``value`` keeps, as a ratio where 1 is
        equal and more is better, whatever the metric's direction: value / baseline when
        higher is better, baseline / value when lower is better (None: undefined)."""
        if _bad(value) or _bad(baseline):
            return None
        if self.higher_is_better:
            return value / baseline if baseline > 0 else None
        return baseline / value if value > 0 else None

    def format(self, value: float) -> str:
        """The value as a reader sees it: '97.59 %', '12.3'."""
        shown = value * self.scale
        text = f"{shown:.2f}" if abs(shown) >= 1 or shown == 0 else f"{shown:.3g}"
        return f"{text} {self.unit}".rstrip() if self.unit == "%" else text


def _bad(value: Any) -> bool:
    return not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value)


def aggregate(how: str, values: Sequence[float], weights: Sequence[float] | None = None) -> float:
    """The figure that per-sample ``values`` (with ``weights``) make under ``how``."""
    if weights is None:
        mean = sum(values) / len(values)
    else:
        mean = sum(v * w for v, w in zip(values, weights)) / sum(weights)
    return math.exp(mean) if how == "exp_mean" else mean


BUILTIN = (
    Metric("accuracy", "accuracy", unit="%", scale=100, description="top-1 accuracy (share of correct predictions)"),
    Metric("macro_f1", "macro-F1", unit="%", scale=100, description="unweighted mean of per-class F1"),
    Metric("top1_agreement", "top-1 agreement", unit="%", scale=100,
           description="share of positions where the compressed model's top token equals the original's"),
    Metric("cosine_mean", "cosine", description="mean cosine similarity of the output vectors to the original's"),
    Metric("perplexity", "perplexity", higher_is_better=False, aggregate="exp_mean",
           description="exp of the mean negative log-likelihood per token"),
    Metric("bits_per_byte", "bits per byte", higher_is_better=False,
           description="negative log-likelihood in bits per UTF-8 byte of text"),
    Metric("kl_div_mean", "KL divergence", higher_is_better=False,
           description="mean KL divergence of the next-token distribution from the original's"),
    Metric("max_abs_diff", "max |Δ|", higher_is_better=False,
           description="largest absolute difference of any output value to the original's"),
)


class MetricRegistry:
    """Metric definitions by name: the built-ins, then those task kinds declare."""

    def __init__(self, metrics: Iterable[Metric] = BUILTIN):
        self._metrics: dict[str, Metric] = {}
        for metric in metrics:
            self.add(metric)

    def add(self, metric: Metric, owner: str = "") -> None:
        known = self._metrics.get(metric.name)
        if known is not None and known != metric:
            raise ValueError(f"metric '{metric.name}'{f' of {owner}' if owner else ''} is already defined "
                             f"differently ({known.label}, higher is better: {known.higher_is_better}); "
                             "give it another name")
        self._metrics[metric.name] = metric

    def get(self, name: str) -> Metric | None:
        return self._metrics.get(name)

    def __iter__(self):
        return iter(self._metrics.values())


REGISTRY = MetricRegistry()


# Rows written before tasks declared their primary metric: the first of these they have.
LEGACY_PRIMARY = ("accuracy", "perplexity", "top1_agreement", "cosine_mean")


def metric_of(row_metrics: dict[str, Any]) -> Metric | None:
    """The primary quality metric a result row declares (rows from before it was
    declared: the first of :data:`LEGACY_PRIMARY` they have; None: none)."""
    data = row_metrics.get("quality_metric")
    if isinstance(data, dict) and isinstance(data.get("name"), str):
        try:
            return Metric.from_dict(data)
        except (TypeError, ValueError):
            return None
    for name in LEGACY_PRIMARY:
        if isinstance(row_metrics.get(name), (int, float)):
            return REGISTRY.get(name)
    return None
