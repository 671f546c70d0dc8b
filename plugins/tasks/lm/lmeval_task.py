"""The ``lm-eval`` task: any EleutherAI lm-evaluation-harness task, on the model in memory.

The (compressed) model and its tokenizer object are wrapped in lm-eval's ``HFLM`` as they
are: nothing is re-loaded from disk or the hub. lm-eval's own default seeds are used, so a
figure equals what ``lm_eval.simple_evaluate`` reports for the same model and task.

The primary metric is lm-eval's own (the task's first metric, or ``metric``), named as the
harness reports it (``acc``, ``acc_norm``, ``exact_match_strip``) with lm-eval's direction;
its per-sample outcomes are the per-document values lm-eval logs (``log_samples``), in
document order, when they make the reported figure (mean aggregations, perplexities and
bits per byte); corpus-level metrics (BLEU, F1 over the corpus) have none.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.api import Metric, Outcomes, TaskKind, aggregate
from harness_plugins.tasks.lm.text_task import TextKeys, TextTask, missing_file, suite_path


@dataclass(frozen=True, kw_only=True)
class LMEvalConfig(TextKeys):
    task: str  # an lm-eval task (or group) name, e.g. "hellaswag"
    include_path: str | None = None  # a directory of task YAML, relative to the suite file
    num_fewshot: int | None = None
    limit: float | None = None  # documents per task: a count (>= 1) or a share (< 1)
    batch_size: int = 8
    metric: str | None = None  # the metric reported as accuracy; default: the task's first
    max_length: int | None = None  # context length; default: from the model config
    bootstrap_iters: int = 100000  # lm-eval's stderr bootstraps (non-mean metrics)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_fewshot is not None and self.num_fewshot < 0:
            raise ValueError("num_fewshot must be >= 0")
        if self.limit is not None and self.limit <= 0:
            raise ValueError("limit must be > 0: a count of documents or a share below 1")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")


def flatten_metrics(task_results: dict[str, Any]) -> dict[str, float]:
    """lm-eval's ``{"acc,none": .5, "acc_stderr,none": .1}`` as ``{"acc": .5, "acc_stderr": .1}``;
    a filter other than ``none`` is kept as a suffix (``exact_match_strict-match``)."""
    out = {}
    for key, value in task_results.items():
        if "," not in key or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue  # alias, sample counts, "N/A" stderrs
        name, filter_name = key.split(",", 1)
        out[name if filter_name == "none" else f"{name}_{filter_name}"] = float(value)
    return out


def primary_metric(config: dict[str, Any], metrics: dict[str, float], wanted: str | None) -> tuple[str, str] | None:
    """(result key, metric name) to report as ``accuracy``: ``wanted``, or the first metric of
    the task's metric list (under its first filter)."""
    if wanted is not None:
        if wanted not in metrics:
            raise ValueError(f"metric '{wanted}' is not among the task's metrics: {', '.join(metrics)}")
        return wanted, wanted
    names = [e.get("metric") for e in config.get("metric_list") or [] if isinstance(e, dict)]
    for name in (n for n in names if isinstance(n, str)):
        if name in metrics:
            return name, name
        filtered = [m for m in metrics if m.startswith(name + "_") and "stderr" not in m]
        if filtered:
            return filtered[0], name
    return None


def _flat_name(metric: str, filter_name: str) -> str:
    return metric if filter_name == "none" else f"{metric}_{filter_name}"


def _candidates(raw: list[Any]) -> list[tuple[str, list[float], list[float] | None]]:
    """(aggregate, values, weights) that lm-eval's per-document values may make the figure
    with: a mean of numbers, exp(-mean) of log-likelihoods (``perplexity``), and for
    (log-likelihood, length) pairs exp(-Σll/Σlength) (``weighted_perplexity``) and
    -Σll/Σlength/ln 2 (``bits_per_byte``)."""
    if all(isinstance(v, (int, float)) for v in raw):
        values = [float(v) for v in raw]
        return [("mean", values, None), ("exp_mean", [-v for v in values], None)]
    pairs = all(isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v)
                and v[1] > 0 for v in raw)
    if not pairs:
        return []
    per_unit, lengths = [-float(ll) / float(n) for ll, n in raw], [float(n) for _, n in raw]
    return [("exp_mean", per_unit, lengths), ("mean", [v / math.log(2) for v in per_unit], lengths)]


