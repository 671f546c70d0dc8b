"""Does a compressed model keep the baseline's quality? A paired, non-inferiority
verdict on the task's primary metric.

The quantity is the share of quality **retained**: method / baseline when higher is
better, baseline / method when lower is better (:meth:`Metric.retained`), so that 1 is
equal and the suite's ``accuracy_gate`` (say 0.99) is the non-inferiority margin.

- Both runs' per-sample outcomes are paired sample by sample; a paired bootstrap
  (``RESAMPLES`` resamples of the samples, the same resample for both runs, seeded)
  gives the one-sided 95 % bounds of the retained ratio (the 5th and 95th percentiles).
- **holds** when the lower bound is at least the gate; **does not hold** when the upper
  bound is below it; otherwise **inconclusive**, with about how many samples would
  decide (the bound's distance shrinks as 1/√n).
- For 0/1 outcomes (accuracy, top-1 agreement) the exact McNemar test of "the two
  models are equally often right" is given beside it (``p``).
- A run whose model has weights initialised anew and trained by no step never holds;
  rows without stored outcomes (older results) get the point estimate's verdict, marked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from harness.metrics import Metric

RESAMPLES = 2000
SEED = 0
ALPHA = 0.05  # one-sided, each bound
CHUNK = 100  # resamples drawn at a time

HOLDS, FAILS, INCONCLUSIVE = "yes", "no", "inconclusive"


@dataclass(frozen=True)
class QualityVerdict:
    holds: str  # yes | no | inconclusive
    retained: float | None  # point estimate of the retained ratio
    lo: float | None = None  # one-sided 95 % bounds of the retained ratio
    hi: float | None = None
    p_mcnemar: float | None = None
    n: int | None = None
    n_needed: int | None = None  # inconclusive: about how many samples would decide
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def mcnemar_exact(base: list[float], method: list[float]) -> float:
    """Two-sided exact McNemar p-value of paired 0/1 outcomes (binomial on the
    discordant pairs); 1.0 when no pair differs."""
    b = sum(1 for x, y in zip(base, method) if x and not y)
    c = sum(1 for x, y in zip(base, method) if y and not x)
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def _binary(values: list[float]) -> bool:
    return all(v in (0.0, 1.0) for v in values)


def bootstrap_retained(metric: Metric, base: dict[str, Any], method: dict[str, Any],
                       resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, float]:
    """The (5th, 95th) percentiles of the retained ratio over paired bootstrap resamples."""
    import numpy as np

    xb = np.asarray(base["values"], dtype=float)
    xm = np.asarray(method["values"], dtype=float)
    n = len(xb)
    w = np.asarray(base["weights"], dtype=float) if base.get("weights") is not None else np.ones(n)
    wm = np.asarray(method["weights"], dtype=float) if method.get("weights") is not None else w
    rng = np.random.default_rng(seed)
    ratios = []
    for start in range(0, resamples, CHUNK):  # (rows × n) indices at a time: bounded memory
        rows = min(CHUNK, resamples - start)
        idx = rng.integers(0, n, size=(rows, n))

        def agg(values: Any, weights: Any, idx: Any = idx) -> Any:
            mean = (values * weights)[idx].sum(axis=1) / weights[idx].sum(axis=1)
            return np.exp(mean) if metric.aggregate == "exp_mean" else mean

        a, b = agg(xb, w), agg(xm, wm)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios.append(b / a if metric.higher_is_better else a / b)
    ratio = np.concatenate(ratios)
    ratio = ratio[np.isfinite(ratio)]
    if not len(ratio):
        return float("nan"), float("nan")
    return float(np.quantile(ratio, ALPHA)), float(np.quantile(ratio, 1 - ALPHA))


def judge_quality(metric: Metric, value: float | None, baseline: float | None, gate: float,
                  base_samples: dict[str, Any] | None = None, samples: dict[str, Any] | None = None,
                  untrained: bool = False) -> QualityVerdict:
    """The verdict of a run's primary metric ``value`` against the ``baseline``'s."""
    retained = metric.retained(value, baseline) if value is not None and baseline is not None else None
    if untrained:
        return QualityVerdict(FAILS, retained, why="weights initialised anew and trained by no step")
    if retained is None:
        return QualityVerdict("", None, why="no baseline figure to compare with")
    paired = (base_samples is not None and samples is not None
              and len(base_samples["values"]) == len(samples["values"])
              and base_samples.get("metric") == samples.get("metric") == metric.name)
    if not paired:
        why = "point estimate only: no per-sample outcomes stored for this pair" \
            if base_samples is None or samples is None else "point estimate only: the samples do not pair"
        return QualityVerdict(HOLDS if retained >= gate else FAILS, retained, why=why)
    n = len(samples["values"])
    lo, hi = bootstrap_retained(metric, base_samples, samples)
    p = mcnemar_exact(base_samples["values"], samples["values"]) \
        if _binary(base_samples["values"]) and _binary(samples["values"]) else None
    if lo != lo:
        return QualityVerdict(INCONCLUSIVE, retained, p_mcnemar=p, n=n, why="the bootstrap ratio is undefined")
    if lo >= gate:
        return QualityVerdict(HOLDS, retained, lo, hi, p, n)
    if hi < gate:
        return QualityVerdict(FAILS, retained, lo, hi, p, n)
    return QualityVerdict(INCONCLUSIVE, retained, lo, hi, p, n, _needed(n, retained, lo, hi, gate),
                          why=f"the 90 % interval {lo:.4f}–{hi:.4f} of the retained ratio contains the gate {gate}")


def _needed(n: int, retained: float, lo: float, hi: float, gate: float) -> int | None:
    """About how many samples would put the gate outside the interval, if the point
    estimate stayed where it is (the half-width shrinks as 1/√n)."""
    half, distance = (retained - lo, retained - gate) if retained >= gate else (hi - retained, gate - retained)
    if distance <= 0 or half <= 0:
        return None
    return math.ceil(n * (half / distance) ** 2)