def primary_outcomes(samples: dict[str, list[dict[str, Any]]], key: str, figure: float,
                     higher: dict[str, Any]) -> tuple[Outcomes | None, str]:
    """The per-document outcomes of the reported metric ``key`` (a flattened name) from
    lm-eval's logged samples (subtasks by name, documents by id), in the direction
    ``higher`` (lm-eval's ``higher_is_better`` of the task) gives its metric, and how they
    were had; (None, why) when no aggregation of them makes ``figure``."""
    raw, name = [], key
    for task in sorted(samples):
        for sample in sorted(samples[task], key=lambda s: s.get("doc_id", 0)):
            names = [m for m in sample.get("metrics") or [] if _flat_name(m, sample.get("filter", "none")) == key]
            if names and names[0] in sample:
                raw.append(sample[names[0]])
                name = names[0]
    if not raw:
        return None, f"lm-eval logged no per-document '{key}'"
    higher_is_better = higher.get(name) is not False
    for how, values, weights in _candidates(raw):
        if math.isclose(aggregate(how, values, weights), figure, rel_tol=1e-9, abs_tol=1e-12):
            share = how == "mean" and higher_is_better and all(0.0 <= v <= 1.0 for v in values)
            metric = Metric(key, key, higher_is_better=higher_is_better, unit="%" if share else "",
                            scale=100 if share else 1.0, aggregate=how, description=f"lm-eval's {key}")
            return Outcomes(metric, values, weights), f"{len(values)} documents' {key} from lm-eval's logged samples"
    return None, f"no mean of lm-eval's per-document '{key}' makes its figure (a corpus-level metric)"


def samples_hash(samples: list[dict[str, Any]]) -> str:
    """A hash of the documents, prompts and targets evaluated (as lm-eval's tracker makes it)."""
    h = hashlib.sha256()
    for s in samples:
        h.update(f"{s.get('doc_hash')}{s.get('prompt_hash')}{s.get('target_hash')}".encode())
    return h.hexdigest()


def task_manager(include: str | None, task: str) -> Any:
    """lm-eval's task index; only the local directory when it holds ``task``, since indexing
    lm-eval's thousands of builtin tasks takes many seconds."""
    from lm_eval.tasks import TaskManager

    if include is not None:
        local = TaskManager(include_path=include, include_defaults=False)
        if task in local.all_tasks:
            return local
    return TaskManager(include_path=include)


class LMEvalData(TextTask):
    def __init__(self, config: LMEvalConfig, ctx: Any):
        super().__init__(config, ctx)
        self.config = config
        self.include = str(suite_path(config.include_path, ctx.suite_dir)) if config.include_path else None

    def evaluate(self, model: Any) -> dict[str, Any]:
        import lm_eval
        from lm_eval.models.huggingface import HFLM

        c = self.config
        lm = HFLM(pretrained=model, tokenizer=self.tokenizer, batch_size=c.batch_size,
                  max_length=c.max_length)
        limit = int(c.limit) if c.limit is not None and c.limit >= 1 else c.limit
        out = lm_eval.simple_evaluate(
            model=lm, tasks=[c.task], num_fewshot=c.num_fewshot, limit=limit,
            task_manager=task_manager(self.include, c.task), bootstrap_iters=c.bootstrap_iters,
            log_samples=True)
        task_results = (out.get("results") or {}).get(c.task) or (out.get("groups") or {}).get(c.task)
        if task_results is None:
            raise ValueError(f"lm-eval returned no results for task '{c.task}'")
        metrics: dict[str, Any] = flatten_metrics(task_results)
        configs = out.get("configs") or {}
        primary = primary_metric(configs.get(c.task, {}), metrics, c.metric)
        higher = (out.get("higher_is_better") or {}).get(c.task, {})
        if primary is not None and higher.get(primary[1]) is not False and 0.0 <= metrics[primary[0]] <= 1.0:
            key, name = primary  # an accuracy-like figure: fills the leaderboard's accuracy columns
            metrics["accuracy"] = metrics[key]
            stderr = key.replace(name, f"{name}_stderr", 1)
            if stderr in metrics:
                metrics["accuracy_stderr"] = metrics[stderr]
        samples = out.get("samples") or {}
        outcomes, how = None, "no primary metric"
        if primary is not None:
            outcomes, how = primary_outcomes(samples, primary[0], metrics[primary[0]], higher)
        metrics["lm_eval"] = {
            "version": getattr(lm_eval, "__version__", None),
            "task": c.task, "primary_metric": primary[0] if primary else None,
            "versions": out.get("versions"), "n-shot": out.get("n-shot"), "n-samples": out.get("n-samples"),
            "task_hashes": {name: samples_hash(rows) for name, rows in samples.items()},
            "config_hashes": {name: hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()
                              for name, cfg in configs.items()},
            "configs": json.loads(json.dumps(configs, default=str)),
            "outcomes": how,
        }
        if outcomes is not None:
            metrics["outcomes"] = outcomes
        return metrics


class LMEval(TaskKind):
    name = "lm-eval"
    preload = ("transformers.modeling_utils", "lm_eval.evaluator", "lm_eval.models.huggingface")
    requires = ("lm_eval",)
    description = "an lm-evaluation-harness task (by name, or local YAML via include_path) on the model in memory"
    Config = LMEvalConfig

    def check_config(self, config: LMEvalConfig, suite_dir: Path) -> list[str]:
        problems = missing_file("calibration_text", config.calibration_text, suite_dir)
        if config.include_path is not None and not suite_path(config.include_path, suite_dir).is_dir():
            problems.append(f"include_path: directory '{config.include_path}' does not exist "
                            "(paths are relative to the suite file)")
        return problems

    def prepare(self, config: LMEvalConfig, ctx: Any) -> LMEvalData:
        return LMEvalData(config, ctx)
